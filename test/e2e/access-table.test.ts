/**
 * The private-read access table against the real binary, with two independent clients
 * (connect-node over HTTP/1.1 and grpc-js over h2c): every caller case × GetDocument,
 * ListDocuments, ListDocumentChanges, WatchDocuments and `GET /ipfs/{cid}`. A denied case must
 * look exactly like a missing document.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import nacl from "tweetnacl";
import { cidForBytes, createCapability } from "../../src/blob/index.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  DocumentChangeSchema,
  DocumentSchema,
  Documents,
  GetDocumentRequestSchema,
  ListDocumentChangesRequestSchema,
  ListDocumentChangesResponseSchema,
  ListDocumentsRequestSchema,
  ListDocumentsResponseSchema,
  ResourceVisibility,
  WatchDocumentsRequestSchema,
  WatchDocumentsResponseSchema,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { encodeCapabilitiesHeader } from "../../src/security/forwarded-capabilities.js";
import { clientFor } from "../helpers/clients.js";
import { randomToken, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { grpcJsStream, grpcJsUnary } from "../helpers/grpc-js.js";
import { rawHttp1, rawHttp2 } from "../helpers/http.js";
import { loginProof } from "../helpers/login-proof.js";

const SITE = "https://site.example";
const PAIRED = "https://paired.example";
const WEB = randomToken();
const OWNER_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const DOC = "/a/doc";
const SIBLING = "/ab";
const PUBLIC = "/public";
const SVC = "/com.seed.documents.v3alpha.Documents";

interface Person {
  readonly seed: Uint8Array;
  readonly principal: string;
  sign(data: Uint8Array): Uint8Array;
}
function person(seed: Uint8Array = nacl.randomBytes(32)): Person {
  const secret = nacl.sign.keyPair.fromSeed(seed).secretKey;
  return {
    seed,
    principal: principalToString(publicKeyFromSeed(seed)),
    sign: (data) => nacl.sign.detached(data, secret),
  };
}
const OWNER = person(keyFromMnemonic(OWNER_WORDS));

/** A capability signed by `signer` (tweetnacl), for forwarding. */
function cap(
  signer: Person,
  delegate: Person,
  role: "READER" | "WRITER" | "AGENT",
  extra: { path?: string; exp?: number; noRecursive?: boolean } = {},
): Uint8Array {
  return createCapability(
    { signer: signer.principal, ts: Date.now(), delegate: delegate.principal, role, ...extra },
    (d) => signer.sign(d),
  ).bytes;
}

/** One row of the table: how the caller authenticates, and the document it asks for. */
interface Row {
  readonly name: string;
  readonly token: () => string;
  readonly headers: () => Record<string, string>;
  readonly path: string;
  /** The private documents (of DOC and SIBLING) this caller may read. */
  readonly readable: readonly string[];
}
const granted = (row: Row) => row.readable.includes(row.path);

type Outcome = { get: string; list: boolean; changes: string; watch: boolean };

