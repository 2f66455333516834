import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { Browser, Page } from "playwright-core";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  DocumentChangeSchema,
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic } from "../../src/identity/keys.js";
import {
  type AuthHandlers,
  createAuthHandlers,
  createDaemonClient,
  type DaemonClient,
  toNodeHandler,
} from "../../src/web/index.js";
import { browserSkip, launchBrowser } from "../helpers/browser.js";
import { clientFor } from "../helpers/clients.js";
import { ROOT, randomToken, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { newKey } from "./helpers.js";

const WEB = randomToken();
const ALICE_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const ALICE = newKey(keyFromMnemonic(ALICE_WORDS));
const PLANS = { account: ALICE.principal, path: "/private/plans" };

/**
 * The whole flow in a real browser: a site on node:http (through toNodeHandler) serves the
 * compiled dist/web/browser.js as it is, the page logs in with a WebCrypto key kept in IndexedDB,
 * and the site reads a private document from the real daemon for that user.
 */
describe("a real browser logs in to a site and reads a private document", {
  timeout: 120_000,
  skip: browserSkip(),
}, () => {
  let d: TestDaemon;
  let site: Server;
  let origin: string;
  let auth: AuthHandlers;
  let daemon: DaemonClient;
  let browser: Browser;
  let page: Page;

  before(async () => {
    const browserJs = readFileSync(join(ROOT, "dist", "web", "browser.js"), "utf8");
    site = createServer(
      toNodeHandler(async (req) => {
        const handled = await auth.handle(req);
        if (handled !== undefined) return handled;
        const path = new URL(req.url).pathname;
        if (path === "/") {
          return new Response("<!doctype html><title>site</title><p>site</p>", {
            headers: { "content-type": "text/html; charset=utf-8" },
          });
        }
        if (path === "/browser.js") {
          return new Response(browserJs, { headers: { "content-type": "text/javascript" } });
        }
        if (path === "/plans") {
          const session = await auth.session(req);
          try {
            const doc = await daemon.forSession(session).documents.getDocument(PLANS);
            return Response.json({ title: doc.metadata.title });
          } catch {
            return Response.json({ title: null }, { status: 404 });
          }
        }
        return undefined;
      }),
    );
    await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    auth = createAuthHandlers({ sessionSecret: randomBytes(32), origin });
    d = await startDaemon({ env: { SEED_DAEMON_WEB_TOKEN: WEB }, args: ["--cors-origin", origin] });
    daemon = createDaemonClient({ baseUrl: `http://${d.httpAddr}`, token: WEB });
    await daemon.ready();
    await clientFor(Daemon, "connect", d, d.token).registerKey({
      name: "alice",
      mnemonic: ALICE_WORDS,
    });
    await clientFor(Documents, "connect", d, d.token).createDocumentChange({
      ...PLANS,
      signingKeyName: "alice",
      visibility: ResourceVisibility.PRIVATE,
      changes: [
        create(DocumentChangeSchema, {
          op: { case: "setMetadata", value: { key: "title", value: "Plans" } },
        }),
      ],
    });
    browser = await launchBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${origin}/`);
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((r) => (site ? site.close(() => r()) : r()));
    await d?.stop();
  });

  const inPage = <T>(fn: string): Promise<T> =>
    page.evaluate(`(async () => { const m = await import("/browser.js"); ${fn} })()`) as Promise<T>;
  const plans = () =>
    page.evaluate(async () => {
      const res = await fetch("/plans");
      return { status: res.status, body: (await res.json()) as { title: string | null } };
    });

  test("login, read with a capability, reload, logout", async () => {
    assert.equal(await inPage("return (await m.localPrincipal()) ?? null;"), null);
    const { principal } = await inPage<{ principal: string }>("return m.loginWithLocalKey();");
    assert.match(principal, /^z6Mk/);
    assert.equal(await page.evaluate("document.cookie"), "", "the session cookie is httpOnly");
    // Page code, as a string: the test's own typings have no DOM.
    const extractable = await page.evaluate(`new Promise((resolve) => {
      const open = indexedDB.open("seed-daemon-web");
      open.onerror = () => resolve("error");
      open.onsuccess = () => {
        const get = open.result.transaction("keys").objectStore("keys").get("login");
        get.onerror = () => resolve("error");
        get.onsuccess = () => resolve(get.result.privateKey.extractable);
      };
    })`);
    assert.equal(extractable, false);

    assert.deepEqual(await plans(), { status: 404, body: { title: null } });
    await clientFor(AccessControl, "connect", d, d.token).createCapability({
      signingKeyName: "alice",
      account: ALICE.principal,
      delegate: principal,
      path: "/private",
      role: Role.READER,
    });
    assert.deepEqual(await plans(), { status: 200, body: { title: "Plans" } });

    await page.reload();
    assert.equal(await inPage("return m.localPrincipal();"), principal, "the key persists");
    assert.deepEqual(await plans(), { status: 200, body: { title: "Plans" } });
    await inPage("await m.logout(); return null;");
    assert.deepEqual(await plans(), { status: 404, body: { title: null } });
    const again = await inPage<{ principal: string }>("return m.loginWithLocalKey();");
    assert.equal(again.principal, principal);
    assert.deepEqual(await plans(), { status: 200, body: { title: "Plans" } });
  });
});
