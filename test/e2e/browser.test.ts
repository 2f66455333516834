import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { browserSkip, launchBrowser } from "../helpers/browser.js";
import { clientFor } from "../helpers/clients.js";
import { removeDir, startDaemon, type TestDaemon } from "../helpers/daemon.js";

const SERVICE = "com.seed.daemon.v1alpha.Daemon";

/** What a page's fetch came to: a readable response, or the rejection a CORS failure causes. */
type FetchOutcome = { ok: true; status: number; body: string } | { ok: false; error: string };

let d: TestDaemon;
let pageServer: Server;
let pageOrigin: string;
let browser: Browser;
let page: Page;

/** Serves one blank page; its origin is the one paired and unpaired below. */
function startPageServer(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/") {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
      });
      res.end("<!doctype html><title>paired page</title><p>paired page</p>");
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

/** Calls a Daemon method from the page with Connect JSON and a bearer token, as a web app would. */
function callFromPage(method: string, token: string, body: unknown = {}): Promise<FetchOutcome> {
  const url = `http://127.0.0.1:${d.httpPort}/${SERVICE}/${method}`;
  return page.evaluate(
    async ({ url, token, body }): Promise<FetchOutcome> => {
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
        return { ok: true, status: res.status, body: await res.text() };
      } catch (err) {
        return { ok: false, error: `${(err as Error).name}: ${(err as Error).message}` };
      }
    },
    { url, token, body },
  );
}

function assertCorsFailure(outcome: FetchOutcome, what: string): void {
  assert.equal(outcome.ok, false, `${what}: the page must not read the response`);
  if (!outcome.ok) assert.match(outcome.error, /^TypeError/, what);
}

describe("a real browser page on another loopback port", {
  timeout: 120_000,
  skip: browserSkip(),
}, () => {
  before(async () => {
    d = await startDaemon();
    pageServer = await startPageServer();
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${pageOrigin}/`);
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((r) => (pageServer ? pageServer.close(() => r()) : r()));
    await d?.stop();
    if (d) removeDir(dirname(d.dataDir));
  });

  let token = "";

  test("before pairing it cannot call the daemon, even with the master token", async () => {
    assertCorsFailure(await callFromPage("GetInfo", d.token), "GetInfo before pairing");
  });

  test("after pairing it reads GetInfo with its origin-bound token", async () => {
    const paired = await clientFor(Daemon, "connect", d, d.token).pairOrigin({
      origin: pageOrigin,
      label: "browser test page",
    });
    assert.equal(paired.origin, pageOrigin);
    token = paired.token;
    const res = await callFromPage("GetInfo", token);
    assert.ok(res.ok, `GetInfo after pairing: ${res.ok ? "" : res.error}`);
    // Readable at all means the browser accepted the daemon's CORS answer for this origin (the
    // Access-Control-* headers themselves are not exposed to page scripts).
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).state, "ACTIVE");
    // The master token works from any allowed origin, so the page's fate hung on pairing alone.
    const masterRes = await callFromPage("GetInfo", d.token);
    assert.ok(masterRes.ok && masterRes.status === 200, "GetInfo with the master token");
  });

  test("with its token it cannot call SignData (permission_denied, readable)", async () => {
    const res = await callFromPage("SignData", token, { signingKeyName: "main", data: "aGk=" });
    assert.ok(res.ok, `SignData: ${res.ok ? "" : res.error}`);
    assert.equal(res.status, 403);
    assert.equal(JSON.parse(res.body).code, "permission_denied");
  });

  test("with its token it cannot manage pairings", async () => {
    for (const method of ["ListPairedOrigins", "PairOrigin", "UnpairOrigin"]) {
      const res = await callFromPage(method, token, { origin: pageOrigin });
      assert.ok(res.ok, `${method}: ${res.ok ? "" : res.error}`);
      assert.equal(res.status, 403, method);
      assert.equal(JSON.parse(res.body).code, "permission_denied", method);
    }
  });

  test("after unpairing it fails again, with its token and with the master token", async () => {
    await clientFor(Daemon, "connect", d, d.token).unpairOrigin({ origin: pageOrigin });
    // A preflight cached for up to 60 s may let the request go out; its answer then carries no
    // Access-Control-Allow-Origin, so the page still cannot read it.
    assertCorsFailure(await callFromPage("GetInfo", token), "GetInfo after unpairing");
    assertCorsFailure(
      await callFromPage("GetInfo", d.token),
      "GetInfo with master after unpairing",
    );
  });
});
