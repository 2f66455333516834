import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import { createAuthHandlers, type FetchHandler, toNodeHandler } from "../../src/web/index.js";
import { rawHttp1 } from "../helpers/http.js";
import { newKey, sign, unb64 } from "./helpers.js";

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function serve(
  handler: FetchHandler,
  options?: Parameters<typeof toNodeHandler>[1],
): Promise<number> {
  const server = createServer(toNodeHandler(handler, options));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

describe("toNodeHandler", () => {
  test("passes method, path, query, headers and body; streams the response back", async () => {
    const port = await serve(async (req) => {
      const url = new URL(req.url);
      const body = await req.text();
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("part1|"));
          c.enqueue(new TextEncoder().encode("part2"));
          c.close();
        },
      });
      return new Response(stream, {
        status: 201,
        headers: {
          "x-echo": JSON.stringify({
            method: req.method,
            path: url.pathname,
            q: url.searchParams.get("q"),
            host: url.host,
            custom: req.headers.get("x-custom"),
            body,
          }),
        },
      });
    });
    const res = await rawHttp1({
      port,
      method: "PUT",
      path: "/a/b?q=1",
      headers: { "x-custom": "v", "content-type": "text/plain" },
      body: "hello",
    });
    assert.equal(res.status, 201);
    assert.equal(res.body, "part1|part2");
    assert.deepEqual(JSON.parse(res.headers["x-echo"] as string), {
      method: "PUT",
      path: "/a/b",
      q: "1",
      host: `127.0.0.1:${port}`,
      custom: "v",
      body: "hello",
    });
  });

  test("keeps several Set-Cookie headers apart", async () => {
    const port = await serve(() => {
      const h = new Headers();
      h.append("set-cookie", "a=1; Path=/; HttpOnly");
      h.append("set-cookie", "b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/");
      return new Response("ok", { headers: h });
    });
    const res = await rawHttp1({ port, path: "/" });
    assert.deepEqual(res.headers["set-cookie"], [
      "a=1; Path=/; HttpOnly",
      "b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
    ]);
  });

  test("bounds the body by Content-Length and by the bytes sent", async () => {
    let called = 0;
    const port = await serve(
      async (req) => {
        called++;
        return new Response(String((await req.arrayBuffer()).byteLength));
      },
      { maxBodyBytes: 1000 },
    );
    const ok = await rawHttp1({ port, method: "POST", path: "/", body: "x".repeat(1000) });
    assert.equal(ok.body, "1000");
    const declared = await rawHttp1({ port, method: "POST", path: "/", body: "x".repeat(1001) });
    assert.equal(declared.status, 413);
    const chunked = await rawHttp1({
      port,
      method: "POST",
      path: "/",
      headers: { "transfer-encoding": "chunked" },
      body: "x".repeat(5000),
    });
    assert.equal(chunked.status, 413);
    assert.equal(called, 1);
  });

  test("undefined is a 404, a throw is a bare 500 and reaches onError", async () => {
    const errors: unknown[] = [];
    const port = await serve(
      (req) => {
        if (new URL(req.url).pathname === "/boom") throw new Error("secret detail");
        return undefined;
      },
      { onError: (e) => errors.push(e) },
    );
    assert.equal((await rawHttp1({ port, path: "/nope" })).status, 404);
    const boom = await rawHttp1({ port, path: "/boom" });
    assert.equal(boom.status, 500);
    assert.equal(boom.body.includes("secret"), false);
    assert.equal(errors.length, 1);
  });

  test("HEAD gets headers only; a bad Host is a 400 unless the origin is fixed", async () => {
    const port = await serve(() => new Response("body", { headers: { "x-a": "1" } }));
    const head = await rawHttp1({ port, method: "HEAD", path: "/" });
    assert.equal(head.status, 200);
    assert.equal(head.headers["x-a"], "1");
    assert.equal(head.body, "");
    assert.equal((await rawHttp1({ port, path: "/", host: "a b" })).status, 400);
    const fixed = await serve((req) => new Response(new URL(req.url).origin), {
      origin: "https://site.example",
    });
    const res = await rawHttp1({ port: fixed, path: "/", host: "evil.example" });
    assert.equal(res.body, "https://site.example");
  });

  test("runs the auth handlers over real HTTP: login, session, logout", async () => {
    const origin = "http://127.0.0.1:8080";
    const auth = createAuthHandlers({ sessionSecret: randomBytes(32), origin });
    const port = await serve(async (req) => {
      const handled = await auth.handle(req);
      if (handled !== undefined) return handled;
      const session = await auth.session(req);
      return Response.json({ principal: session?.principal ?? null });
    });
    const key = newKey();
    const call = (path: string, body?: unknown, cookie?: string) =>
      rawHttp1({
        port,
        method: body === undefined ? "GET" : "POST",
        path,
        headers: {
          origin,
          "content-type": "application/json",
          ...(cookie === undefined ? {} : { cookie }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const c = JSON.parse((await call("/hm/auth/challenge", {})).body);
    const res = await call("/hm/auth/login", {
      publicKeyMultikey: key.principal,
      signature: sign(key, c, origin),
      nonce: c.nonce,
    });
    assert.equal(res.status, 200, res.body);
    const setCookie = res.headers["set-cookie"] as string[];
    assert.equal(setCookie.length, 1);
    const cookie = (setCookie[0] as string).split(";")[0] as string;
    assert.equal(JSON.parse((await call("/me", undefined, cookie)).body).principal, key.principal);
    assert.equal((await call("/hm/auth/logout", {}, cookie)).status, 200);
    assert.equal(JSON.parse((await call("/me", undefined, cookie)).body).principal, null);
    assert.equal(unb64(c.nonce).length, 16);
  });
});
