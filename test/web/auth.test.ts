import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
import { base58btc } from "multiformats/bases/base58";
import { PrincipalProofVerifier } from "../../src/security/principal-proof.js";
import {
  type AuthHandlers,
  createAuthHandlers,
  MemorySessionStore,
  type SessionStore,
} from "../../src/web/index.js";
import {
  b64,
  capability,
  cookieOf,
  getChallenge,
  login,
  newKey,
  page,
  post,
  sign,
  unb64,
} from "./helpers.js";

const SITE = "https://site.example";
const SECRET = randomBytes(32).toString("base64");

function setup(opts: { maxCapabilities?: number; maxCapabilityBytes?: number } = {}) {
  const clock = { t: Date.UTC(2030, 0, 1) };
  const store = new MemorySessionStore({ now: () => clock.t });
  const auth = createAuthHandlers({
    sessionSecret: SECRET,
    origin: SITE,
    sessionStore: store,
    now: () => clock.t,
    ...opts,
  });
  return { auth, clock, store };
}

async function refusal(res: Response): Promise<{ status: number; code: string }> {
  const body = (await res.json()) as { code: string; message: string };
  assert.equal(typeof body.message, "string");
  assert.equal(res.headers.getSetCookie().length, 0, "a refusal sets no cookie");
  return { status: res.status, code: body.code };
}

async function loginRaw(auth: AuthHandlers, body: unknown, headers: Record<string, string> = {}) {
  return auth.login(post(SITE, "/hm/auth/login", body, headers));
}

describe("createAuthHandlers: options", () => {
  test("a session secret under 32 bytes throws at creation, without showing it", () => {
    for (const secret of ["short-secret", "x".repeat(31), new Uint8Array(31)]) {
      assert.throws(
        () => createAuthHandlers({ sessionSecret: secret, origin: SITE }),
        (err: Error) =>
          err instanceof TypeError &&
          /at least 32 bytes/.test(err.message) &&
          (typeof secret !== "string" || !err.message.includes(secret)),
      );
    }
    assert.doesNotThrow(() => createAuthHandlers({ sessionSecret: "x".repeat(32), origin: SITE }));
    assert.doesNotThrow(() =>
      createAuthHandlers({ sessionSecret: new Uint8Array(32).fill(7), origin: SITE }),
    );
  });

  test("the origin is normalised; a path, user info or remote plain http is refused", () => {
    const mk = (origin: string) => createAuthHandlers({ sessionSecret: SECRET, origin });
    assert.equal(mk("HTTPS://Site.Example:443/").origin, "https://site.example");
    assert.equal(mk("https://site.example:8443").origin, "https://site.example:8443");
    assert.equal(mk("http://127.0.0.1:8080").origin, "http://127.0.0.1:8080");
    assert.equal(mk("http://LOCALHOST:80").origin, "http://localhost");
    assert.equal(mk("http://[::1]:3000").origin, "http://[::1]:3000");
    for (const bad of [
      "https://site.example/app",
      "https://u:p@site.example",
      "https://site.example?x",
      "https://site.example#x",
      "http://site.example",
      "ftp://site.example",
      "site.example",
      "",
    ]) {
      assert.throws(() => mk(bad), TypeError, bad);
    }
  });

  test("capability limits beyond the daemon's are refused", () => {
    assert.throws(
      () => createAuthHandlers({ sessionSecret: SECRET, origin: SITE, maxCapabilities: 33 }),
      RangeError,
    );
    assert.throws(
      () => createAuthHandlers({ sessionSecret: SECRET, origin: SITE, maxCapabilityBytes: 4096 }),
      RangeError,
    );
  });
});

