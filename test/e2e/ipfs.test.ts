import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as h1request, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { base58btc } from "multiformats/bases/base58";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { cidForBytes, verifyCid } from "../../src/blob/index.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  type DocumentChange,
  DocumentChangeSchema,
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor, codeOf } from "../helpers/clients.js";
import { randomToken, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";
import { rawHttp2 } from "../helpers/http.js";
import { loginProof } from "../helpers/login-proof.js";

const SITE = "https://site.example";
const PAIRED = "https://paired.example";
const WEB = randomToken();
const ALICE_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const BOB_SEED = keyFromMnemonic(
  "legal winner thank year wave sausage worth useful legal winner thank yellow".split(" "),
);
const ALICE = principalToString(publicKeyFromSeed(keyFromMnemonic(ALICE_WORDS)));
const BOB = principalToString(publicKeyFromSeed(BOB_SEED));

const NOT_FOUND_BODY = '{"code":"not_found","message":"blob not found"}';
const PUBLIC_CACHE = "public, max-age=31536000, immutable";
const PRIVATE_CACHE = "private, no-store";
const DAG_CBOR = "application/vnd.ipld.dag-cbor";
/** Multicodec of raw bytes: a CID, but not one a Seed blob has. */
const RAW_CODEC = 0x55;

const title = (t: string): DocumentChange =>
  create(DocumentChangeSchema, { op: { case: "setMetadata", value: { key: "title", value: t } } });

/** A response with its body as bytes (blobs are binary). */
interface BlobResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/1.1 request on its own connection. */
function http1(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<BlobResponse> {
  return new Promise((resolve, reject) => {
    const req = h1request(
      {
        host: "127.0.0.1",
        port,
        method: opts.method ?? "GET",
        path,
        headers: opts.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const bearer = (token: string, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${token}`,
  ...extra,
});

/** The headers that must match between two answers (the per-response ones left out). */
function stableHeaders(h: IncomingHttpHeaders): Record<string, unknown> {
  const { date: _date, connection: _connection, "keep-alive": _keepAlive, ...rest } = h;
  return rest;
}

/** Asserts `res` is the 404 of a missing blob, byte for byte (`missing` is one). */
function assertNotFound(res: BlobResponse, missing: BlobResponse, what: string): void {
  assert.equal(res.status, 404, what);
  assert.equal(res.body.toString(), NOT_FOUND_BODY, what);
  assert.deepEqual(stableHeaders(res.headers), stableHeaders(missing.headers), what);
}

function auditRecords(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A well-formed CID nothing was stored under. */
const MISSING = cidForBytes(randomBytes(40)).string;

describe("GET /ipfs/{cid}", () => {
  let d: TestDaemon;
  let auditFile: string;
  /** CIDs of the public document's changes (genesis last) and of the private one's. */
  let pub: string[];
  let priv: string[];
  let capability = "";
  let bobProof = "";
  const blob = (cid: string, headers: Record<string, string> = {}, method = "GET") =>
    http1(d.httpPort, `/ipfs/${cid}`, { method, headers });
  const asBob = () => bearer(WEB, { "x-seed-principal": BOB, "x-seed-principal-proof": bobProof });

  before(async () => {
    auditFile = join(tempDir(), "audit.jsonl");
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", SITE, "--audit-log", auditFile],
    });
    await clientFor(Daemon, "connect", d, d.token).registerKey({
      name: "alice",
      mnemonic: ALICE_WORDS,
    });
    const docs = clientFor(Documents, "connect", d, d.token);
    const v1 = await docs.createDocumentChange({
      account: ALICE,
      path: "/pub",
      signingKeyName: "alice",
      changes: [title("Public")],
    });
    await docs.createDocumentChange({
      account: ALICE,
      path: "/pub",
      signingKeyName: "alice",
      baseVersion: v1.version,
      changes: [title("Public, again")],
    });
    await docs.createDocumentChange({
      account: ALICE,
      path: "/private/plans",
      signingKeyName: "alice",
      visibility: ResourceVisibility.PRIVATE,
      changes: [title("Plans")],
    });
    const ids = async (path: string) =>
      (await docs.listDocumentChanges({ account: ALICE, path })).changes.map((c) => c.id);
    pub = await ids("/pub");
    priv = await ids("/private/plans");
    assert.equal(pub.length, 3, "genesis and two changes");
    assert.equal(priv.length, 2, "genesis and one change");
    bobProof = loginProof(BOB_SEED, SITE);
  });
  after(async () => {
    if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
  });

  test("full token: public and private blobs, with the bytes of the CID asked for", async () => {
    for (const cid of [...pub, ...priv]) {
      const res = await blob(cid, bearer(d.token));
      assert.equal(res.status, 200, cid);
      assert.equal(cidForBytes(res.body).string, cid, "the bytes hash to the requested CID");
      assert.equal(res.headers["content-type"], DAG_CBOR);
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.equal(res.headers["content-length"], String(res.body.length));
      assert.equal(res.headers.etag, `"${cid}"`);
      assert.equal(
        res.headers["cache-control"],
        pub.includes(cid) ? PUBLIC_CACHE : PRIVATE_CACHE,
        "only a public document's blob may be cached by anyone",
      );
    }
    // The query string is ignored.
    assert.equal((await blob(`${pub[0]}?download=1`, bearer(d.token))).status, 200);
  });

  test("a blob is served under its sha2-256 CID too (the store keeps that alias)", async () => {
    for (const cid of [pub[0], priv[0]] as string[]) {
      const bytes = (await blob(cid, bearer(d.token))).body;
      const sha = cidForBytes(bytes, "sha2-256").string;
      assert.notEqual(sha, cid);
      const res = await blob(sha, bearer(d.token));
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, bytes);
      assert.equal(verifyCid(res.body, sha).string, sha);
      assert.equal(res.headers.etag, `"${sha}"`, "the ETag names the CID as requested");
    }
    // Another multibase spelling of a CID names the same blob; the ETag is the normal spelling.
    const base58 = CID.parse(pub[0] as string).toString(base58btc);
    const res = await blob(base58, bearer(d.token));
    assert.equal(res.status, 200);
    assert.equal(res.headers.etag, `"${pub[0]}"`);
  });

  test("a token is needed: 401 without one or with a wrong one, before anything is looked at", async () => {
    for (const headers of [{}, bearer(randomToken())]) {
      for (const cid of [pub[0] as string, MISSING, "not-a-cid"]) {
        const res = await blob(cid, headers);
        assert.equal(res.status, 401);
        assert.equal(JSON.parse(res.body.toString()).code, "unauthenticated");
        assert.match(String(res.headers["www-authenticate"]), /^Bearer/);
      }
    }
    assert.equal((await blob(pub[0] as string, {}, "POST")).status, 401, "405 needs a token");
  });

  test("bad CIDs are 400 without an echo; other methods 405; other /ipfs paths are not blobs", async () => {
    const weird = ["not-a-cid", "bafy%3Cscript%3E", "Qm".padEnd(46, "x"), "b".repeat(200)];
    // A valid CID of another codec (raw) is not a blob CID either.
    const digest = createHash("sha256").update("x").digest();
    weird.push(CID.createV1(RAW_CODEC, Digest.create(0x12, digest)).toString());
    for (const cid of weird) {
      const res = await blob(cid, bearer(d.token));
      assert.equal(res.status, 400, cid);
      assert.equal(res.body.toString(), '{"code":"invalid_argument","message":"invalid CID"}');
      assert.equal(res.body.toString().includes(cid), false);
    }
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const res = await http1(d.httpPort, `/ipfs/${pub[0]}`, {
        method,
        headers: bearer(d.token, { "content-type": "application/json" }),
        body: "{}",
      });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, "GET, HEAD");
      assert.deepEqual(JSON.parse(res.body.toString()), {
        code: "unimplemented",
        message: "method not allowed",
      });
    }
    for (const path of ["/ipfs", "/ipfs/", `/ipfs/${pub[0]}/x`, `/ipfs//${pub[0]}`]) {
      const res = await http1(d.httpPort, path, { headers: bearer(d.token) });
      assert.equal(res.status, 404, path);
      assert.notEqual(res.headers["content-type"], DAG_CBOR, path);
      assert.notEqual(res.body.toString(), NOT_FOUND_BODY, `${path} reaches the RPC router`);
    }
  });

  test("web token, anonymous: public blobs only; a private one is the same 404 as a missing one", async () => {
    const missing = await blob(MISSING, bearer(WEB));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.toString(), NOT_FOUND_BODY);
    assert.equal(missing.headers["content-type"], "application/json");
    for (const cid of pub) {
      const res = await blob(cid, bearer(WEB));
      assert.equal(res.status, 200);
      assert.equal(cidForBytes(res.body).string, cid);
      assert.equal(res.headers["cache-control"], PUBLIC_CACHE);
    }
    for (const cid of priv) {
      assertNotFound(await blob(cid, bearer(WEB)), missing, "anonymous, private");
      const bytes = (await blob(cid, bearer(d.token))).body;
      const sha = cidForBytes(bytes, "sha2-256").string;
      assertNotFound(await blob(sha, bearer(WEB)), missing, "anonymous, private, sha2-256");
    }
  });

  test("HEAD: the same status and headers, no body", async () => {
    for (const [cid, token] of [
      [pub[0], WEB],
      [priv[0], d.token],
      [priv[0], WEB],
      [MISSING, WEB],
      ["not-a-cid", WEB],
    ] as [string, string][]) {
      const get = await blob(cid, bearer(token));
      const head = await blob(cid, bearer(token), "HEAD");
      assert.equal(head.status, get.status, cid);
      assert.equal(head.body.length, 0);
      assert.deepEqual(stableHeaders(head.headers), stableHeaders(get.headers), cid);
    }
  });

  test("HTTP/2 (h2c) serves the same answers", async () => {
    const get = (cid: string, token: string, method = "GET") =>
      rawHttp2({ port: d.grpcPort, method, path: `/ipfs/${cid}`, headers: bearer(token) });
    const one = await blob(pub[0] as string, bearer(WEB));
    const res = await get(pub[0] as string, WEB);
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], DAG_CBOR);
    assert.equal(res.headers["content-length"], String(one.body.length));
    assert.equal(res.headers["cache-control"], PUBLIC_CACHE);
    const head = await get(pub[0] as string, WEB, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    const hidden = await get(priv[0] as string, WEB);
    const missing = await get(MISSING, WEB);
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body, NOT_FOUND_BODY);
    assert.equal(hidden.body, missing.body);
    assert.equal((await get(pub[0] as string, randomToken())).status, 401);
  });

  test("a forwarded principal reads a private blob once a READER capability covers it", async () => {
    const missing = await blob(MISSING, bearer(WEB));
    for (const cid of priv) {
      assertNotFound(await blob(cid, asBob()), missing, "Bob without a capability");
    }
    // The forwarding headers are checked as on the RPC path, with fixed messages.
    const badProof = await blob(pub[0] as string, {
      ...asBob(),
      "x-seed-principal-proof": loginProof(BOB_SEED, "https://other.example"),
    });
    assert.equal(badProof.status, 401);
    assert.equal(JSON.parse(badProof.body.toString()).code, "unauthenticated");
    assert.equal(
      (await blob(pub[0] as string, bearer(WEB, { "x-seed-principal": BOB }))).status,
      401,
      "a principal without a proof",
    );
    const badCaps = await blob(pub[0] as string, bearer(WEB, { "x-seed-capabilities": "!" }));
    assert.equal(badCaps.status, 400);
    assert.equal(JSON.parse(badCaps.body.toString()).code, "invalid_argument");
    assert.equal(badCaps.body.toString().includes("!"), false);

    const cap = await clientFor(AccessControl, "connect", d, d.token).createCapability({
      signingKeyName: "alice",
      account: ALICE,
      delegate: BOB,
      path: "/private",
      role: Role.READER,
    });
    capability = cap.id;
    for (const cid of priv) {
      const res = await blob(cid, asBob());
      assert.equal(res.status, 200, "Bob, with a capability");
      assert.equal(cidForBytes(res.body).string, cid);
      assert.equal(res.headers["cache-control"], PRIVATE_CACHE);
    }
    // Still nothing for the anonymous caller.
    assertNotFound(
      await blob(priv[0] as string, bearer(WEB)),
      missing,
      "anonymous after the grant",
    );
  });

  test("a capability blob: seen by the local user and its delegate, by nobody else", async () => {
    assert.notEqual(capability, "");
    const missing = await blob(MISSING, bearer(WEB));
    const local = await blob(capability, bearer(d.token));
    assert.equal(local.status, 200);
    assert.equal(cidForBytes(local.body).string, capability);
    assert.equal(local.headers["cache-control"], PRIVATE_CACHE);
    assert.equal((await blob(capability, asBob())).status, 200, "the delegate");
    assertNotFound(await blob(capability, bearer(WEB)), missing, "anonymous, capability");
  });

  test("a paired origin's token: public blobs only, and no identity headers", async () => {
    const pair = await clientFor(Daemon, "connect", d, d.token).pairOrigin({ origin: PAIRED });
    const paired = (extra: Record<string, string> = {}) =>
      bearer(pair.token, { origin: PAIRED, ...extra });
    const missing = await blob(MISSING, paired());
    assert.equal(missing.status, 404);
    assert.equal(missing.headers["access-control-allow-origin"], PAIRED);
    const res = await blob(pub[0] as string, paired());
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], PAIRED);
    assert.equal(res.headers["cache-control"], PUBLIC_CACHE);
    for (const cid of [...priv, capability]) {
      assertNotFound(await blob(cid, paired()), missing, "paired origin");
    }
    // Its token works from its own origin only.
    assert.equal((await blob(pub[0] as string, bearer(pair.token))).status, 401);
    for (const header of ["x-seed-principal", "x-seed-principal-proof", "x-seed-capabilities"]) {
      const refused = await blob(pub[0] as string, paired({ [header]: "x" }));
      assert.equal(refused.status, 403, header);
      assert.equal(JSON.parse(refused.body.toString()).code, "permission_denied");
    }
    const records = auditRecords(auditFile);
    assert.ok(
      records.some(
        (r) => r.event === "scope.denied" && r.method === "GET /ipfs" && r.origin === PAIRED,
      ),
    );
  });

  test("private reads leave document.read audit records; no secret reaches a log", async () => {
    const reads = auditRecords(auditFile).filter(
      (r) => r.event === "document.read" && r.method === "GET /ipfs",
    );
    assert.ok(
      reads.some(
        (r) =>
          r.outcome === "granted" &&
          r.principal === BOB &&
          r.capability === capability &&
          r.path === "/private/plans",
      ),
      "Bob's granted read names the capability",
    );
    assert.ok(reads.some((r) => r.outcome === "denied" && r.path === "/private/plans"));
    assert.ok(
      reads.some((r) => r.outcome === "granted" && r.principal === ALICE && r.reason === "owner"),
      "the local user's read, as the owner",
    );
    assert.ok(
      reads.every((r) => r.path === "/private/plans" && r.account === ALICE),
      "public reads leave no record",
    );
    for (const text of [d.output(), readFileSync(auditFile, "utf8")]) {
      for (const secret of [d.token, WEB, bobProof]) {
        assert.equal(text.includes(secret), false);
      }
    }
  });

  test("--public-only: public blobs need no token; nothing else is served to anyone", async () => {
    assert.equal((await d.stop()).code, 0);
    const p = await startDaemon({
      dataDir: d.dataDir,
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--public-only", "--cors-origin", SITE, "--audit-log", auditFile],
    });
    try {
      const get = (cid: string, headers: Record<string, string> = {}, method = "GET") =>
        http1(p.httpPort, `/ipfs/${cid}`, { method, headers });
      const missing = await get(MISSING);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), NOT_FOUND_BODY);
      for (const cid of pub) {
        const res = await get(cid);
        assert.equal(res.status, 200, "no token needed");
        assert.equal(cidForBytes(res.body).string, cid);
        assert.equal(res.headers["cache-control"], PUBLIC_CACHE);
        const head = await get(cid, {}, "HEAD");
        assert.equal(head.status, 200);
        assert.equal(head.body.length, 0);
        assert.equal(head.headers["content-length"], String(res.body.length));
      }
      // Authorization and the forwarding headers are ignored, good or bad.
      for (const headers of [
        bearer(randomToken()),
        bearer(p.token),
        { "x-seed-principal": BOB, "x-seed-principal-proof": "junk", "x-seed-capabilities": "!" },
      ]) {
        assert.equal((await get(pub[0] as string, headers)).status, 200);
      }
      for (const cid of [...priv, capability]) {
        for (const headers of [{}, bearer(p.token), asBob(), bearer(WEB)]) {
          assertNotFound(await get(cid, headers), missing, "public-only");
        }
      }
      const bytes = (await get(pub[0] as string)).body;
      assert.equal((await get(cidForBytes(bytes, "sha2-256").string)).status, 200);
      assert.equal((await get("not-a-cid")).status, 400);
      // Everything else keeps the token rule.
      assert.equal((await get(pub[0] as string, {}, "POST")).status, 401);
      assert.equal((await get(pub[0] as string, bearer(p.token), "POST")).status, 405);
      assert.equal(
        await codeOf(clientFor(Daemon, "connect", p, undefined).getInfo({})),
        Code.Unauthenticated,
      );
      // The Host gate and the Origin policy still come first.
      const wrongHost = await http1(p.httpPort, `/ipfs/${pub[0]}`, {
        headers: { host: "evil.example" },
      });
      assert.equal(wrongHost.status, 403);
      const wrongOrigin = await get(pub[0] as string, { origin: "https://evil.example" });
      assert.equal(wrongOrigin.status, 403);
      const site = await get(pub[0] as string, { origin: SITE });
      assert.equal(site.status, 200);
      assert.equal(site.headers["access-control-allow-origin"], SITE);
      for (const secret of [p.token, WEB, bobProof]) {
        assert.equal(p.output().includes(secret), false);
      }
    } finally {
      await p.stop();
    }
  });
});