describe("access table (connect-node and grpc-js)", () => {
  let d: TestDaemon;
  let pairedToken = "";
  const rows: Row[] = [];
  const missing: { connect?: ConnectError; grpc?: { code: number; message?: string } } = {};

  const as =
    (p: Person, forwarded: Uint8Array[] = []) =>
    () => ({
      "x-seed-principal": p.principal,
      "x-seed-principal-proof": loginProof(p.seed, SITE),
      ...(forwarded.length > 0 && { "x-seed-capabilities": encodeCapabilitiesHeader(forwarded) }),
    });

  before(async () => {
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", SITE],
    });
    const daemon = clientFor(Daemon, "connect", d, d.token);
    await daemon.registerKey({ name: "owner", mnemonic: OWNER_WORDS });
    pairedToken = (await daemon.pairOrigin({ origin: PAIRED })).token;
    const docs = clientFor(Documents, "connect", d, d.token);
    for (const [path, visibility] of [
      [DOC, ResourceVisibility.PRIVATE],
      [SIBLING, ResourceVisibility.PRIVATE],
      [PUBLIC, ResourceVisibility.PUBLIC],
    ] as const) {
      await docs.createDocumentChange({
        account: OWNER.principal,
        path,
        signingKeyName: "owner",
        visibility,
        changes: [
          create(DocumentChangeSchema, {
            op: { case: "setMetadata", value: { key: "title", value: path } },
          }),
        ],
      });
    }
    // Stored capabilities, signed by the owner through the daemon.
    const acl = clientFor(AccessControl, "connect", d, d.token);
    const grant = async (delegate: Person, role: Role, path = "", noRecursive = false) =>
      acl.createCapability({
        signingKeyName: "owner",
        delegate: delegate.principal,
        role,
        path,
        noRecursive,
      });

    const web = () => WEB;
    const BOTH = [DOC, SIBLING];
    const add = (
      name: string,
      headers: () => Record<string, string>,
      path: string,
      readable: readonly string[],
    ) => rows.push({ name, token: web, headers, path, readable });

    rows.push({
      name: "local user (full token)",
      token: () => d.token,
      headers: () => ({}),
      path: DOC,
      readable: BOTH,
    });
    add("owner, forwarded", as(OWNER), DOC, BOTH);
    add("no principal (anonymous web token)", () => ({}), DOC, []);
    rows.push({
      name: "paired-origin token",
      token: () => pairedToken,
      headers: () => ({ origin: PAIRED }),
      path: DOC,
      readable: [],
    });

    const reader = person();
    await grant(reader, Role.READER, "/a");
    add("READER on /a (stored)", as(reader), DOC, [DOC]);
    add("READER on /a, sibling /ab", as(reader), SIBLING, [DOC]);

    const writer = person();
    await grant(writer, Role.WRITER, "/a");
    add("WRITER on parent /a (stored)", as(writer), DOC, [DOC]);

    const forwardedReader = person();
    add(
      "READER on /a (forwarded)",
      as(forwardedReader, [cap(OWNER, forwardedReader, "READER", { path: "/a" })]),
      DOC,
      [DOC],
    );

    const expired = person();
    add(
      "expired READER",
      as(expired, [cap(OWNER, expired, "READER", { path: "/a", exp: Date.now() - 1000 })]),
      DOC,
      [],
    );

    const exact = person();
    await grant(exact, Role.READER, "/a", true);
    add("noRecursive READER on /a, document /a/doc", as(exact), DOC, []);

    const forged = person();
    const forgedBytes = cap(OWNER, forged, "READER", { path: "/a" });
    forgedBytes[forgedBytes.length - 1] = (forgedBytes[forgedBytes.length - 1] ?? 0) ^ 1;
    add("forged signature", as(forged, [forgedBytes]), DOC, []);

    const stranger = person();
    const byNonOwner = person();
    add(
      "capability signed by a non-owner",
      as(byNonOwner, [cap(stranger, byNonOwner, "READER", { path: "/a" })]),
      DOC,
      [],
    );

    // AGENT chains: owner → A (stored), A → caller (forwarded), A → B → caller (too long).
    const agent1 = person();
    await grant(agent1, Role.AGENT);
    add("AGENT chain, 1 link", as(agent1), DOC, BOTH);
    const chain2 = person();
    add("AGENT chain, 2 links", as(chain2, [cap(agent1, chain2, "AGENT")]), DOC, BOTH);
    const agentB = person();
    const chain3 = person();
    add(
      "AGENT chain, 3 links",
      as(chain3, [cap(agent1, agentB, "AGENT"), cap(agentB, chain3, "AGENT")]),
      DOC,
      [],
    );

    missing.connect = await clientFor(Documents, "connect", d, WEB)
      .getDocument({ account: OWNER.principal, path: "/no/such/doc" })
      .then(
        () => undefined,
        (e) => ConnectError.from(e),
      );
    missing.grpc = await grpcJsUnary(
      d.grpcAddr,
      `${SVC}/GetDocument`,
      GetDocumentRequestSchema,
      DocumentSchema,
      { account: OWNER.principal, path: "/no/such/doc" },
      { authorization: `Bearer ${WEB}` },
    );
  });
  after(async () => {
    await d.stop();
  });

  async function viaConnect(row: Row): Promise<Omit<Outcome, "watch">> {
    const c = clientFor(Documents, "connect", d, row.token(), row.headers());
    const get = await c.getDocument({ account: OWNER.principal, path: row.path }).then(
      (doc) => (doc.path === row.path ? "ok" : "wrong document"),
      (e) => {
        const err = ConnectError.from(e);
        return err.code === missing.connect?.code && err.rawMessage === missing.connect?.rawMessage
          ? "as missing"
          : `other: ${Code[err.code]} ${err.rawMessage}`;
      },
    );
    const list = (await c.listDocuments({ account: OWNER.principal })).documents.some(
      (x) => x.path === row.path,
    );
    const changes = await c.listDocumentChanges({ account: OWNER.principal, path: row.path }).then(
      (r) => (r.changes.length === 2 ? "ok" : "wrong changes"),
      (e) => (ConnectError.from(e).code === Code.NotFound ? "as missing" : "other"),
    );
    return { get, list, changes };
  }

  async function viaGrpcJs(row: Row): Promise<Omit<Outcome, "watch">> {
    const headers = { authorization: `Bearer ${row.token()}`, ...row.headers() };
    const g = await grpcJsUnary(
      d.grpcAddr,
      `${SVC}/GetDocument`,
      GetDocumentRequestSchema,
      DocumentSchema,
      { account: OWNER.principal, path: row.path },
      headers,
    );
    const get =
      g.code === 0
        ? g.response?.path === row.path
          ? "ok"
          : "wrong document"
        : g.code === missing.grpc?.code && g.message === missing.grpc?.message
          ? "as missing"
          : `other: ${g.code} ${g.message}`;
    const l = await grpcJsUnary(
      d.grpcAddr,
      `${SVC}/ListDocuments`,
      ListDocumentsRequestSchema,
      ListDocumentsResponseSchema,
      { account: OWNER.principal },
      headers,
    );
    assert.equal(l.code, 0);
    const list = l.response?.documents.some((x) => x.path === row.path) ?? false;
    const ch = await grpcJsUnary(
      d.grpcAddr,
      `${SVC}/ListDocumentChanges`,
      ListDocumentChangesRequestSchema,
      ListDocumentChangesResponseSchema,
      { account: OWNER.principal, path: row.path },
      headers,
    );
    const changes =
      ch.code === 0
        ? ch.response?.changes.length === 2
          ? "ok"
          : "wrong changes"
        : ch.code === 5
          ? "as missing"
          : "other";
    return { get, list, changes };
  }

  test("GetDocument, ListDocuments and ListDocumentChanges, each case on both clients", async () => {
    for (const row of rows) {
      const want = granted(row)
        ? { get: "ok", list: true, changes: "ok" }
        : { get: "as missing", list: false, changes: "as missing" };
      assert.deepEqual(await viaConnect(row), want, `connect-node: ${row.name}`);
      assert.deepEqual(await viaGrpcJs(row), want, `grpc-js: ${row.name}`);
      // The public document is there for every case.
      const pub = { ...row, path: PUBLIC, readable: [PUBLIC] };
      assert.equal((await viaConnect(pub)).get, "ok", `public, ${row.name}`);
    }
  });

  test("GET /ipfs/{cid} of a private document's change, on HTTP/1.1 and HTTP/2", async () => {
    const docs = clientFor(Documents, "connect", d, d.token);
    const newest = async (path: string) =>
      (await docs.listDocumentChanges({ account: OWNER.principal, path })).changes[0]?.id ?? "";
    const cids = new Map([
      [DOC, await newest(DOC)],
      [SIBLING, await newest(SIBLING)],
    ]);
    // A well-formed CID of bytes nobody stored (editing a real CID's last character can make
    // its padding bits invalid, which is a 400, not a 404).
    const noSuch = cidForBytes(nacl.randomBytes(64)).string;
    for (const [send, port] of [
      [rawHttp1, d.httpPort],
      [rawHttp2, d.grpcPort],
    ] as const) {
      const get = (row: Row, cid: string) =>
        send({
          port,
          path: `/ipfs/${cid}`,
          headers: { authorization: `Bearer ${row.token()}`, ...row.headers() },
        });
      for (const row of rows) {
        const absent = await get(row, noSuch);
        assert.equal(absent.status, 404);
        const res = await get(row, cids.get(row.path) ?? "");
        if (granted(row)) assert.equal(res.status, 200, row.name);
        else {
          assert.deepEqual(
            [res.status, res.headers["content-type"], res.body],
            [absent.status, absent.headers["content-type"], absent.body],
            `${row.name}: as missing`,
          );
        }
      }
    }
  });

  test("WatchDocuments announces a private version only to the cases that may read it", async () => {
    type Watch = {
      row: Row;
      client: string;
      seen: string[];
      cancel(): void;
      ended: Promise<unknown>;
    };
    const watches: Watch[] = [];
    for (const row of rows) {
      // connect-node
      const abort = new AbortController();
      const seenC: string[] = [];
      const stream = clientFor(Documents, "connect", d, row.token(), row.headers()).watchDocuments(
        { account: OWNER.principal },
        { signal: abort.signal },
      );
      const endedC = (async () => {
        try {
          for await (const ev of stream) seenC.push(`${ev.path}@${ev.version}`);
        } catch {
          // cancelled
        }
      })();
      watches.push({
        row,
        client: "connect-node",
        seen: seenC,
        cancel: () => abort.abort(),
        ended: endedC,
      });
      // grpc-js
      const seenG: string[] = [];
      const g = grpcJsStream(
        d.grpcAddr,
        `${SVC}/WatchDocuments`,
        WatchDocumentsRequestSchema,
        WatchDocumentsResponseSchema,
        { account: OWNER.principal },
        { authorization: `Bearer ${row.token()}`, ...row.headers() },
        (ev: MessageShape<typeof WatchDocumentsResponseSchema>) =>
          seenG.push(`${ev.path}@${ev.version}`),
      );
      watches.push({ row, client: "grpc-js", seen: seenG, cancel: g.cancel, ended: g.ended });
    }
    const docs = clientFor(Documents, "connect", d, d.token);
    let publicVersion = (await docs.getDocument({ account: OWNER.principal, path: PUBLIC }))
      .version;
    const touch = async (path: string) => {
      const base = (await docs.getDocument({ account: OWNER.principal, path })).version;
      const res = await docs.createDocumentChange({
        account: OWNER.principal,
        path,
        signingKeyName: "owner",
        baseVersion: base,
        changes: [
          create(DocumentChangeSchema, {
            op: { case: "setMetadata", value: { key: "n", value: String(Math.random()) } },
          }),
        ],
      });
      return res.version;
    };
    const sawPublic = (w: Watch) => w.seen.includes(`${PUBLIC}@${publicVersion}`);
    // Streams subscribe asynchronously: touch the public document until every watch saw it.
    for (let i = 0; i < 100 && !watches.every(sawPublic); i++) {
      publicVersion = await touch(PUBLIC);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(watches.every(sawPublic), "every watch is subscribed");
    const privateVersions = new Map<string, string>();
    for (const path of [DOC, SIBLING]) privateVersions.set(path, await touch(path));
    publicVersion = await touch(PUBLIC);
    for (let i = 0; i < 100 && !watches.every(sawPublic); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const w of watches) {
      assert.ok(sawPublic(w), `${w.client} ${w.row.name}: sees the public version`);
      for (const path of [DOC, SIBLING]) {
        assert.equal(
          w.seen.includes(`${path}@${privateVersions.get(path)}`),
          w.row.readable.includes(path),
          `${w.client}: ${w.row.name}, ${path}`,
        );
      }
    }
    for (const w of watches) w.cancel();
    await Promise.all(watches.map((w) => w.ended));
  });
});
