/**
 * The reference site (examples/web/server.js) as a real child process in front of the real
 * daemon, configured the way examples/docker-compose.yml configures it, without Docker: start-up
 * failures, the pages and their headers, login over HTTP with an independent Ed25519
 * implementation, and the compose file's healthcheck command run against it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import nacl from "tweetnacl";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import {
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { principalProofMessage } from "../../src/wire.js";
import { clientFor } from "../helpers/clients.js";
import { ROOT, randomToken, removeDir, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { b64, newKey, type TestKey, unb64 } from "../web/helpers.js";
import {
  block,
  freePort,
  type RunningSite,
  readCompose,
  runSiteToExit,
  type SiteExit,
  sessionSecret,
  startSite,
  title,
} from "./helpers.js";

const WEB = randomToken();
const OWNER_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const HOSTILE = `<script>alert("x")</script> & 'co'`;

/** The one-line failure every start-up problem gives, checked the same way each time. */
function assertOneLineFailure(exit: SiteExit, code: number, mustName: string, secrets: string[]) {
  assert.equal(exit.code, code, `exit code (stderr: ${exit.stderr})`);
  assert.ok(exit.ms < 5000, `exited after ${Math.round(exit.ms)} ms`);
  assert.equal(exit.stdout, "", "nothing on stdout");
  assert.match(exit.stderr, /^[^\n]+\n$/, "exactly one line on stderr");
  assert.ok(exit.stderr.includes(mustName), `${JSON.stringify(exit.stderr)} names ${mustName}`);
  for (const s of secrets) {
    assert.ok(!exit.stderr.includes(s), "a secret reached stderr");
    assert.ok(!exit.stderr.includes(s.slice(0, 12)), "part of a secret reached stderr");
  }
}

