import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import Database from "better-sqlite3";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import {
  type BlockNode,
  type Document,
  type DocumentChange,
  DocumentChangeSchema,
  Documents,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor } from "../helpers/clients.js";
import { removeDir, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";

/** Kill-and-restart cycles; the long soak belongs elsewhere. */
const ROUNDS = 5;
/** Writers in flight at once, each on a document of its own. */
const WORKERS = 4;
/** A writer starts a new document after this many acknowledged changes to one. */
const CHANGES_PER_DOC = 6;
/** SIGKILL lands this long after the load started: 100–400 ms. */
const killDelay = () => 100 + Math.floor(Math.random() * 300);

const WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const ACCOUNT = principalToString(publicKeyFromSeed(keyFromMnemonic(WORDS)));

const title = (t: string): DocumentChange =>
  create(DocumentChangeSchema, { op: { case: "setMetadata", value: { key: "title", value: t } } });
const paragraph = (id: string, leftSibling: string): DocumentChange[] => [
  create(DocumentChangeSchema, {
    op: { case: "moveBlock", value: { blockId: id, parent: "", leftSibling } },
  }),
  create(DocumentChangeSchema, {
    op: { case: "replaceBlock", value: { id, type: "Paragraph", text: `text of ${id}` } },
  }),
];

/** One acknowledged CreateDocumentChange, as its response told it. */
interface Ack {
  readonly path: string;
  readonly version: string;
  /** CID of the change: the revision of the block it added. */
  readonly change: string;
  /** Block ids of the acknowledged document, in document order. */
  readonly blocks: readonly string[];
}

/** A writer's document: its last acknowledged version and the block to add after. */
interface Tracked {
  readonly path: string;
  last: Ack;
  lastBlock: string;
  changes: number;
}

function blockIds(nodes: readonly BlockNode[], out: string[] = []): string[] {
  for (const n of nodes) {
    out.push(n.block?.id ?? "");
    blockIds(n.children, out);
  }
  return out;
}

function ackOf(doc: Document, blockId: string): Ack {
  const change = doc.content.find((n) => n.block?.id === blockId)?.block?.revision ?? "";
  assert.ok(doc.version.split(".").includes(change), "the new change is a head of the version");
  return { path: doc.path, version: doc.version, change, blocks: blockIds(doc.content) };
}

/** Every change id of the document's current version, all pages. */
async function changeIds(docs: Client<typeof Documents>, path: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let pageToken = "";
  do {
    const page = await docs.listDocumentChanges({
      account: ACCOUNT,
      path,
      pageSize: 1000,
      pageToken,
    });
    for (const c of page.changes) ids.add(c.id);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

/** Checks that nothing acknowledged was lost: versions, current content, history. */
async function verify(d: TestDaemon, acks: readonly Ack[]): Promise<void> {
  const docs = clientFor(Documents, "connect", d, d.token);
  for (const ack of acks) {
    const then = await docs.getDocument({ account: ACCOUNT, path: ack.path, version: ack.version });
    assert.equal(then.version, ack.version, `${ack.path}@${ack.version} is readable`);
    assert.deepEqual(blockIds(then.content), ack.blocks, `${ack.path}@${ack.version}: its blocks`);
  }
  for (const path of new Set(acks.map((a) => a.path))) {
    const current = await docs.getDocument({ account: ACCOUNT, path });
    assert.equal(current.metadata.title, path);
    const have = new Set(blockIds(current.content));
    const history = await changeIds(docs, path);
    for (const ack of acks.filter((a) => a.path === path)) {
      for (const b of ack.blocks) assert.ok(have.has(b), `${path}: acknowledged block ${b} kept`);
      assert.ok(history.has(ack.change), `${path}: acknowledged change ${ack.change} listed`);
    }
  }
}

test("SIGKILL during CreateDocumentChange load loses no acknowledged change and no integrity", async (t) => {
  const dir = tempDir();
  const dataDir = join(dir, "data");
  const acks: Ack[] = [];
  // Each writer's document carries over from round to round, based on its last acknowledged
  // version, which after a kill may be older than what the daemon committed.
  const tracked: (Tracked | undefined)[] = Array.from({ length: WORKERS }, () => undefined);
  let created = 0;
  let failedAfterKill = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const d = await startDaemon({ dataDir });
      if (round === 0) {
        await clientFor(Daemon, "connect", d, d.token).registerKey({
          name: "main",
          mnemonic: WORDS,
        });
      } else {
        await verify(d, acks);
      }
      const docs = clientFor(Documents, "connect", d, d.token);
      const before = acks.length;
      let killed = false;
      const unexpected: unknown[] = [];
      const worker = async (w: number) => {
        for (let seq = 0; !killed; seq++) {
          const id = `r${round}w${w}c${seq}`;
          const doc = tracked[w];
          try {
            if (doc === undefined || doc.changes >= CHANGES_PER_DOC) {
              const path = `/crash/w${w}/${id}`;
              const res = await docs.createDocumentChange({
                account: ACCOUNT,
                path,
                signingKeyName: "main",
                changes: [title(path), ...paragraph(id, "")],
              });
              const ack = ackOf(res, id);
              acks.push(ack);
              created++;
              tracked[w] = { path, last: ack, lastBlock: id, changes: 1 };
            } else {
              const res = await docs.createDocumentChange({
                account: ACCOUNT,
                path: doc.path,
                signingKeyName: "main",
                baseVersion: doc.last.version,
                changes: paragraph(id, doc.lastBlock),
              });
              const ack = ackOf(res, id);
              acks.push(ack);
              doc.last = ack;
              doc.lastBlock = id;
              doc.changes++;
            }
          } catch (err) {
            if (killed) failedAfterKill++;
            else unexpected.push(err);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        killed = true;
        d.proc.kill("SIGKILL");
      }, killDelay());
      await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      clearTimeout(timer);
      const exit = await d.stop("SIGKILL");
      assert.deepEqual(unexpected, [], "no call failed before the kill");
      assert.equal(exit.signal, "SIGKILL");
      const merged = acks.slice(before).filter((a) => a.version.includes(".")).length;
      t.diagnostic(
        `round ${round}: ${acks.length - before} changes acknowledged before the kill, ${merged} merged a change the previous kill left unacknowledged`,
      );
    }
    assert.ok(acks.length > 0, "changes were acknowledged");
    assert.ok(created > 0, "documents were created under load");
    assert.ok(failedAfterKill > 0, "some calls were cut off by the kills");

    const d = await startDaemon({ dataDir });
    try {
      await verify(d, acks);
    } finally {
      assert.equal((await d.stop()).code, 0);
    }
    const db = new Database(join(dataDir, "seed.db"), { readonly: true, fileMustExist: true });
    try {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
      const n = (db.prepare("SELECT count(*) AS n FROM documents").get() as { n: number }).n;
      assert.ok(n >= new Set(acks.map((a) => a.path)).size);
    } finally {
      db.close();
    }
  } finally {
    removeDir(dir);
  }
});
