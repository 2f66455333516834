import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { AuditEvent } from "../../src/audit/audit.js";
import { createCapability, createChange, createRef } from "../../src/blob/index.js";
import { DomainError } from "../../src/errors.js";
import { keyFromMnemonic, signingKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import type { Credential } from "../../src/security/caller.js";
import { ForwardedIdentityResolver } from "../../src/security/forwarded-identity.js";
import {
  createIpfsHandler,
  type IpfsHandlerDeps,
  ipfsSegmentOf,
  isIpfsReadMethod,
} from "../../src/server/ipfs.js";
import type { NodeRequest, NodeResponse } from "../../src/server/pipeline.js";
import { BlobStore } from "../../src/store/blob-store.js";
import { openDatabase } from "../../src/store/db.js";
import type { NamedKeyInfo } from "../../src/store/keystore.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function mnemonicKey(words: string) {
  const k = signingKeyFromSeed(keyFromMnemonic(words.split(" ")));
  return { principal: principalToString(k.publicKey), sign: k.sign };
}
const ALICE = mnemonicKey(
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
);
const BOB = mnemonicKey(
  "legal winner thank year wave sausage worth useful legal winner thank yellow",
);

const MASTER: Credential = { kind: "master" };
const WEB: Credential = { kind: "web" };
const NOT_FOUND = '{"code":"not_found","message":"blob not found"}';
const title = (value: string) => [
  { type: "SetAttributes" as const, attrs: [{ key: ["title"], value }] },
];

/** A store with Alice's documents, and the handler's other deps recorded. */
function fixture(overrides: Partial<IpfsHandlerDeps> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "seed-ipfs-test-"));
  dirs.push(dir);
  const db = openDatabase(dir);
  const store = new BlobStore(db);
  const audit: AuditEvent[] = [];
  const logged: unknown[] = [];
  const deps: IpfsHandlerDeps = {
    store,
    keystore: {
      list: () => [{ accountId: ALICE.principal } as NamedKeyInfo],
    },
    audit: { record: (e) => audit.push(e) },
    identity: new ForwardedIdentityResolver([]),
    publicOnly: false,
    logger: { error: (...args: unknown[]) => logged.push(args) } as IpfsHandlerDeps["logger"],
    ...overrides,
  };
  const handler = createIpfsHandler(deps);
  const commit = (path: string, visibility: "public" | "private" = "public") =>
    store.commitChange({
      account: ALICE.principal,
      path,
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title(path),
      visibility,
    });
  const get = (
    cid: string,
    opts: {
      credential?: Credential | undefined;
      method?: string;
      headers?: Record<string, string>;
      origin?: string;
    } = {},
  ) => {
    const headers: Record<string, string> = {};
    let body: Buffer | undefined;
    const res = {
      statusCode: 0,
      headersSent: false,
      setHeader(k: string, v: string) {
        headers[k] = v;
      },
      end(b?: Buffer) {
        body = b;
      },
    };
    const req = {
      method: opts.method ?? "GET",
      headers: opts.headers ?? {},
      socket: { remoteAddress: "127.0.0.1" },
    };
    const outcome = handler.serve(req as unknown as NodeRequest, res as unknown as NodeResponse, {
      segment: cid,
      credential: "credential" in opts ? opts.credential : MASTER,
      origin: opts.origin,
    });
    return { outcome, status: res.statusCode, headers, body: body?.toString() };
  };
  return { db, store, audit, logged, handler, commit, get };
}

describe("the /ipfs route", () => {
  it("is exactly one non-empty segment after /ipfs/", () => {
    assert.equal(ipfsSegmentOf("/ipfs/bafyx"), "bafyx");
    for (const p of [
      "/ipfs",
      "/ipfs/",
      "/ipfs/a/b",
      "/ipfs//a",
      "/ipfsx/a",
      "/IPFS/a",
      "/x/ipfs/a",
    ]) {
      assert.equal(ipfsSegmentOf(p), undefined, p);
    }
    assert.ok(isIpfsReadMethod("GET") && isIpfsReadMethod("HEAD"));
    assert.ok(
      !isIpfsReadMethod("POST") && !isIpfsReadMethod("get") && !isIpfsReadMethod(undefined),
    );
  });
});

