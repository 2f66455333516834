import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { PrincipalProofVerifier } from "../../src/security/principal-proof.js";
import * as browser from "../../src/web/browser.js";
import { type AuthHandlers, createAuthHandlers } from "../../src/web/index.js";
import { ROOT } from "../helpers/daemon.js";
import { fakeIndexedDb } from "./fake-indexeddb.js";
import { capability, newKey } from "./helpers.js";

const SITE = "http://127.0.0.1:8080";
const DIST_BROWSER = join(ROOT, "dist", "web", "browser.js");

/**
 * Runs the browser module in Node against the real handlers: a fake IndexedDB, `location`, and a
 * `fetch` that sends same-origin requests (Origin header, cookie jar) to `auth.handle`.
 */
describe("seed-daemon/web/browser, in Node with a fake IndexedDB", () => {
  const g = globalThis as Record<string, unknown>;
  const saved = { fetch: g.fetch, indexedDB: g.indexedDB, location: g.location };
  let auth: AuthHandlers;
  let idb: ReturnType<typeof fakeIndexedDb>;
  const jar = new Map<string, string>();
  let requests: Request[] = [];
  let sendOrigin = true;

  before(() => {
    Object.defineProperty(globalThis, "location", {
      value: { origin: SITE },
      configurable: true,
      writable: true,
    });
    g.fetch = async (input: string, init: RequestInit) => {
      assert.equal(init.credentials, "same-origin");
      const req = new Request(new URL(input, SITE), init);
      if (sendOrigin) req.headers.set("origin", SITE);
      if (jar.size > 0) {
        req.headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
      }
      requests.push(req.clone());
      const res = (await auth.handle(req)) ?? new Response("not found", { status: 404 });
      for (const set of res.headers.getSetCookie()) {
        const [pair, ...attrs] = set.split("; ");
        const [name, value] = (pair as string).split("=") as [string, string];
        if (attrs.includes("Max-Age=0")) jar.delete(name);
        else jar.set(name, value);
      }
      return res;
    };
  });
  after(() => {
    g.fetch = saved.fetch;
    g.indexedDB = saved.indexedDB;
    Object.defineProperty(globalThis, "location", {
      value: saved.location,
      configurable: true,
      writable: true,
    });
  });
  beforeEach(() => {
    idb = fakeIndexedDb();
    g.indexedDB = idb;
    jar.clear();
    requests = [];
    sendOrigin = true;
    auth = createAuthHandlers({ sessionSecret: randomBytes(32), origin: SITE });
  });

  const sessionNow = () =>
    auth.session(
      new Request(`${SITE}/`, {
        headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
      }),
    );

  test("makes a non-extractable key once, logs in with it, and reuses it", async () => {
    assert.equal(await browser.localPrincipal(), undefined);
    const { principal } = await browser.loginWithLocalKey();
    assert.match(principal, /^z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
    assert.equal(await browser.localPrincipal(), principal);
    const stored = idb.databases
      .get(browser.KEY_DB_NAME)
      ?.stores.get(browser.KEY_STORE_NAME)
      ?.get(browser.KEY_RECORD_ID) as { privateKey: CryptoKey };
    assert.equal(stored.privateKey.extractable, false);
    assert.equal(stored.privateKey.type, "private");
    assert.deepEqual(stored.privateKey.usages, ["sign"]);

    const session = await sessionNow();
    assert.equal(session?.principal, principal);
    new PrincipalProofVerifier().verify(principal, session?.proof ?? "", {
      allowedOrigins: new Set([SITE]),
      now: Date.now(),
    });
    const login = requests.find((r) => r.url.endsWith("/hm/auth/login"));
    assert.equal(login?.headers.get("content-type"), "application/json");

    const again = await browser.loginWithLocalKey({ baseUrl: `${SITE}/` });
    assert.equal(again.principal, principal, "the same key the second time");
  });

  test("two logins at once agree on one key", async () => {
    const [a, b] = await Promise.all([browser.loginWithLocalKey(), browser.loginWithLocalKey()]);
    assert.equal(a.principal, b.principal);
    assert.equal(await browser.localPrincipal(), a.principal);
  });

  test("capabilities at login and later; logout; refusals carry the server's code", async () => {
    const issuer = newKey();
    await assert.rejects(
      browser.addCapabilities([new Uint8Array(1)]),
      (e: browser.SeedAuthError) => e.code === "not_logged_in" && e.status === 401,
    );
    const principal =
      (await browser.localPrincipal()) ?? (await browser.loginWithLocalKey()).principal;
    await browser.logout();
    const cap1 = capability(issuer, principal, "/a");
    const cap2 = capability(issuer, principal, "/b");
    await browser.loginWithLocalKey({ capabilities: [cap1] });
    assert.equal((await sessionNow())?.capabilities.length, 1);
    assert.deepEqual(await browser.addCapabilities([cap2, cap1]), { count: 2 });
    await assert.rejects(
      browser.addCapabilities([new Uint8Array([1, 2])]),
      (e: browser.SeedAuthError) =>
        e instanceof browser.SeedAuthError && e.code === "malformed_capability" && e.status === 400,
    );
    await browser.logout();
    assert.equal(await sessionNow(), undefined);
    await browser.logout();
  });

  test("the browser signs for its own origin: a server expecting another refuses", async () => {
    auth = createAuthHandlers({ sessionSecret: randomBytes(32), origin: "http://localhost:8080" });
    await assert.rejects(
      browser.loginWithLocalKey(),
      (e: browser.SeedAuthError) => e.code === "bad_origin" && e.status === 403,
    );
    // Without an Origin header the server gets as far as the signature, made for SITE.
    sendOrigin = false;
    await assert.rejects(
      browser.loginWithLocalKey(),
      (e: browser.SeedAuthError) =>
        e.code === "bad_signature" && e.status === 401 && /bad_signature/.test(e.message),
    );
    assert.equal(jar.size, 0);
  });

  test("without IndexedDB the error says so", async () => {
    g.indexedDB = undefined;
    await assert.rejects(
      browser.loginWithLocalKey(),
      (e: browser.SeedAuthError) => e.code === "unsupported" && /IndexedDB/.test(e.message),
    );
  });
});

describe("dist/web/browser.js", () => {
  test("is a self-contained ES module: no import statement, no require", async () => {
    assert.ok(existsSync(DIST_BROWSER), "run `npm run build` first");
    const js = readFileSync(DIST_BROWSER, "utf8");
    assert.doesNotMatch(js, /^\s*import[\s{*"'(]/m, "no import statement");
    assert.doesNotMatch(js, /\bimport\s*\(/, "no dynamic import");
    assert.doesNotMatch(js, /\bfrom\s*["']/, "no re-export from another module");
    assert.doesNotMatch(js, /\brequire\s*\(/, "no require");
    assert.doesNotMatch(js, /\bimport\.meta\b/);
    const mod = (await import(pathToFileURL(DIST_BROWSER).href)) as Record<string, unknown>;
    for (const name of ["loginWithLocalKey", "logout", "addCapabilities", "localPrincipal"]) {
      assert.equal(typeof mod[name], "function", name);
    }
  });
});