describe("login", () => {
  test("challenge: 32 bytes with the issue time, a 16-byte nonce, two minutes", async () => {
    const { auth, clock } = setup();
    const c = await getChallenge(auth);
    const challenge = unb64(c.challenge);
    assert.equal(challenge.length, 32);
    assert.equal(unb64(c.nonce).length, 16);
    assert.equal(b64(challenge), c.challenge, "base64url without padding");
    assert.equal(Buffer.from(challenge).readBigUInt64BE(0), BigInt(clock.t));
    assert.equal(c.expiresAt, new Date(clock.t + 120_000).toISOString());
    const again = await getChallenge(auth);
    assert.notEqual(again.nonce, c.nonce);
    assert.notEqual(again.challenge, c.challenge);
  });

  test("a fresh login sets the session cookie; the proof is what the daemon verifies", async () => {
    const { auth, clock } = setup();
    const key = newKey();
    const { res, cookie } = await login(auth, key);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { principal: key.principal });
    const set = res.headers.getSetCookie();
    assert.equal(set.length, 1);
    const attrs = (set[0] as string).split("; ");
    assert.ok(attrs[0]?.startsWith("__Host-seed_session="));
    for (const a of ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"]) assert.ok(attrs.includes(a));
    const maxAge = Number(attrs.find((a) => a.startsWith("Max-Age="))?.slice(8));
    assert.ok(maxAge > 29.9 * 86400 && maxAge <= 30 * 86400, String(maxAge));
    assert.equal(res.headers.get("cache-control"), "no-store");

    const session = await auth.session(page(SITE, cookie));
    assert.ok(session);
    assert.equal(session.principal, key.principal);
    assert.deepEqual(session.capabilities, []);
    // The proof is the daemon's X-Seed-Principal-Proof for this origin, checked by its verifier.
    const verified = new PrincipalProofVerifier().verify(session.principal, session.proof, {
      allowedOrigins: new Set([SITE]),
      now: clock.t,
    });
    assert.equal(verified.origin, SITE);
    assert.equal(verified.issuedAt, clock.t);
    const decoded = dagCbor.decode(unb64(session.proof)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(decoded).sort(), ["challenge", "nonce", "origin", "sig"]);
    // Still valid just before the end, and the daemon still takes its proof then.
    clock.t += 30 * 86400_000 - 6 * 60_000;
    const late = await auth.session(page(SITE, cookie));
    assert.ok(late);
    new PrincipalProofVerifier().verify(late.principal, late.proof, {
      allowedOrigins: new Set([SITE]),
      now: clock.t,
    });
    clock.t += 2 * 60_000;
    assert.equal(await auth.session(page(SITE, cookie)), undefined, "the session ends");
  });

  test("a plain-http loopback site gets a cookie without Secure", async () => {
    const auth = createAuthHandlers({ sessionSecret: SECRET, origin: "http://127.0.0.1:8080" });
    const { res, cookie } = await login(auth, newKey());
    assert.equal(res.status, 200);
    const set = res.headers.getSetCookie()[0] as string;
    assert.ok(set.startsWith("seed_session="));
    assert.equal(set.includes("Secure"), false);
    assert.ok(await auth.session(page(auth.origin, cookie)));
  });

  test("a replayed nonce is refused, and a failed attempt uses the nonce up", async () => {
    const { auth } = setup();
    const key = newKey();
    const c = await getChallenge(auth);
    const body = {
      publicKeyMultikey: key.principal,
      signature: sign(key, c, SITE),
      nonce: c.nonce,
    };
    assert.equal((await loginRaw(auth, body)).status, 200);
    assert.deepEqual(await refusal(await loginRaw(auth, body)), {
      status: 401,
      code: "unknown_nonce",
    });

    const c2 = await getChallenge(auth);
    const good = {
      publicKeyMultikey: key.principal,
      signature: sign(key, c2, SITE),
      nonce: c2.nonce,
    };
    const wrong = { ...good, signature: b64(new Uint8Array(64)) };
    assert.deepEqual(await refusal(await loginRaw(auth, wrong)), {
      status: 401,
      code: "bad_signature",
    });
    assert.deepEqual(await refusal(await loginRaw(auth, good)), {
      status: 401,
      code: "unknown_nonce",
    });
    const c3 = await getChallenge(auth);
    assert.deepEqual(
      await refusal(await loginRaw(auth, { ...good, nonce: c3.nonce, publicKeyMultikey: "x" })),
      { status: 400, code: "malformed_key" },
    );
    assert.deepEqual(
      await refusal(
        await loginRaw(auth, { ...good, nonce: c3.nonce, signature: sign(key, c3, SITE) }),
      ),
      { status: 401, code: "unknown_nonce" },
      "a malformed-key attempt used the nonce up too",
    );
    assert.deepEqual(
      await refusal(await loginRaw(auth, { ...good, nonce: b64(randomBytes(16)) })),
      {
        status: 401,
        code: "unknown_nonce",
      },
    );
  });

  test("an expired challenge is refused", async () => {
    const { auth, clock } = setup();
    const key = newKey();
    const c = await getChallenge(auth);
    clock.t += 120_000;
    const res = await loginRaw(auth, {
      publicKeyMultikey: key.principal,
      signature: sign(key, c, SITE),
      nonce: c.nonce,
    });
    assert.deepEqual(await refusal(res), { status: 401, code: "expired_challenge" });
    // A challenge that expired long ago was pruned: it is simply unknown.
    const old = await getChallenge(auth);
    clock.t += 3_600_000;
    await getChallenge(auth);
    const late = await loginRaw(auth, {
      publicKeyMultikey: key.principal,
      signature: sign(key, old, SITE),
      nonce: old.nonce,
    });
    assert.equal((await refusal(late)).status, 401);
  });

  test("a signature for another origin, by another key or over other bytes is refused", async () => {
    const { auth } = setup();
    const key = newKey();
    const other = newKey();
    for (const [name, make] of [
      [
        "other origin",
        (c: { challenge: string; nonce: string; expiresAt: string }) =>
          sign(key, c, "https://evil.example"),
      ],
      [
        "http variant",
        (c: { challenge: string; nonce: string; expiresAt: string }) =>
          sign(key, c, "http://site.example"),
      ],
      [
        "trailing slash",
        (c: { challenge: string; nonce: string; expiresAt: string }) => sign(key, c, `${SITE}/`),
      ],
      [
        "other key",
        (c: { challenge: string; nonce: string; expiresAt: string }) => sign(other, c, SITE),
      ],
      [
        "other challenge",
        (c: { challenge: string; nonce: string; expiresAt: string }) =>
          sign(key, { ...c, challenge: b64(randomBytes(32)) }, SITE),
      ],
    ] as const) {
      const c = await getChallenge(auth);
      const res = await loginRaw(auth, {
        publicKeyMultikey: key.principal,
        signature: make(c),
        nonce: c.nonce,
      });
      assert.deepEqual(await refusal(res), { status: 401, code: "bad_signature" }, name);
    }
  });

  test("a malformed multikey is refused", async () => {
    const { auth } = setup();
    const key = newKey();
    const keyBytes = base58btc.decode(key.principal);
    const secp = Uint8Array.from([0xe7, 0x01, ...keyBytes.slice(2), 0]);
    const cases: unknown[] = [
      "",
      42,
      null,
      key.principal.slice(1),
      `${key.principal}1`,
      key.principal.replace(/^z/, "Z"),
      `u${Buffer.from(keyBytes).toString("base64url")}`,
      base58btc.encode(secp),
      base58btc.encode(keyBytes.slice(0, 33)),
      `z${"1".repeat(200)}`,
      `1${key.principal}`,
    ];
    for (const publicKeyMultikey of cases) {
      const c = await getChallenge(auth);
      const res = await loginRaw(auth, {
        publicKeyMultikey,
        signature: sign(key, c, SITE),
        nonce: c.nonce,
      });
      assert.deepEqual(
        await refusal(res),
        { status: 400, code: "malformed_key" },
        String(publicKeyMultikey),
      );
    }
  });

  test("malformed requests: fields, JSON, content type, method, path", async () => {
    const { auth } = setup();
    const key = newKey();
    const c = await getChallenge(auth);
    const good = {
      publicKeyMultikey: key.principal,
      signature: sign(key, c, SITE),
      nonce: c.nonce,
    };
    for (const body of [
      "not json",
      "[]",
      "null",
      JSON.stringify({ ...good, nonce: undefined }),
      JSON.stringify({ ...good, nonce: `${good.nonce}=` }),
      JSON.stringify({ ...good, nonce: b64(randomBytes(15)) }),
    ]) {
      assert.deepEqual(await refusal(await loginRaw(auth, body)), {
        status: 400,
        code: "bad_request",
      });
    }
    const c2 = await getChallenge(auth);
    const sig = sign(key, c2, SITE);
    assert.deepEqual(
      await refusal(
        await loginRaw(auth, {
          publicKeyMultikey: key.principal,
          signature: sig.slice(0, -2),
          nonce: c2.nonce,
        }),
      ),
      { status: 400, code: "bad_request" },
    );
    assert.deepEqual(
      await refusal(
        await auth.login(
          post(SITE, "/hm/auth/login", good, { "content-type": "text/plain;charset=UTF-8" }),
        ),
      ),
      { status: 400, code: "bad_request" },
      "a form-like content type is refused",
    );
    const invalidUtf8 = new Request(`${SITE}/hm/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: SITE },
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    });
    assert.equal((await refusal(await auth.login(invalidUtf8))).code, "bad_request");

    for (const path of ["/hm/auth/challenge", "/hm/auth/login", "/hm/auth/logout"]) {
      const res = await auth.handle(new Request(`${SITE}${path}`));
      assert.ok(res);
      assert.equal(res.status, 405);
      assert.equal(res.headers.get("allow"), "POST");
      assert.equal(((await res.json()) as { code: string }).code, "method_not_allowed");
    }
    assert.equal(await auth.handle(post(SITE, "/hm/auth/other")), undefined);
    assert.equal(await auth.handle(post(SITE, "/hm/auth/login/")), undefined);
    assert.equal(await auth.handle(new Request(`${SITE}/`)), undefined);
    const routed = await auth.handle(post(SITE, "/hm/auth/challenge?x=1"));
    assert.equal(routed?.status, 200);
  });

  test("an oversized body is refused before parsing, by Content-Length or by what is sent", async () => {
    const { auth } = setup();
    const big = JSON.stringify({ pad: "x".repeat(70 * 1024) });
    const declared = await auth.login(post(SITE, "/hm/auth/login", big));
    assert.deepEqual(await refusal(declared), { status: 413, code: "body_too_large" });

    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close();
        else controller.enqueue(new Uint8Array(16 * 1024).fill(0x20));
      },
    });
    const chunked = new Request(`${SITE}/hm/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: SITE },
      body: stream,
      duplex: "half",
    } as RequestInit);
    assert.deepEqual(await refusal(await auth.login(chunked)), {
      status: 413,
      code: "body_too_large",
    });
    assert.ok(pulled < 10, `stopped reading early (${pulled} chunks)`);
  });

  test("a cross-site POST is refused on every endpoint; no Origin header is fine", async () => {
    const { auth } = setup();
    const key = newKey();
    const { cookie } = await login(auth, key);
    for (const path of [
      "/hm/auth/challenge",
      "/hm/auth/login",
      "/hm/auth/logout",
      "/hm/auth/capabilities",
    ]) {
      const refused: Record<string, string>[] = [
        { origin: "https://evil.example" },
        { origin: "null" },
        { origin: "http://site.example" },
        { origin: "https://sub.site.example" },
        { origin: SITE, "sec-fetch-site": "cross-site" },
        { origin: SITE, "sec-fetch-site": "same-site" },
      ];
      for (const headers of refused) {
        const res = await auth.handle(post(SITE, path, {}, { cookie, ...headers }));
        assert.ok(res);
        assert.deepEqual(await refusal(res), { status: 403, code: "bad_origin" }, path);
      }
    }
    assert.ok(await auth.session(page(SITE, cookie)), "the refused logout did not log out");
    const c = await getChallenge(auth);
    const noOrigin = new Request(`${SITE}/hm/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "sec-fetch-site": "same-origin" },
      body: JSON.stringify({
        publicKeyMultikey: key.principal,
        signature: sign(key, c, SITE),
        nonce: c.nonce,
      }),
    });
    assert.equal((await auth.login(noOrigin)).status, 200);
  });
});

describe("sessions", () => {
  test("a tampered cookie, or one sealed under another secret, is no session", async () => {
    const { auth, store, clock } = setup();
    const key = newKey();
    const { cookie } = await login(auth, key);
    const [name, value] = cookie.split("=") as [string, string];
    assert.ok(await auth.session(page(SITE, cookie)));
    for (let i = 0; i < value.length; i += Math.ceil(value.length / 40)) {
      const flipped = value.slice(0, i) + (value[i] === "A" ? "B" : "A") + value.slice(i + 1);
      assert.equal(await auth.session(page(SITE, `${name}=${flipped}`)), undefined, String(i));
    }
    const bytes = unb64(value);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    assert.equal(await auth.session(page(SITE, `${name}=${b64(bytes)}`)), undefined);
    assert.equal(await auth.session(page(SITE, `${name}=${value.slice(0, -4)}`)), undefined);
    assert.equal(await auth.session(page(SITE, `${name}=`)), undefined);
    assert.equal(await auth.session(page(SITE, `other=${value}`)), undefined);
    assert.equal(await auth.session(new Request(`${SITE}/`)), undefined);

    const otherSecret = createAuthHandlers({
      sessionSecret: randomBytes(32),
      origin: SITE,
      sessionStore: store,
      now: () => clock.t,
    });
    assert.equal(await otherSecret.session(page(SITE, cookie)), undefined);
    // Another cookie of the same name in front (planted by a sibling site) does not hide ours.
    assert.ok(await auth.session(page(SITE, `${name}=junk; ${cookie}`)));
  });

  test("logout ends the session server-side: the old cookie no longer works", async () => {
    const { auth, store } = setup();
    const { cookie } = await login(auth, newKey());
    assert.equal(store.size, 1);
    const res = await auth.logout(post(SITE, "/hm/auth/logout", undefined, { cookie }));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
    const cleared = res.headers.getSetCookie()[0] as string;
    assert.match(cleared, /^__Host-seed_session=; Max-Age=0;/);
    assert.equal(store.size, 0);
    assert.equal(await auth.session(page(SITE, cookie)), undefined);
    const again = await auth.logout(post(SITE, "/hm/auth/logout", undefined, { cookie }));
    assert.equal(again.status, 200, "also when not logged in");
    assert.equal((await auth.handle(post(SITE, "/hm/auth/logout")))?.status, 200);
  });

  test("a new login replaces the browser's previous session", async () => {
    const { auth, store } = setup();
    const first = await login(auth, newKey());
    const c = await getChallenge(auth);
    const key = newKey();
    const res = await auth.login(
      post(
        SITE,
        "/hm/auth/login",
        { publicKeyMultikey: key.principal, signature: sign(key, c, SITE), nonce: c.nonce },
        { cookie: first.cookie },
      ),
    );
    assert.equal(res.status, 200);
    assert.equal(store.size, 1);
    assert.equal(await auth.session(page(SITE, first.cookie)), undefined);
    assert.equal((await auth.session(page(SITE, cookieOf(res))))?.principal, key.principal);
  });

  test("the memory store is bounded: the least recently used session goes first", async () => {
    const clock = { t: Date.now() };
    const store = new MemorySessionStore({ maxSessions: 2, now: () => clock.t });
    const auth = createAuthHandlers({
      sessionSecret: SECRET,
      origin: SITE,
      sessionStore: store,
      now: () => clock.t,
    });
    const a = await login(auth, newKey());
    const b = await login(auth, newKey());
    assert.ok(await auth.session(page(SITE, a.cookie)), "touch a");
    const c = await login(auth, newKey());
    assert.equal(store.size, 2);
    assert.ok(await auth.session(page(SITE, a.cookie)));
    assert.equal(await auth.session(page(SITE, b.cookie)), undefined);
    assert.ok(await auth.session(page(SITE, c.cookie)));
    assert.throws(() => new MemorySessionStore({ maxSessions: 0 }), RangeError);
  });

  test("a custom store is used, and only what it holds counts", async () => {
    const map = new Map<string, unknown>();
    const store: SessionStore = {
      get: async (id) => map.get(id) as never,
      set: async (id, r) => {
        map.set(id, r);
      },
      delete: async (id) => {
        map.delete(id);
      },
    };
    const auth = createAuthHandlers({ sessionSecret: SECRET, origin: SITE, sessionStore: store });
    const { cookie } = await login(auth, newKey());
    assert.equal(map.size, 1);
    assert.ok(await auth.session(page(SITE, cookie)));
    map.clear();
    assert.equal(await auth.session(page(SITE, cookie)), undefined);
  });

  test("nothing secret reaches a response", async () => {
    const { auth } = setup();
    const { res, cookie } = await login(auth, newKey());
    const session = await auth.session(page(SITE, cookie));
    assert.ok(session);
    const texts = [JSON.stringify(session), await res.text(), [...res.headers].join("\n"), cookie];
    for (const t of texts) {
      assert.equal(t.includes(SECRET), false);
      assert.equal(t.includes(SECRET.slice(0, 12)), false);
    }
    // The cookie is sealed: neither the principal nor the proof shows in it.
    assert.equal(cookie.includes(session.principal), false);
    assert.equal(cookie.includes(session.proof.slice(0, 20)), false);
  });
});

describe("capabilities", () => {
  const issuer = newKey();

  test("need a session; are added, deduplicated and kept server-side", async () => {
    const { auth } = setup();
    const key = newKey();
    const cap1 = capability(issuer, key.principal, "/a");
    const cap2 = capability(issuer, key.principal, "/b");
    const anon = await auth.capabilities(
      post(SITE, "/hm/auth/capabilities", { capabilities: [b64(cap1)] }),
    );
    assert.deepEqual(await refusal(anon), { status: 401, code: "not_logged_in" });

    const { cookie } = await login(auth, key, { capabilities: [b64(cap1)] });
    assert.deepEqual((await auth.session(page(SITE, cookie)))?.capabilities.map(b64), [b64(cap1)]);
    const add = (caps: unknown) =>
      auth.capabilities(post(SITE, "/hm/auth/capabilities", { capabilities: caps }, { cookie }));
    const res = await add([b64(cap2), b64(cap1), b64(cap2)]);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { count: 2 });
    const s = await auth.session(page(SITE, cookie));
    assert.deepEqual(s?.capabilities.map(b64), [b64(cap1), b64(cap2)]);
    assert.ok(!cookie.includes(b64(cap1).slice(0, 20)), "capabilities are not in the cookie");
    assert.equal((await add([])).status, 200);

    for (const [caps, code] of [
      [b64(cap1), "bad_request"],
      [[42], "bad_request"],
      [undefined, "bad_request"],
      [["!!"], "malformed_capability"],
      [[""], "malformed_capability"],
      [[b64(new Uint8Array([1, 2, 3]))], "malformed_capability"],
      [[b64(dagCbor.encode({ type: "Ref" }))], "malformed_capability"],
    ] as const) {
      assert.deepEqual(await refusal(await add(caps)), { status: 400, code }, JSON.stringify(caps));
    }
    assert.equal((await auth.session(page(SITE, cookie)))?.capabilities.length, 2, "unchanged");
  });

  test("bounds: count and size; a refused batch adds nothing", async () => {
    const { auth } = setup({ maxCapabilities: 3, maxCapabilityBytes: 400 });
    const key = newKey();
    const caps = [1, 2, 3, 4].map((i) => capability(issuer, key.principal, `/p${i}`));
    const { cookie } = await login(auth, key, { capabilities: caps.slice(0, 2).map(b64) });
    const add = (list: Uint8Array[]) =>
      auth.capabilities(
        post(SITE, "/hm/auth/capabilities", { capabilities: list.map(b64) }, { cookie }),
      );
    assert.deepEqual(await refusal(await add(caps.slice(2, 4))), {
      status: 400,
      code: "too_many_capabilities",
    });
    assert.equal((await auth.session(page(SITE, cookie)))?.capabilities.length, 2);
    assert.equal((await add([caps[2] as Uint8Array])).status, 200);
    assert.deepEqual(await refusal(await add(caps)), {
      status: 400,
      code: "too_many_capabilities",
    });
    const big = new Uint8Array(401);
    assert.deepEqual(await refusal(await add([big])), {
      status: 400,
      code: "capability_too_large",
    });
    // At login too: a refused batch creates no session.
    const c = await getChallenge(auth);
    const res = await auth.login(
      post(SITE, "/hm/auth/login", {
        publicKeyMultikey: key.principal,
        signature: sign(key, c, SITE),
        nonce: c.nonce,
        capabilities: caps.map(b64),
      }),
    );
    assert.deepEqual(await refusal(res), { status: 400, code: "too_many_capabilities" });
  });
});