describe("createIpfsHandler", () => {
  it("serves a blob a public document covers as public, even when a private one covers it too", () => {
    const f = fixture();
    const open = f.commit("/a");
    // A private document at /b on the same genesis and heads.
    const ref = createRef(
      {
        signer: ALICE.principal,
        ts: Date.now() + 10,
        path: "/b",
        genesisBlob: open.genesis,
        heads: open.heads,
        visibility: "Private",
      },
      ALICE.sign,
    );
    f.store.putBlobs([{ bytes: ref.bytes }]);
    const target = f.store.blobReadTarget(open.change);
    assert.equal(target?.kind === "document" && target.documents.length, 2);
    for (const credential of [MASTER, WEB]) {
      const res = f.get(open.change, { credential });
      assert.equal(res.status, 200);
      assert.equal(res.headers["cache-control"], "public, max-age=31536000, immutable");
    }
    assert.equal(f.audit.length, 0, "the public document decided it: nothing to audit");

    // The private Ref itself belongs to /b only.
    assert.equal(f.get(ref.cid, { credential: WEB }).body, NOT_FOUND);
    const owner = f.get(ref.cid);
    assert.equal(owner.status, 200);
    assert.equal(owner.headers["cache-control"], "private, no-store");
    assert.deepEqual(
      f.audit.map((e) => [e.event, e.method, e.path, e.outcome]),
      [
        ["document.read", "GET /ipfs", "/b", "denied"],
        ["document.read", "GET /ipfs", "/b", "granted"],
      ],
    );
    f.db.close();
  });

  it("does not serve blobs of deleted documents, nor blobs reachable from no document", () => {
    const f = fixture();
    const gone = f.commit("/gone");
    const tombstone = f.store.deleteDocument({
      account: ALICE.principal,
      path: "/gone",
      signer: ALICE.principal,
      sign: ALICE.sign,
    });
    const lonely = createChange({ signer: BOB.principal, ts: 1 }, BOB.sign);
    f.store.putBlobs([{ bytes: lonely.bytes }]);
    for (const cid of [gone.change, gone.genesis, gone.ref, tombstone.ref, lonely.cid]) {
      const res = f.get(cid);
      assert.equal(res.status, 404, cid);
      assert.equal(res.body, NOT_FOUND);
    }
    f.db.close();
  });

  it("capabilities: the local user sees them, an anonymous or paired caller does not", () => {
    const f = fixture();
    const cap = createCapability(
      { signer: ALICE.principal, ts: Date.now(), delegate: BOB.principal, role: "READER" },
      ALICE.sign,
    );
    f.store.putBlobs([{ bytes: cap.bytes }]);
    assert.equal(f.get(cap.cid).status, 200);
    assert.equal(f.get(cap.cid).headers["cache-control"], "private, no-store");
    assert.equal(f.get(cap.cid, { credential: WEB }).status, 404);
    const paired: Credential = { kind: "origin", origin: "https://p.example" };
    assert.equal(f.get(cap.cid, { credential: paired, origin: "https://p.example" }).status, 404);
    f.db.close();
  });

  it("--public-only: anonymous whatever the request says; private and capability blobs are 404", () => {
    const f = fixture({
      publicOnly: true,
      identity: {
        resolve: () => {
          throw new Error("the resolver must not run in public-only mode");
        },
      },
    });
    const pub = f.commit("/pub");
    const priv = f.commit("/priv", "private");
    const cap = createCapability(
      { signer: ALICE.principal, ts: Date.now(), delegate: BOB.principal, role: "READER" },
      ALICE.sign,
    );
    f.store.putBlobs([{ bytes: cap.bytes }]);
    const forwarded = { "x-seed-principal": BOB.principal, "x-seed-principal-proof": "junk" };
    assert.equal(f.handler.tokenless, true);
    assert.equal(f.get(pub.change, { credential: undefined, headers: forwarded }).status, 200);
    for (const cid of [priv.change, priv.genesis, priv.ref, cap.cid]) {
      for (const credential of [undefined, MASTER]) {
        const res = f.get(cid, { credential, headers: forwarded });
        assert.equal(res.status, 404);
        assert.equal(res.body, NOT_FOUND);
      }
    }
    assert.ok(f.audit.every((e) => e.outcome === "denied" && e.principal === undefined));
    assert.deepEqual(f.logged, []);
    f.db.close();
  });

  it("maps forwarded-identity errors to 401/400 with their fixed messages; a paired origin may not forward", () => {
    const failing = (err: unknown): IpfsHandlerDeps["identity"] => ({
      resolve: () => {
        throw err;
      },
    });
    const cases: [unknown, number, string][] = [
      [
        new DomainError("unauthenticated", "invalid or missing principal proof"),
        401,
        "unauthenticated",
      ],
      [
        new DomainError("invalid_argument", "malformed capabilities header"),
        400,
        "invalid_argument",
      ],
      [new Error("secret detail"), 500, "internal"],
    ];
    for (const [err, status, code] of cases) {
      const f = fixture({ identity: failing(err) });
      const pub = f.commit("/pub");
      const res = f.get(pub.change, { headers: { "x-seed-principal": "p" } });
      assert.equal(res.status, status);
      const body = JSON.parse(res.body ?? "") as { code: string; message: string };
      assert.equal(body.code, code);
      assert.equal(body.message.includes("secret"), false);
      assert.equal(JSON.stringify(f.logged).includes("secret"), false);
      f.db.close();
    }

    let resolved = 0;
    const f = fixture({
      identity: {
        resolve: () => {
          resolved++;
          return { principal: undefined, capabilities: [] };
        },
      },
    });
    const pub = f.commit("/pub");
    const paired: Credential = { kind: "origin", origin: "https://p.example" };
    const res = f.get(pub.change, {
      credential: paired,
      origin: "https://p.example",
      headers: { "x-seed-capabilities": "" },
    });
    assert.equal(res.status, 403);
    assert.equal(res.outcome, "permission_denied");
    assert.equal(resolved, 0);
    assert.deepEqual(
      f.audit.map((e) => [e.event, e.method, e.origin, e.outcome]),
      [["scope.denied", "GET /ipfs", "https://p.example", "denied"]],
    );
    f.db.close();
  });

  it("HEAD sends the headers only; a store failure is a bare 500, logged by name", () => {
    const f = fixture();
    const pub = f.commit("/pub");
    const get = f.get(pub.change);
    const head = f.get(pub.change, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.body, undefined);
    assert.deepEqual(head.headers, get.headers);
    assert.equal(head.headers["content-length"], String(f.store.getBlob(pub.change)?.length));

    const broken = fixture({
      store: {
        blobReadTarget: () => {
          throw new TypeError(`db gone for ${pub.change}`);
        },
      } as unknown as IpfsHandlerDeps["store"],
    });
    const res = broken.get(pub.change);
    assert.equal(res.status, 500);
    assert.equal(res.body, '{"code":"internal","message":"internal error"}');
    assert.equal(JSON.stringify(broken.logged).includes(pub.change), false);
    assert.match(JSON.stringify(broken.logged), /TypeError/);
    broken.db.close();
    f.db.close();
  });
});