describe("the reference site in front of the real daemon", { timeout: 120_000 }, () => {
  let d: TestDaemon;
  let daemonUrl: string;
  let owner: string;
  let port: number;
  let origin: string;
  const secret = sessionSecret();

  before(async () => {
    // Login proofs name the site's origin, which must be the daemon's --cors-origin before the
    // site starts: pick the site's port first.
    port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", origin],
    });
    daemonUrl = `http://${d.httpAddr}`;
    owner = (
      await clientFor(Daemon, "connect", d, d.token).registerKey({
        name: "owner",
        mnemonic: OWNER_WORDS,
      })
    ).accountId;
  });
  after(async () => {
    await d?.stop();
    if (d) removeDir(dirname(d.dataDir));
  });

  const env = (over: Record<string, string> = {}) => ({
    DAEMON_URL: daemonUrl,
    DAEMON_AUTH_TOKEN: WEB,
    SEED_WEB_SESSION_SECRET: secret,
    SEED_WEB_ORIGIN: origin,
    PORT: "0",
    ...over,
  });

  test("a wrong token: exit 1 within 5 s, one stderr line naming the address, not the token", async () => {
    const wrong = randomToken();
    const exit = await runSiteToExit(env({ DAEMON_AUTH_TOKEN: wrong }));
    assertOneLineFailure(exit, 1, daemonUrl, [wrong, WEB, secret]);
    assert.match(exit.stderr, /refused the token/);
  });

  test("an unreachable daemon (a closed port): exit 1 within 5 s, one line naming the address", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const exit = await runSiteToExit(env({ DAEMON_URL: closed }));
    assertOneLineFailure(exit, 1, closed, [WEB, secret]);
    assert.match(exit.stderr, /cannot reach/);
  });

  test("a missing or bad setting: exit 2 with one line naming it", async () => {
    assertOneLineFailure(
      await runSiteToExit(env({ SEED_WEB_SESSION_SECRET: "" })),
      2,
      "SEED_WEB_SESSION_SECRET",
      [WEB],
    );
    const short = "too short a secret";
    assertOneLineFailure(
      await runSiteToExit(env({ SEED_WEB_SESSION_SECRET: short })),
      2,
      "32 bytes",
      [WEB, short],
    );
    assertOneLineFailure(
      await runSiteToExit(env({ SEED_WEB_ORIGIN: "http://site.example" })),
      2,
      "plain http",
      [WEB, secret],
    );
    assertOneLineFailure(await runSiteToExit(env({ PORT: "http" })), 2, "PORT", [WEB, secret]);
  });

  describe("with the right token", () => {
    let site: RunningSite;
    const publicPath = "/notes/public";
    const privatePath = "/private/notes";

    before(async () => {
      const docs = clientFor(Documents, "connect", d, d.token);
      await docs.createDocumentChange({
        account: owner,
        path: publicPath,
        signingKeyName: "owner",
        changes: [
          title(HOSTILE),
          ...block("h", "Heading", "Section <one>"),
          ...block("p1", "Paragraph", "under the heading", { parent: "h" }),
          ...block("l", "Paragraph", "a list", {
            after: "h",
            attributes: { childrenType: "Ordered" },
          }),
          ...block("i1", "Paragraph", "first & only", { parent: "l" }),
          ...block("c", "Code", "if (a < b) {}", { after: "l" }),
        ],
      });
      await docs.createDocumentChange({
        account: owner,
        path: privatePath,
        signingKeyName: "owner",
        visibility: ResourceVisibility.PRIVATE,
        changes: [title("Private notes"), ...block("s", "Paragraph", "secret text")],
      });
      site = await startSite(env({ PORT: String(port) }));
    });
    after(async () => {
      await site?.stop();
    });

    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${site.url}${path}`, { headers, redirect: "manual" });

    test("prints exactly one line, `listening on http://127.0.0.1:<port>`", () => {
      assert.equal(site.stdout(), `listening on http://127.0.0.1:${site.port}\n`);
      assert.equal(site.url, origin);
    });

    test("renders a public document as escaped HTML with the security headers", async () => {
      const res = await get(`/hm/${owner}${publicPath}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /(^|; )script-src 'self'(;|$)/);
      assert.match(csp, /(^|; )default-src 'none'(;|$)/);
      assert.match(csp, /(^|; )frame-ancestors 'none'(;|$)/);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal(res.headers.get("referrer-policy"), "no-referrer");
      assert.equal(res.headers.get("cache-control"), "no-store");
      const html = await res.text();
      const escaped = "&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;co&#39;";
      assert.ok(html.includes(`<title>${escaped}</title>`), html);
      assert.ok(html.includes(`<h1>${escaped}</h1>`));
      assert.ok(!html.includes("<script>alert"), "unescaped markup from the document");
      assert.ok(html.includes("<section><h2>Section &#60;one&#62;</h2>"));
      assert.ok(html.includes("<p>under the heading</p>"));
      assert.ok(html.includes("<ol><li><p>first &#38; only</p></li></ol>"));
      assert.ok(html.includes("<pre><code>if (a &#60; b) {}</code></pre>"));
      // The only script is the same-origin module: nothing inline.
      assert.deepEqual(html.match(/<script\b[^>]*>/g), [
        '<script type="module" src="/hm/auth/login.js">',
      ]);
      assert.ok(html.includes('data-action="login">Log in</button>'));
    });

    test("a private document, a missing one and a malformed address get the same 404", async () => {
      const bodies = new Set<string>();
      for (const path of [
        `/hm/${owner}${privatePath}`,
        `/hm/${owner}/private/missing`,
        `/hm/${owner}/no%2Fslash`,
        `/hm/not-an-account`,
        `/hm/${owner}//x`,
        "/elsewhere",
      ]) {
        const res = await get(path);
        assert.equal(res.status, 404, path);
        assert.equal(
          res.headers.get("content-security-policy")?.includes("script-src 'self'"),
          true,
        );
        bodies.add(await res.text());
      }
      assert.equal(bodies.size, 1, "one 404 page for all of them");
      assert.ok([...bodies][0]?.includes(">Log in</button>"));
      assert.ok(!([...bodies][0] ?? "").includes("secret text"));
    });

    test("serves the browser module as built, and login.js; /hm/auth/me is null when signed out", async () => {
      const browser = await get("/hm/auth/browser.js");
      assert.equal(browser.status, 200);
      assert.equal(browser.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert.equal(await browser.text(), readFileSync(join(ROOT, "dist/web/browser.js"), "utf8"));
      const login = await get("/hm/auth/login.js");
      assert.equal(login.status, 200);
      assert.equal(await login.text(), readFileSync(join(ROOT, "examples/web/login.js"), "utf8"));
      const me = await get("/hm/auth/me");
      assert.equal(me.headers.get("cache-control"), "no-store");
      assert.deepEqual(await me.json(), { principal: null });
      assert.equal((await fetch(`${site.url}/hm/${owner}`, { method: "POST" })).status, 405);
    });

    test("logged in (signed outside a browser): Log out button, and still 404 without a capability", async () => {
      const key: TestKey = newKey();
      const cookie = await loginOverHttp(site.url, key);
      assert.deepEqual(await (await get("/hm/auth/me", { cookie })).json(), {
        principal: key.principal,
      });
      const priv = await get(`/hm/${owner}${privatePath}`, { cookie });
      const missing = await get(`/hm/${owner}/private/missing`, { cookie });
      assert.equal(priv.status, 404);
      assert.equal(missing.status, 404);
      const body = await priv.text();
      assert.equal(body, await missing.text());
      assert.ok(body.includes('data-action="logout">Log out</button>'));
      assert.ok(body.includes(key.principal));
      const pub = await (await get(`/hm/${owner}${publicPath}`, { cookie })).text();
      assert.ok(pub.includes(">Log out</button>"));
    });

    test("the compose file's healthcheck command passes against the site", async () => {
      const test = readCompose().services?.["seed-web"]?.healthcheck?.test ?? [];
      assert.equal(test[0], "CMD");
      assert.equal(test[1], "node");
      const args = test.slice(2).map((a) => a.replace(/\b8080\b/g, String(site.port)));
      const code = await new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, args, { stdio: "ignore" });
        p.once("exit", (c) => resolve(c));
      });
      assert.equal(code, 0);
    });

    test("no secret in the site's output; SIGTERM exits 0", async () => {
      const exit = await site.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      for (const text of [site.stdout(), site.stderr()]) {
        assert.ok(!text.includes(WEB));
        assert.ok(!text.includes(secret));
      }
    });
  });
});

/** Logs in as the browser would, signing with tweetnacl; returns the session cookie. */
async function loginOverHttp(url: string, key: TestKey): Promise<string> {
  const post = (path: string, body: unknown, cookie = "") =>
    fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: url, ...(cookie && { cookie }) },
      body: JSON.stringify(body),
    });
  const c = (await (await post("/hm/auth/challenge", {})).json()) as {
    challenge: string;
    nonce: string;
  };
  const sig = nacl.sign.detached(
    principalProofMessage(unb64(c.challenge), url, unb64(c.nonce)),
    key.secretKey,
  );
  const res = await post("/hm/auth/login", {
    publicKeyMultikey: key.principal,
    signature: b64(sig),
    nonce: c.nonce,
  });
  assert.equal(res.status, 200);
  const set = res.headers.getSetCookie()[0] ?? "";
  return set.split(";")[0] ?? "";
}
