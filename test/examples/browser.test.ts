/**
 * The reference site in real Chromium, in front of the real daemon, set up as
 * examples/docker-compose.yml sets them up (the web token shared, the site's origin the daemon's
 * --cors-origin) but without Docker: a fresh browser profile cannot see a private document, logs
 * in with a WebCrypto key made in the page, sees it once the owner grants that key a READER
 * capability, and loses it on logout; another profile's key sees nothing. The daemon's audit log
 * records each decision, and no response the browser ever gets holds the web token.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page, Response } from "playwright-core";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { browserSkip, launchBrowser } from "../helpers/browser.js";
import { clientFor } from "../helpers/clients.js";
import {
  randomToken,
  removeDir,
  startDaemon,
  type TestDaemon,
  tempDir,
} from "../helpers/daemon.js";
import { block, freePort, type RunningSite, sessionSecret, startSite, title } from "./helpers.js";

const WEB = randomToken();
const OWNER_WORDS =
  "legal winner thank year wave sausage worth useful legal winner thank yellow".split(" ");
const PRIVATE = "/private/notes";
const PUBLIC = "/hello";
/** Markup in a private block: it must show as text, never become an element. */
const INJECTED = `<img src="/x" onerror="document.title='pwned'">`;

/** What the browser received: every response's URL, status, headers and body. */
interface Seen {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

describe("the reference site in a real browser", {
  timeout: 120_000,
  skip: browserSkip(),
}, () => {
  let d: TestDaemon;
  let site: RunningSite;
  let browser: Browser;
  let owner: string;
  let auditFile: string;
  const seen: Promise<Seen>[] = [];
  const cspViolations: string[] = [];

  before(async () => {
    // The site's origin must be the daemon's --cors-origin and SEED_WEB_ORIGIN before either
    // starts: pick a free port for the site first.
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    auditFile = join(tempDir(), "audit.jsonl");
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", origin, "--audit-log", auditFile],
    });
    owner = (
      await clientFor(Daemon, "connect", d, d.token).registerKey({
        name: "owner",
        mnemonic: OWNER_WORDS,
      })
    ).accountId;
    const docs = clientFor(Documents, "connect", d, d.token);
    await docs.createDocumentChange({
      account: owner,
      path: PRIVATE,
      signingKeyName: "owner",
      visibility: ResourceVisibility.PRIVATE,
      changes: [
        title("Private notes"),
        ...block("h", "Heading", "Plans"),
        ...block("p", "Paragraph", "meet at noon", { parent: "h" }),
        ...block("x", "Paragraph", INJECTED, { after: "h" }),
      ],
    });
    await docs.createDocumentChange({
      account: owner,
      path: PUBLIC,
      signingKeyName: "owner",
      changes: [title("Hello"), ...block("p", "Paragraph", "anyone may read this")],
    });
    site = await startSite({
      DAEMON_URL: `http://${d.httpAddr}`,
      DAEMON_AUTH_TOKEN: WEB,
      SEED_WEB_SESSION_SECRET: sessionSecret(),
      SEED_WEB_ORIGIN: origin,
      PORT: String(port),
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await site?.stop();
    await d?.stop();
    if (d) removeDir(dirname(d.dataDir));
    if (auditFile) removeDir(dirname(auditFile));
  });

  /** A fresh profile whose every response and CSP complaint is recorded. */
  async function profile(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    context.on("response", (res: Response) => {
      seen.push(
        (async () => ({
          url: res.url(),
          headers: await res.allHeaders(),
          body: await res.text().catch(() => ""),
        }))(),
      );
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return { context, page };
  }

  const privateUrl = () => `${site.url}/hm/${owner}${PRIVATE}`;
  const button = (page: Page) => page.locator("#seed-auth");
  const heading = (page: Page) => page.locator("main h1").textContent();

  async function click(page: Page, label: "Log in" | "Log out"): Promise<void> {
    await page.getByRole("button", { name: label, exact: true }).click();
    // login.js reloads the page; the server renders the other label then.
    const next = label === "Log in" ? "Log out" : "Log in";
    await page.getByRole("button", { name: next, exact: true }).waitFor();
  }

  const principalOf = (page: Page) =>
    page.evaluate(async () => {
      const res = await fetch("/hm/auth/me");
      return ((await res.json()) as { principal: string | null }).principal;
    });

  let first = "";

  test("a fresh profile: the private document is a 404, the public one renders", async () => {
    const { page } = await profile();
    const res = await page.goto(privateUrl());
    assert.equal(res?.status(), 404);
    assert.equal(await heading(page), "Not found");
    assert.equal(await button(page).textContent(), "Log in");
    const pub = await page.goto(`${site.url}/hm/${owner}${PUBLIC}`);
    assert.equal(pub?.status(), 200);
    assert.equal(await heading(page), "Hello");
    await page.close();
  });

  test("log in with a WebCrypto key, get a READER capability, read, log out", async () => {
    const { page } = await profile();
    await page.goto(privateUrl());
    await click(page, "Log in");
    first = (await principalOf(page)) ?? "";
    assert.match(first, /^z6Mk/);
    assert.equal(
      await page.evaluate(`import("/hm/auth/browser.js").then((m) => m.localPrincipal())`),
      first,
      "the key is the one the page made and stored",
    );
    assert.equal(await page.locator("#seed-principal").textContent(), first);
    assert.equal(await page.evaluate("document.cookie"), "", "the session cookie is httpOnly");
    // Logged in, but nobody granted this key anything yet.
    assert.equal((await page.reload())?.status(), 404);

    await clientFor(AccessControl, "connect", d, d.token).createCapability({
      signingKeyName: "owner",
      account: owner,
      delegate: first,
      path: "/private",
      role: Role.READER,
    });
    const granted = await page.reload();
    assert.equal(granted?.status(), 200);
    assert.equal(await heading(page), "Private notes");
    assert.equal(await page.title(), "Private notes");
    assert.equal(await page.locator("main section h2").textContent(), "Plans");
    assert.equal(await page.locator("main section p").textContent(), "meet at noon");
    // The markup in the block is text, not an element.
    assert.ok((await page.locator("main").textContent())?.includes(INJECTED));
    assert.equal(await page.locator("main img").count(), 0);

    await click(page, "Log out");
    assert.equal((await page.reload())?.status(), 404);
    assert.equal(await principalOf(page), null);
    await page.close();
  });

  test("another profile logs in with its own key and still gets the 404", async () => {
    const { page } = await profile();
    await page.goto(privateUrl());
    await click(page, "Log in");
    const second = await principalOf(page);
    assert.match(second ?? "", /^z6Mk/);
    assert.notEqual(second, first);
    assert.equal((await page.reload())?.status(), 404);
    assert.equal(await heading(page), "Not found");
    await page.close();

    const reads = readFileSync(auditFile, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.event === "document.read" && r.path === PRIVATE && r.account === owner);
    const has = (principal: string | undefined, outcome: string) =>
      reads.some((r) => r.principal === principal && r.outcome === outcome);
    assert.ok(has(first, "granted"), "a granted read for the first key");
    assert.ok(has(first, "denied"), "a denied read for the first key before the capability");
    assert.ok(has(second ?? "", "denied"), "a denied read for the second key");
    assert.ok(!has(second ?? "", "granted"));
    assert.ok(has(undefined, "denied"), "denied anonymous reads");
    assert.ok(
      reads.every((r) => r.credential === "web"),
      "every read came with the web token",
    );
  });

  test("no response the browser got holds the web token (bodies, headers, cookies)", async () => {
    const all = await Promise.all(seen);
    assert.ok(all.length >= 10, `only ${all.length} responses recorded`);
    assert.ok(
      all.some((r) => r.body.includes("meet at noon")),
      "the recorder saw the private page",
    );
    assert.ok(all.some((r) => r.url.endsWith("/hm/auth/browser.js")));
    assert.ok(
      all.some((r) => (r.headers["set-cookie"] ?? "") !== ""),
      "it saw Set-Cookie",
    );
    const secrets = [WEB, WEB.slice(0, 16), d.token, d.token.slice(0, 16)];
    for (const r of all) {
      const text = `${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`;
      for (const s of secrets) assert.ok(!text.includes(s), `${r.url} holds a daemon token`);
    }
    const context = await browser.newContext();
    assert.deepEqual(await context.cookies(), []);
    await context.close();
    for (const c of browser.contexts()) {
      for (const cookie of await c.cookies()) {
        for (const s of secrets) assert.ok(!cookie.value.includes(s), "a cookie holds a token");
      }
    }
    assert.deepEqual(cspViolations, [], "the pages ran nothing their CSP refuses");
  });
});
