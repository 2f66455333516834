/**
 * The daemon's state as the write scenarios (crash, disk) see it: the key every document is
 * signed with, the changes they write, the writes the daemon acknowledged and the check that
 * each of them is still there after a restart, and SQLite's own integrity check.
 *
 * @module
 */
import { join } from "node:path";
import { type Code, ConnectError } from "@connectrpc/connect";
import Database from "better-sqlite3";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import {
  type BlockNode,
  Documents,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor } from "../helpers/clients.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { codeName } from "./protocol.js";

/** The mnemonic of the key `main`, which signs every document the scenarios write. */
export const WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
/** The account (principal) of {@link WORDS}: the space every document is written in. */
export const ACCOUNT = principalToString(publicKeyFromSeed(keyFromMnemonic(WORDS)));

/** The full-token clients of the two services the scenarios write through. */
export function clientsOf(d: TestDaemon) {
  return {
    admin: clientFor(Daemon, "connect", d, d.token),
    docs: clientFor(Documents, "connect", d, d.token),
  };
}

/** A change that appends paragraph `id` (after `leftSibling`), and sets the title when given. */
export function paragraph(id: string, text: string, leftSibling = "", title?: string) {
  return [
    ...(title === undefined
      ? []
      : [{ op: { case: "setMetadata" as const, value: { key: "title", value: title } } }]),
    { op: { case: "moveBlock" as const, value: { blockId: id, parent: "", leftSibling } } },
    { op: { case: "replaceBlock" as const, value: { id, type: "Paragraph", text } } },
  ];
}

/** Block ids of a document's content, in document order. */
export function blockIds(nodes: readonly BlockNode[], out: string[] = []): string[] {
  for (const n of nodes) {
    out.push(n.block?.id ?? "");
    blockIds(n.children, out);
  }
  return out;
}

/** An acknowledged CreateDocumentChange: the version and blocks its response gave. */
export interface DocAck {
  readonly path: string;
  readonly version: string;
  readonly blocks: readonly string[];
}

/** Writes the daemon acknowledged. */
export interface Acked {
  /** Key name → public key. */
  readonly keys: Map<string, string>;
  readonly origins: Set<string>;
  readonly docs: DocAck[];
}

/** No writes yet. */
export function noAcks(): Acked {
  return { keys: new Map(), origins: new Set(), docs: [] };
}

/** Adds `from` to `into`. */
export function addAcks(into: Acked, from: Acked): void {
  for (const [k, v] of from.keys) into.keys.set(k, v);
  for (const o of from.origins) into.origins.add(o);
  into.docs.push(...from.docs);
}

/** How many writes `a` holds. */
export function ackCount(a: Acked): number {
  return a.keys.size + a.origins.size + a.docs.length;
}

/**
 * The acknowledged writes a running daemon does not have: a key not listed with its public key,
 * an origin not paired, a document not readable at its version with its blocks.
 */
export async function missingWrites(d: TestDaemon, acks: Acked): Promise<string[]> {
  const { admin, docs } = clientsOf(d);
  const misses: string[] = [];
  const listed = new Map((await admin.listKeys({})).keys.map((k) => [k.name, k.publicKey]));
  for (const [name, pk] of acks.keys) {
    if (listed.get(name) !== pk)
      misses.push(`key ${name}: acknowledged ${pk}, listed ${listed.get(name) ?? "nothing"}`);
  }
  const origins = new Set((await admin.listPairedOrigins({})).origins.map((o) => o.origin));
  for (const o of acks.origins) {
    if (!origins.has(o)) misses.push(`origin ${o}: acknowledged, not paired`);
  }
  for (const ack of acks.docs) {
    const at = `document ${ack.path}@${ack.version}`;
    try {
      const doc = await docs.getDocument({
        account: ACCOUNT,
        path: ack.path,
        version: ack.version,
      });
      const blocks = blockIds(doc.content);
      if (doc.version !== ack.version || JSON.stringify(blocks) !== JSON.stringify(ack.blocks))
        misses.push(`${at}: read ${doc.version} with blocks ${blocks.join(",")}`);
    } catch (err) {
      misses.push(`${at}: ${errorOf(err).code}`);
    }
  }
  return misses;
}

/** `PRAGMA integrity_check` of the data dir's database, opened read-only (the daemon stopped). */
export function integrityCheck(dataDir: string): string {
  const db = new Database(join(dataDir, "seed.db"), { readonly: true, fileMustExist: true });
  try {
    return String(db.pragma("integrity_check", { simple: true }));
  } finally {
    db.close();
  }
}

/** A failed call's Connect code name (`resource_exhausted`) and message. */
export function errorOf(err: unknown): { code: string; message: string } {
  const e = ConnectError.from(err);
  return { code: codeName(e.code as Code), message: e.rawMessage };
}
