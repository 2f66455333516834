/**
 * Seed blobs, documents and capabilities in `seed.db`: storage and indexes only, no RPC code.
 *
 * - A blob is stored once, under its canonical CID (blake2b-256 of its bytes) in `blobs`;
 *   `blob_cids` maps both its blake2b-256 and its sha2-256 CID to it, so `/ipfs/{cid}` serves it
 *   under either. Every link kept in an index (genesis, deps, heads) is resolved to the
 *   canonical CID when indexed, so documents, versions and the cache only ever see one name per
 *   blob.
 * - Indexing is strict and in causal order: a Change needs its genesis and deps (in the same
 *   batch or stored) and must pass `checkChangeDeps`; a Ref needs its genesis and heads, a
 *   signer that may write the document, and heads that materialise into a valid document. A
 *   blob that arrives before what it needs is refused rather than parked: parking would need a
 *   pending table, a re-index trigger and rules for blobs that never complete, and a refused
 *   blob costs the sender only a retry with the full batch (StoreBlobs is all-or-nothing).
 * - Every write is one SQLite transaction (WAL, synchronous=FULL): returned means committed.
 *   The document cache and the version listeners only see a transaction after it committed.
 *
 * @module
 */

import { parseChange } from "../blob/change.js";
import { isWireMap } from "../blob/fields.js";
import {
  type AttributeValue,
  type Block,
  type Capability,
  type Change,
  checkChangeDeps,
  cidForBytes,
  createChange,
  createHomeGenesisChange,
  createRef,
  DAG_CBOR_CODE,
  decodeBlob,
  decodeCanonical,
  type EncodedBlob,
  type Op,
  parseCid,
  type Ref,
  refSpace,
  type SignFn,
  type WritableOp,
} from "../blob/index.js";
import {
  DocState,
  type DocumentState,
  type Edit,
  type ChangeInput as ModelChange,
  type Op as ModelOp,
  parseVersion,
  planOps,
  version as versionOf,
} from "../docmodel/index.js";
import { DomainError } from "../errors.js";
import { canWrite, type VerifiedCapability } from "../security/read-access.js";
import { LruCache } from "../util/lru.js";
import type { Db } from "./db.js";
import { STORE_ERROR_MESSAGES as M, StoreError, type StoreErrorMessage } from "./errors.js";
import {
  decodePageToken,
  encodePageToken,
  type Page,
  type PageOptions,
  pageSizeOf,
} from "./page-token.js";
import { pathPrefixes, validatePath } from "./paths.js";

export type { Page, PageOptions } from "./page-token.js";
export { validatePath } from "./paths.js";

/** Document visibility, fixed when the document (its genesis at a path) is created. */
export type Visibility = "public" | "private";

/** Default number of materialised document states kept. */
export const DEFAULT_STATE_CACHE_SIZE = 64;
/** Most capability lists (per space and path, per delegate) kept for the read rule. */
const CAPABILITY_LIST_CACHE_SIZE = 1024;
/** Most heads a version string may name. */
export const MAX_VERSION_HEADS = 64;
// Tries at a fresh genesis ts before giving up (two creations by one signer in one ms).
const GENESIS_TS_TRIES = 1000;

/** Options of {@link BlobStore}. */
export interface BlobStoreOptions {
  /** Clock, Unix milliseconds (tests pass a fixed one). Defaults to `Date.now`. */
  readonly now?: () => number;
  /** Most materialised document states cached; default {@link DEFAULT_STATE_CACHE_SIZE}. */
  readonly stateCacheSize?: number;
}

/** A document's identity and current Ref, as lists return it. */
export interface DocumentEntry {
  /** Account (`z6Mk…`) whose space holds the document. */
  readonly account: string;
  /** `""` (home) or `/seg/seg`. */
  readonly path: string;
  readonly visibility: Visibility;
  /** Canonical CID of the genesis change. */
  readonly genesis: string;
  /** Current version (head CIDs sorted, joined with `.`); `""` when deleted. */
  readonly version: string;
  /** CID of the current Ref. */
  readonly ref: string;
  /** `ts` of the current Ref, Unix ms. */
  readonly updateTime: number;
  readonly deleted: boolean;
}

/** What {@link BlobStore.getDocument} returns. */
export type StoredDocument =
  | (DocumentEntry & { readonly deleted: false; readonly state: DocumentState })
  | (DocumentEntry & { readonly deleted: true; readonly state?: undefined });

/** One change of a document, as {@link BlobStore.listDocumentChanges} lists it. */
export interface DocumentChangeEntry {
  readonly cid: string;
  readonly signer: string;
  readonly ts: number;
  /** Canonical dep CIDs, sorted; `[]` for the genesis change. */
  readonly deps: readonly string[];
  readonly isGenesis: boolean;
}

/** A stored capability; structurally a `VerifiedCapability` of the read rule. */
export interface StoredCapability extends VerifiedCapability {
  readonly cid: string;
  readonly signer: string;
  readonly delegate: string;
  /** `""` for the whole space. */
  readonly path: string;
  readonly noRecursive: boolean;
  readonly ts: number;
  readonly label?: string | undefined;
}

/** A document a blob belongs to, for the `/ipfs/{cid}` read rule. */
export interface BlobDocument {
  readonly account: string;
  readonly path: string;
  readonly visibility: Visibility;
  /** Whether the document at that path is currently deleted. */
  readonly deleted: boolean;
}

/**
 * Who may see a blob. `document`: a Change (every document whose Refs name its genesis) or a Ref
 * (its own document); readable when any of `documents` is readable, so a blob reachable only
 * from private documents has only private entries, and one reachable from none (`[]`) must not
 * be served. `capability`: capabilities are public metadata (Seed syncs them openly, and they
 * hold no document content), the server serves them under the token rule only.
 */
export type BlobReadTarget =
  | { readonly kind: "document"; readonly documents: readonly BlobDocument[] }
  | { readonly kind: "capability"; readonly account: string; readonly path: string };

/** Announced after a committed transaction changed a document's current Ref. */
export interface VersionEvent {
  readonly account: string;
  readonly path: string;
  /** New version; `""` for a tombstone. */
  readonly version: string;
  readonly visibility: Visibility;
  readonly deleted: boolean;
  readonly ref: string;
  readonly genesis: string;
}

/** A {@link BlobStore.onVersion} listener. Exceptions it throws are ignored. */
export type VersionListener = (event: VersionEvent) => void;

/** What {@link BlobStore.commitChange} needs. */
export interface CommitChangeInput {
  readonly account: string;
  readonly path: string;
  /** Principal (`z6Mk…`) of the key `sign` signs with. */
  readonly signer: string;
  readonly sign: SignFn;
  /** The change's body ops, as they are. Give either `ops` or `edits`. */
  readonly ops?: readonly WritableOp[];
  /**
   * Logical edits (the RPC's `DocumentChange`s), planned into ops inside the transaction against
   * the document as of the base version, so that their references name changes the new change
   * depends on. Edits that change nothing produce no op; a change left with none is refused.
   */
  readonly edits?: readonly Edit[];
  /**
   * Version the change was made on. Required (non-empty) for an existing document; a stale one
   * is merged with the heads it did not know. Must be absent or `""` for a new document.
   */
  readonly baseVersion?: string;
  /** Only for a new document; defaults to public. Differing from an existing one is refused. */
  readonly visibility?: Visibility;
  /** The capability letting a non-owner signer write; stored in the same transaction. */
  readonly capability?: EncodedBlob<Capability>;
}

/** What {@link BlobStore.commitChange} returns. */
export interface CommitResult {
  readonly version: string;
  readonly heads: readonly string[];
  readonly change: string;
  readonly ref: string;
  readonly genesis: string;
  readonly visibility: Visibility;
}

/** What {@link BlobStore.deleteDocument} needs. */
export interface DeleteDocumentInput {
  readonly account: string;
  readonly path: string;
  readonly signer: string;
  readonly sign: SignFn;
  readonly capability?: EncodedBlob<Capability>;
}

interface ChangeRow {
  cid: string;
  genesis: string;
  deps: string;
  ts: number;
  depth: number;
  signer: string;
}
interface ChangeDataRow extends ChangeRow {
  data: Uint8Array;
}
interface RefRow {
  cid: string;
  account: string;
  path: string;
  genesis: string;
  heads: string;
  generation: number;
  ts: number;
  visibility: Visibility;
}
interface DocumentRow {
  account: string;
  path: string;
  ref: string;
  genesis: string;
  heads: string;
  generation: number;
  ts: number;
  visibility: Visibility;
  deleted: 0 | 1;
}
interface CapabilityRow {
  cid: string;
  account: string;
  path: string;
  delegate: string;
  role: string | null;
  label: string | null;
  audience: string | null;
  exp: number | null;
  no_recursive: 0 | 1;
  ts: number;
}

const EMPTY = new Uint8Array(0);

function fail(code: DomainError["code"], message: StoreErrorMessage): never {
  throw new StoreError(code, message);
}

function splitList(s: string): string[] {
  return s === "" ? [] : s.split(".");
}

function toEntry(row: DocumentRow): DocumentEntry {
  return {
    account: row.account,
    path: row.path,
    visibility: row.visibility,
    genesis: row.genesis,
    version: row.heads,
    ref: row.ref,
    updateTime: row.ts,
    deleted: row.deleted === 1,
  };
}

function toCapability(row: CapabilityRow): StoredCapability {
  return {
    cid: row.cid,
    signer: row.account,
    delegate: row.delegate,
    path: row.path,
    noRecursive: row.no_recursive === 1,
    ts: row.ts,
    ...(row.role !== null && { role: row.role }),
    ...(row.label !== null && { label: row.label }),
    ...(row.audience !== null && { audience: row.audience }),
    ...(row.exp !== null && { exp: row.exp }),
  };
}

// The document model's ops as the blob codec writes them: list refs as uint64s.
function writableOps(ops: readonly ModelOp[]): WritableOp[] {
  return ops.map((op): WritableOp => {
    switch (op.type) {
      case "MoveBlocks":
        return {
          type: "MoveBlocks",
          blocks: op.blocks,
          ...(op.parent !== undefined && { parent: op.parent }),
          ...(op.ref !== undefined && { ref: op.ref.map((n) => BigInt(n)) }),
        };
      case "SetAttributes":
        return {
          type: "SetAttributes",
          ...(op.block !== undefined && { block: op.block }),
          attrs: op.attrs.map((a) => ({ key: a.key, value: a.value as AttributeValue })),
        };
      case "ReplaceBlock":
        return { type: "ReplaceBlock", block: op.block as Block };
      case "DeleteBlocks":
        return op;
      default:
        // planOps never writes Seed's deprecated SetKey.
        throw new Error("unexpected op from the planner");
    }
  });
}

function modelOp(op: Op): ModelOp {
  // The blob codec's ops are the document model's field for field, except that SetAttributes
  // may omit `attrs` on the wire.
  if (op.type === "SetAttributes") {
    return {
      type: "SetAttributes",
      ...(op.block !== undefined && { block: op.block }),
      attrs: op.attrs ?? [],
    };
  }
  return op as ModelOp;
}

function modelChange(cid: string, change: Change, genesis: string, deps: string[]): ModelChange {
  return {
    id: cid,
    deps,
    ts: change.ts,
    actor: change.signer,
    ...(deps.length > 0 && { genesis }),
    ops: (change.body?.ops ?? []).map(modelOp),
  };
}

/**
 * The blob, document and capability store over one `seed.db` connection. Every statement is
 * prepared once, here. Not safe for concurrent use from several threads (better-sqlite3 is
 * synchronous; one daemon process owns one store).
 */
export class BlobStore {
  readonly #now: () => number;
  readonly #states: LruCache<string, DocState>;
  readonly #capLists = new LruCache<string, readonly StoredCapability[]>(
    CAPABILITY_LIST_CACHE_SIZE,
  );
  readonly #listeners = new Set<VersionListener>();
  readonly #sortedChanges = new WeakMap<DocState, DocumentChangeEntry[]>();
  readonly #txn: { immediate: (fn: () => unknown) => unknown };
  #inTx = false;
  #pendingStates = new Map<string, DocState>();
  #pendingEvents: VersionEvent[] = [];

  readonly #q;

  /**
   * @param db - an open, migrated connection ({@link openDatabase}); the caller closes it.
   * @param options - clock and cache size.
   */
  constructor(db: Db, options: BlobStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#states = new LruCache(options.stateCacheSize ?? DEFAULT_STATE_CACHE_SIZE);
    this.#txn = db.transaction((fn: () => unknown) => fn());
    const docCols = "account, path, ref, genesis, heads, generation, ts, visibility, deleted";
    const capCols = "cid, account, path, delegate, role, label, audience, exp, no_recursive, ts";
    this.#q = {
      insertBlob: db.prepare(
        "INSERT OR IGNORE INTO blobs (cid, codec, data, create_time) VALUES (?, ?, ?, ?)",
      ),
      insertAlias: db.prepare("INSERT OR IGNORE INTO blob_cids (cid, blob) VALUES (?, ?)"),
      resolve: db.prepare("SELECT blob FROM blob_cids WHERE cid = ?").pluck(),
      blobData: db
        .prepare("SELECT b.data FROM blob_cids a JOIN blobs b ON b.cid = a.blob WHERE a.cid = ?")
        .pluck(),
      change: db.prepare<[string], ChangeRow>(
        "SELECT cid, genesis, deps, ts, depth, signer FROM changes WHERE cid = ?",
      ),
      insertChange: db.prepare(
        "INSERT INTO changes (cid, genesis, deps, ts, depth, signer) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      changesOf: db.prepare<[string], ChangeDataRow>(
        "SELECT c.cid, c.genesis, c.deps, c.ts, c.depth, c.signer, b.data FROM changes c " +
          "JOIN blobs b ON b.cid = c.cid WHERE c.genesis = ? ORDER BY c.ts, c.cid",
      ),
      maxTs: db.prepare("SELECT MAX(ts) FROM changes WHERE genesis = ?").pluck(),
      ref: db.prepare<[string], RefRow>(
        "SELECT cid, account, path, genesis, heads, generation, ts, visibility FROM refs " +
          "WHERE cid = ?",
      ),
      insertRef: db.prepare(
        "INSERT INTO refs (cid, account, path, genesis, heads, generation, ts, signer, " +
          "visibility) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      refVisibility: db
        .prepare(
          "SELECT visibility FROM refs WHERE account = ? AND path = ? AND genesis = ? LIMIT 1",
        )
        .pluck(),
      topRef: db.prepare<[string, string], RefRow>(
        "SELECT cid, account, path, genesis, heads, generation, ts, visibility FROM refs " +
          "WHERE account = ? AND path = ? ORDER BY generation DESC, ts DESC, cid DESC LIMIT 1",
      ),
      documentsOfGenesis: db.prepare<[string], Omit<BlobDocument, "deleted"> & { deleted: 0 | 1 }>(
        // A document re-created at the path has another genesis: this one's blobs are gone.
        "SELECT DISTINCT r.account, r.path, r.visibility, " +
          "(d.deleted = 1 OR d.genesis <> r.genesis) AS deleted FROM refs r " +
          "JOIN documents d ON d.account = r.account AND d.path = r.path " +
          "WHERE r.genesis = ? ORDER BY r.account, r.path",
      ),
      document: db.prepare<[string, string], DocumentRow>(
        `SELECT ${docCols} FROM documents WHERE account = ? AND path = ?`,
      ),
      upsertDocument: db.prepare(
        `INSERT INTO documents (${docCols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ` +
          "ON CONFLICT (account, path) DO UPDATE SET ref = excluded.ref, " +
          "genesis = excluded.genesis, heads = excluded.heads, " +
          "generation = excluded.generation, ts = excluded.ts, " +
          "visibility = excluded.visibility, deleted = excluded.deleted",
      ),
      listDocsFirst: db.prepare<[string, number], DocumentRow>(
        `SELECT ${docCols} FROM documents WHERE account = ? AND deleted = 0 ` +
          "ORDER BY path LIMIT ?",
      ),
      listDocsAfter: db.prepare<[string, string, number], DocumentRow>(
        `SELECT ${docCols} FROM documents WHERE account = ? AND path > ? AND deleted = 0 ` +
          "ORDER BY path LIMIT ?",
      ),
      documentsOf: db.prepare<[string], DocumentRow>(
        `SELECT ${docCols} FROM documents ` +
          "WHERE account IN (SELECT value FROM json_each(?)) AND deleted = 0 " +
          "ORDER BY account, path",
      ),
      capability: db.prepare<[string], CapabilityRow>(
        `SELECT ${capCols} FROM capabilities WHERE cid = ?`,
      ),
      insertCapability: db.prepare(
        `INSERT INTO capabilities (${capCols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      capsAt: db.prepare<[string, string], CapabilityRow>(
        `SELECT ${capCols} FROM capabilities WHERE account = ? AND path = ? ORDER BY ts, cid`,
      ),
      capsIn: db.prepare<[string, string], CapabilityRow>(
        `SELECT ${capCols} FROM capabilities ` +
          "WHERE account = ? AND path IN (SELECT value FROM json_each(?)) " +
          "ORDER BY path, ts, cid",
      ),
      capsOf: db.prepare<[string], CapabilityRow>(
        `SELECT ${capCols} FROM capabilities WHERE account = ? ORDER BY ts, cid`,
      ),
      capsForDelegate: db.prepare<[string], CapabilityRow>(
        `SELECT ${capCols} FROM capabilities WHERE delegate = ? ORDER BY ts, cid`,
      ),
      capsOfSpaceForDelegate: db.prepare<[string, string], CapabilityRow>(
        `SELECT ${capCols} FROM capabilities WHERE delegate = ? AND account = ?`,
      ),
    };
  }

  /**
   * Subscribes to document version changes. Called synchronously after each committed
   * transaction, once per document whose current Ref changed.
   *
   * @returns a function that unsubscribes.
   */
  onVersion(listener: VersionListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  // --- Blobs -------------------------------------------------------------------------------

  /**
   * Verifies, stores and indexes blobs, all or nothing, in one transaction.
   *
   * @param items - encoded blobs, each with the CID the sender claims (verified) or none.
   * @returns per item, in order, the claimed CID (normalised) or the blake2b-256 CID.
   * @throws {BlobError} `invalid_argument` for a blob that does not decode or verify;
   *   {@link StoreError} `invalid_argument` for one that cannot be indexed (missing deps, a
   *   Ref without its changes or its writer's capability). Nothing is stored then.
   */
  putBlobs(items: readonly { bytes: Uint8Array; cid?: string }[]): { cid: string }[] {
    const decoded = items.map((it) => decodeBlob(it.bytes, it.cid));
    // Causal order: capabilities (Refs are checked against them), changes by depth (deps have a
    // strictly smaller depth), then Refs.
    const rank = (d: EncodedBlob) =>
      d.blob.type === "Capability" ? -1 : d.blob.type === "Change" ? (d.blob.depth ?? 0) : 2 ** 53;
    const ordered = [...decoded].sort((a, b) => rank(a) - rank(b));
    this.#run(() => {
      for (const d of ordered) this.#storeAndIndex(d);
    });
    return decoded.map((d) => ({ cid: d.cid }));
  }

  /**
   * The bytes of a stored blob under any CID it is known by (blake2b-256 or sha2-256).
   *
   * @throws {BlobError} `invalid_argument` for a string that is not a supported CID.
   */
  getBlob(cid: string): Uint8Array | undefined {
    const data = this.#q.blobData.get(parseCid(cid).string) as Uint8Array | undefined;
    return data === undefined ? undefined : new Uint8Array(data);
  }

  /**
   * The documents (or capability) a blob belongs to, for `/ipfs/{cid}`: the server applies the
   * document read rule to them. `undefined` when no such blob is stored.
   *
   * @throws {BlobError} `invalid_argument` for a string that is not a supported CID.
   */
  blobReadTarget(cid: string): BlobReadTarget | undefined {
    const canonical = this.#resolve(parseCid(cid).string);
    if (canonical === undefined) return undefined;
    const change = this.#q.change.get(canonical);
    if (change !== undefined) {
      const documents = this.#q.documentsOfGenesis.all(change.genesis).map((d) => ({
        account: d.account,
        path: d.path,
        visibility: d.visibility,
        deleted: d.deleted === 1,
      }));
      return { kind: "document", documents };
    }
    const ref = this.#q.ref.get(canonical);
    if (ref !== undefined) {
      const doc = this.#q.document.get(ref.account, ref.path);
      return {
        kind: "document",
        documents: [
          {
            account: ref.account,
            path: ref.path,
            visibility: ref.visibility,
            deleted: doc === undefined || doc.deleted === 1 || doc.genesis !== ref.genesis,
          },
        ],
      };
    }
    const cap = this.#q.capability.get(canonical);
    if (cap !== undefined) return { kind: "capability", account: cap.account, path: cap.path };
    // Stored but never indexed (not written by this module): reachable from nothing.
    return { kind: "document", documents: [] };
  }

  // --- Documents: reads --------------------------------------------------------------------

  /**
   * A document's identity and current Ref, without materialising it: what the read rule needs
   * before anything else is looked at.
   *
   * @returns `undefined` when no Ref for (account, path) is stored.
   * @throws {StoreError} `invalid_argument` for a bad path.
   */
  documentEntry(account: string, path: string): DocumentEntry | undefined {
    validatePath(path);
    const row = this.#q.document.get(account, path);
    return row === undefined ? undefined : toEntry(row);
  }

  /**
   * A document at its current version, or at `version` (heads of this document, sorted or not,
   * joined with `.`). A deleted document comes back with `deleted: true` and no state.
   *
   * @returns `undefined` when no Ref for (account, path) is stored.
   * @throws {StoreError} `invalid_argument` for a bad path or a malformed version, `not_found`
   *   for a version whose heads are not changes of this document.
   */
  getDocument(account: string, path: string, version?: string): StoredDocument | undefined {
    validatePath(path);
    const row = this.#q.document.get(account, path);
    if (row === undefined) return undefined;
    const entry = toEntry(row);
    if (row.deleted === 1) return { ...entry, deleted: true };
    const heads =
      version === undefined || version === ""
        ? splitList(row.heads)
        : this.#parseHeads(version, row.genesis, M.versionNotFound);
    const state = this.#stateFor(row.genesis, heads);
    return { ...entry, deleted: false, state: state.render() };
  }

  /**
   * The account's documents (deleted ones left out), by path. With `visible`, entries it
   * refuses are skipped inside the store, so page sizes and the presence of a next page say
   * nothing about hidden documents.
   *
   * @throws {StoreError} `invalid_argument` for a bad page size or token.
   */
  listDocuments(
    account: string,
    options: PageOptions & { readonly visible?: (entry: DocumentEntry) => boolean } = {},
  ): Page<DocumentEntry> {
    const size = pageSizeOf(options.pageSize);
    let cursor = decodePageToken("d", ["s"], options.pageToken)?.[0] as string | undefined;
    const out: DocumentEntry[] = [];
    const chunk = size + 1;
    for (;;) {
      const rows =
        cursor === undefined
          ? this.#q.listDocsFirst.all(account, chunk)
          : this.#q.listDocsAfter.all(account, cursor, chunk);
      for (const row of rows) {
        cursor = row.path;
        const entry = toEntry(row);
        if (options.visible !== undefined && !options.visible(entry)) continue;
        out.push(entry);
        if (out.length > size) break;
      }
      if (out.length > size || rows.length < chunk) break;
    }
    const items = out.slice(0, size);
    const last = items[items.length - 1];
    const more = out.length > size && last !== undefined;
    return { items, nextPageToken: more ? encodePageToken("d", [last.path]) : "" };
  }

  /**
   * Every change of the document's current version (or of `version`, as for
   * {@link getDocument}), the genesis included, newest first: by (ts, CID) descending.
   *
   * @throws {StoreError} `not_found` for a missing or deleted document, `invalid_argument` for
   *   a bad path, page size or token.
   */
  listDocumentChanges(
    account: string,
    path: string,
    options: PageOptions & { readonly version?: string } = {},
  ): Page<DocumentChangeEntry> {
    validatePath(path);
    const size = pageSizeOf(options.pageSize);
    const after = decodePageToken("c", ["n", "s"], options.pageToken);
    const row = this.#q.document.get(account, path);
    if (row === undefined || row.deleted === 1) fail("not_found", M.documentNotFound);
    const heads =
      options.version === undefined || options.version === ""
        ? splitList(row.heads)
        : this.#parseHeads(options.version, row.genesis, M.versionNotFound);
    const all = this.#changeList(this.#stateFor(row.genesis, heads));
    // Newest first: a page is the `size` entries just before the token's position in the
    // ascending list, reversed.
    let stop = all.length;
    if (after !== undefined) {
      const [ts, cid] = after as [number, string];
      // First entry at or after (ts, cid): binary search over the ascending list.
      let lo = 0;
      let hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const e = all[mid] as DocumentChangeEntry;
        if (e.ts < ts || (e.ts === ts && e.cid < cid)) lo = mid + 1;
        else hi = mid;
      }
      stop = lo;
    }
    const from = Math.max(0, stop - size);
    const items = all.slice(from, stop).reverse();
    const last = items[items.length - 1];
    const more = from > 0 && last !== undefined;
    return { items, nextPageToken: more ? encodePageToken("c", [last.ts, last.cid]) : "" };
  }

  /** The current documents (deleted ones left out) of several accounts, by account and path. */
  documentsOf(accounts: readonly string[]): DocumentEntry[] {
    if (accounts.length === 0) return [];
    return this.#q.documentsOf.all(JSON.stringify([...new Set(accounts)])).map(toEntry);
  }

  // --- Capabilities ------------------------------------------------------------------------

  /**
   * Capabilities of `account`'s space for `path`: those whose path covers it by the
   * segment-prefix rule (`/a` covers `/a/b`, not `/ab`; `""` covers all; a `noRecursive` one
   * only its own path), or with `ignoreInherited` only those for exactly `path`. Expired ones
   * are included (this is metadata); the read rule checks expiry.
   *
   * @throws {StoreError} `invalid_argument` for a bad path.
   */
  listCapabilities(
    account: string,
    path: string,
    options: { readonly ignoreInherited?: boolean } = {},
  ): readonly StoredCapability[] {
    validatePath(path);
    if (options.ignoreInherited === true)
      return this.#q.capsAt.all(account, path).map(toCapability);
    return this.#cachedCaps(`s ${account} ${path}`, () =>
      this.#q.capsIn
        .all(account, JSON.stringify(pathPrefixes(path)))
        .filter((row) => row.path === path || row.no_recursive === 0)
        .map(toCapability),
    );
  }

  /** Every stored capability of `account`'s space, whatever its path, by (ts, CID). */
  listAccountCapabilities(account: string): StoredCapability[] {
    return this.#q.capsOf.all(account).map(toCapability);
  }

  /** Every stored capability delegated to `delegate`, by (ts, CID). */
  listCapabilitiesForDelegate(delegate: string): readonly StoredCapability[] {
    return this.#cachedCaps(`d ${delegate}`, () =>
      this.#q.capsForDelegate.all(delegate).map(toCapability),
    );
  }

  // The read rule asks for the same capability lists on every private read. They are cached
  // until the next capability is stored; never inside a transaction, which may still roll back.
  #cachedCaps(key: string, load: () => StoredCapability[]): readonly StoredCapability[] {
    if (this.#inTx) return load();
    const hit = this.#capLists.get(key);
    if (hit !== undefined) return hit;
    const list = Object.freeze(load());
    this.#capLists.set(key, list);
    return list;
  }

  /**
   * A stored capability by any of its CIDs.
   *
   * @throws {BlobError} `invalid_argument` for a string that is not a supported CID.
   */
  getCapability(cid: string): StoredCapability | undefined {
    const canonical = this.#resolve(parseCid(cid).string);
    if (canonical === undefined) return undefined;
    const row = this.#q.capability.get(canonical);
    return row === undefined ? undefined : toCapability(row);
  }

  // --- Documents: writes -------------------------------------------------------------------

  /**
   * Builds, signs and stores a Change and the Ref that makes it current, in one transaction.
   * The change's deps are the base heads; the Ref's heads are the base merged with every
   * current head the base did not know, so a stale base is merged, not lost. `ts` is
   * `max(now, latest ts of the document + 1)`. A new document (or one re-created after
   * deletion) gets a fresh genesis change; the home document (path `""`) Seed's fixed one.
   *
   * Authorisation is the caller's: the store only refuses a Ref whose signer is neither the
   * account nor the delegate of a stored WRITER/AGENT capability (pass it as `capability`).
   *
   * @throws {StoreError} `invalid_argument` for a bad path, no ops, ops the document model
   *   refuses, or an unauthorised signer; `failed_precondition` without a base version for an
   *   existing document, for a visibility change or a private home document; `not_found` for
   *   a base version that is not one of this document.
   * @throws {BlobError} `invalid_argument` when an op is malformed or `sign` signs with another
   *   key.
   */
  commitChange(input: CommitChangeInput): CommitResult {
    const { account, path, signer, sign } = input;
    validatePath(path);
    if ((input.ops ?? input.edits ?? []).length === 0) fail("invalid_argument", M.noOps);
    if (path === "" && input.visibility === "private") fail("failed_precondition", M.homePrivate);
    return this.#run(() => {
      const now = this.#now();
      if (input.capability !== undefined) this.#storeAndIndex(input.capability);
      const doc = this.#q.document.get(account, path);
      let genesis: string;
      let base: string[];
      let target: DocState;
      let generation: number;
      let visibility: Visibility;
      let refFloor: number;
      // The document as of the base version: what the edits are planned against.
      let baseState: DocState;
      if (doc === undefined || doc.deleted === 1) {
        if (input.baseVersion !== undefined && input.baseVersion !== "") {
          fail("not_found", M.baseVersionNotFound);
        }
        visibility = input.visibility ?? "public";
        const g = this.#newGenesis(account, path, signer, sign, now);
        this.#storeAndIndex(g);
        genesis = g.cid;
        base = [genesis];
        target = DocState.from([modelChange(g.cid, g.blob, g.cid, [])]);
        baseState = target;
        generation = doc === undefined ? 0 : doc.generation + 1;
        refFloor = doc === undefined ? 0 : doc.ts + 1;
      } else {
        if (input.baseVersion === undefined || input.baseVersion === "") {
          fail("failed_precondition", M.baseVersionRequired);
        }
        if (input.visibility !== undefined && input.visibility !== doc.visibility) {
          fail("failed_precondition", M.visibilityChange);
        }
        visibility = doc.visibility;
        genesis = doc.genesis;
        base = this.#parseHeads(input.baseVersion, genesis, M.baseVersionNotFound);
        target = this.#stateFor(
          genesis,
          parseVersion(versionOf([...splitList(doc.heads), ...base])),
        );
        generation = doc.generation;
        refFloor = doc.ts + 1;
        baseState = this.#stateFor(genesis, base);
      }
      const ops = input.ops ?? writableOps(planOps(baseState, input.edits ?? []));
      if (ops.length === 0) fail("invalid_argument", M.noEffect);
      const stored = this.#q.maxTs.get(genesis) as number | null;
      const ts = Math.max(now, Math.max(target.maxTs, stored ?? 0) + 1);
      let depth = 0;
      for (const h of base) depth = Math.max(depth, (this.#q.change.get(h) as ChangeRow).depth);
      const change = createChange({ signer, ts, genesis, deps: base, depth: depth + 1, ops }, sign);
      // The state is about to be extended in place: take it out of the cache first, so a failure
      // below cannot leave a state with an uncommitted change behind.
      this.#states.deleteValue(target);
      for (const [k, v] of this.#pendingStates) if (v === target) this.#pendingStates.delete(k);
      try {
        target.apply(modelChange(change.cid, change.blob, genesis, base));
      } catch (err) {
        if (err instanceof DomainError) fail("invalid_argument", M.badChange);
        throw err;
      }
      this.#storeAndIndex(change);
      const heads = target.heads();
      const ref = createRef(
        {
          signer,
          ts: Math.max(ts, refFloor),
          space: account,
          path,
          genesisBlob: genesis,
          heads,
          generation,
          ...(visibility === "private" && { visibility: "Private" as const }),
          ...(input.capability !== undefined && { capability: input.capability.cid }),
        },
        sign,
      );
      this.#storeAndIndex(ref, target);
      return {
        version: versionOf(heads),
        heads,
        change: change.cid,
        ref: ref.cid,
        genesis,
        visibility,
      };
    });
  }

  /**
   * Deletes a document: stores a tombstone Ref (heads `[]`) that outranks the current one.
   *
   * @returns the tombstone's CID.
   * @throws {StoreError} `failed_precondition` for the home document, `not_found` for a missing
   *   or already deleted document, `invalid_argument` for a bad path or an unauthorised signer.
   */
  deleteDocument(input: DeleteDocumentInput): { ref: string } {
    const { account, path, signer, sign } = input;
    validatePath(path);
    if (path === "") fail("failed_precondition", M.homeNotDeletable);
    return this.#run(() => {
      if (input.capability !== undefined) this.#storeAndIndex(input.capability);
      const doc = this.#q.document.get(account, path);
      if (doc === undefined || doc.deleted === 1) fail("not_found", M.documentNotFound);
      const ref = createRef(
        {
          signer,
          ts: Math.max(this.#now(), doc.ts + 1),
          space: account,
          path,
          genesisBlob: doc.genesis,
          heads: [],
          generation: doc.generation,
          ...(doc.visibility === "private" && { visibility: "Private" as const }),
          ...(input.capability !== undefined && { capability: input.capability.cid }),
        },
        sign,
      );
      this.#storeAndIndex(ref);
      return { ref: ref.cid };
    });
  }

  // --- Internals ---------------------------------------------------------------------------

  // One immediate transaction; cache updates and version events only after it committed.
  #run<T>(fn: () => T): T {
    if (this.#inTx) return fn();
    this.#inTx = true;
    this.#pendingStates = new Map();
    this.#pendingEvents = [];
    let result: T;
    try {
      result = this.#txn.immediate(fn) as T;
    } catch (err) {
      // Rolled back: states built from its rows and its events must never be seen.
      this.#pendingStates = new Map();
      this.#pendingEvents = [];
      throw err;
    } finally {
      this.#inTx = false;
    }
    const states = this.#pendingStates;
    const events = this.#pendingEvents;
    this.#pendingStates = new Map();
    this.#pendingEvents = [];
    for (const [k, v] of states) this.#states.set(k, v);
    for (const e of events) {
      for (const l of [...this.#listeners]) {
        try {
          l(e);
        } catch {
          // A listener's failure must not turn a committed write into an error.
        }
      }
    }
    return result;
  }

  #newGenesis(
    account: string,
    path: string,
    signer: string,
    sign: SignFn,
    now: number,
  ): EncodedBlob<Change> {
    if (path === "") {
      if (signer !== account) fail("failed_precondition", M.homeGenesisSigner);
      return createHomeGenesisChange(account, sign);
    }
    // A genesis is an empty change, so its CID is (signer, ts): a fresh ts keeps two documents
    // created in the same millisecond from sharing one genesis.
    for (let i = 0; i < GENESIS_TS_TRIES; i++) {
      const g = createChange({ signer, ts: now + i }, sign);
      if (this.#resolve(g.cid) === undefined) return g;
    }
    fail("failed_precondition", M.corrupt);
  }

  #resolve(cid: string): string | undefined {
    return this.#q.resolve.get(cid) as string | undefined;
  }

  #storeAndIndex(d: EncodedBlob, prepared?: DocState): void {
    const canonical = cidForBytes(d.bytes, "blake2b-256").string;
    const sha = cidForBytes(d.bytes, "sha2-256").string;
    this.#q.insertBlob.run(canonical, DAG_CBOR_CODE, d.bytes, this.#now());
    this.#q.insertAlias.run(canonical, canonical);
    this.#q.insertAlias.run(sha, canonical);
    switch (d.blob.type) {
      case "Change":
        this.#indexChange(canonical, d.blob);
        break;
      case "Ref":
        this.#indexRef(canonical, d.blob, prepared);
        break;
      case "Capability":
        this.#indexCapability(canonical, d.blob);
        break;
    }
  }

  #indexChange(cid: string, c: Change): void {
    if (this.#q.change.get(cid) !== undefined) return;
    if (c.genesis === undefined) {
      this.#q.insertChange.run(cid, cid, "", c.ts, 0, c.signer);
      return;
    }
    const genesis = this.#resolve(c.genesis);
    const g = genesis === undefined ? undefined : this.#q.change.get(genesis);
    if (genesis === undefined || g === undefined || g.deps !== "") {
      fail("invalid_argument", M.missingDeps);
    }
    const depRows = (c.deps ?? []).map((link) => {
      const dep = this.#resolve(link);
      const row = dep === undefined ? undefined : this.#q.change.get(dep);
      if (row === undefined) fail("invalid_argument", M.missingDeps);
      return row;
    });
    const deps = depRows.map((r) => r.cid);
    // checkChangeDeps on canonical views, so a dep linked by its sha2-256 CID compares equal.
    const view: Change = { ...c, genesis, deps };
    const depViews: EncodedBlob<Change>[] = depRows.map((r) => ({
      cid: r.cid,
      cidBytes: EMPTY,
      bytes: EMPTY,
      blob: {
        type: "Change",
        signer: r.signer,
        sig: EMPTY,
        ts: r.ts,
        ...(r.deps !== "" && { genesis: r.genesis, deps: splitList(r.deps), depth: r.depth }),
      },
    }));
    try {
      checkChangeDeps(view, depViews);
    } catch {
      fail("invalid_argument", M.badDeps);
    }
    this.#q.insertChange.run(cid, genesis, versionOf(deps), c.ts, c.depth ?? 0, c.signer);
  }

  #indexCapability(cid: string, c: Capability): void {
    if (this.#q.capability.get(cid) !== undefined) return;
    const path = validatePath(c.path ?? "");
    this.#capLists.clear();
    this.#q.insertCapability.run(
      cid,
      c.signer,
      path,
      c.delegate,
      c.role ?? null,
      c.label ?? null,
      c.audience ?? null,
      c.exp ?? null,
      c.noRecursive === true ? 1 : 0,
      c.ts,
    );
  }

  #indexRef(cid: string, r: Ref, prepared?: DocState): void {
    if (this.#q.ref.get(cid) !== undefined) return;
    if (r.redirect !== undefined) fail("invalid_argument", M.redirectUnsupported);
    const account = refSpace(r);
    const path = validatePath(r.path ?? "");
    const genesis = this.#resolve(r.genesisBlob);
    const g = genesis === undefined ? undefined : this.#q.change.get(genesis);
    if (genesis === undefined || g === undefined || g.deps !== "") {
      fail("invalid_argument", M.missingGenesis);
    }
    const heads = r.heads.map((link) => {
      const h = this.#resolve(link);
      const row = h === undefined ? undefined : this.#q.change.get(h);
      if (row === undefined || row.genesis !== genesis) fail("invalid_argument", M.missingHeads);
      return row.cid;
    });
    const visibility: Visibility = r.visibility === "Private" ? "private" : "public";
    const known = this.#q.refVisibility.get(account, path, genesis) as Visibility | undefined;
    if (known !== undefined && known !== visibility) fail("invalid_argument", M.refVisibility);
    if (r.signer !== account) {
      const caps = this.#q.capsOfSpaceForDelegate.all(r.signer, account).map(toCapability);
      if (!canWrite(r.signer, account, path, caps, this.#now()).granted) {
        fail("invalid_argument", M.refNotAuthorized);
      }
    }
    const version = versionOf(heads);
    if (heads.length > 0) {
      // Refuse heads that do not make a document, so a stored Ref can always be read.
      let state = prepared;
      if (state === undefined) {
        try {
          state = this.#stateFor(genesis, parseVersion(version));
        } catch (err) {
          if (err instanceof DomainError) fail("invalid_argument", M.badHeads);
          throw err;
        }
      }
      this.#pendingStates.set(`${genesis} ${version}`, state);
    }
    this.#q.insertRef.run(
      cid,
      account,
      path,
      genesis,
      version,
      r.generation ?? 0,
      r.ts,
      r.signer,
      visibility,
    );
    const top = this.#q.topRef.get(account, path) as RefRow;
    const cur = this.#q.document.get(account, path);
    if (cur?.ref === top.cid) return;
    const deleted = top.heads === "";
    this.#q.upsertDocument.run(
      account,
      path,
      top.cid,
      top.genesis,
      top.heads,
      top.generation,
      top.ts,
      top.visibility,
      deleted ? 1 : 0,
    );
    this.#pendingEvents.push({
      account,
      path,
      version: top.heads,
      visibility: top.visibility,
      deleted,
      ref: top.cid,
      genesis: top.genesis,
    });
  }

  // Canonical heads of a version string that must all be changes of `genesis`.
  #parseHeads(version: string, genesis: string, notFound: StoreErrorMessage): string[] {
    if (typeof version !== "string") fail("invalid_argument", M.badVersion);
    const parts = parseVersion(version);
    if (parts.length > MAX_VERSION_HEADS) fail("invalid_argument", M.badVersion);
    const out = parts.map((p) => {
      let cid: string;
      try {
        cid = parseCid(p).string;
      } catch {
        fail("invalid_argument", M.badVersion);
      }
      const canonical = this.#resolve(cid);
      const row = canonical === undefined ? undefined : this.#q.change.get(canonical);
      if (row === undefined || row.genesis !== genesis) fail("not_found", notFound);
      return row.cid;
    });
    return parseVersion(versionOf(out));
  }

  // The materialised state of `genesis` at exactly `heads` (canonical, non-empty), cached.
  #stateFor(genesis: string, heads: readonly string[]): DocState {
    const key = `${genesis} ${versionOf(heads)}`;
    const hit = this.#pendingStates.get(key) ?? this.#states.get(key);
    if (hit !== undefined) return hit;
    let state: DocState;
    try {
      state = DocState.from(this.#loadChanges(genesis), heads);
    } catch (err) {
      // Stored documents were checked when indexed; the model's message names CIDs, so it is
      // replaced by a fixed one.
      if (err instanceof DomainError) fail("failed_precondition", M.corrupt);
      throw err;
    }
    if (this.#inTx) this.#pendingStates.set(key, state);
    else this.#states.set(key, state);
    return state;
  }

  // Stored changes were fully verified when stored, so they are parsed, not re-verified.
  #loadChanges(genesis: string): ModelChange[] {
    return this.#q.changesOf.all(genesis).map((row) => {
      const value = decodeCanonical(row.data);
      if (!isWireMap(value)) fail("failed_precondition", M.corrupt);
      return modelChange(row.cid, parseChange(value), row.genesis, splitList(row.deps));
    });
  }

  #changeList(state: DocState): DocumentChangeEntry[] {
    const cached = this.#sortedChanges.get(state);
    if (cached !== undefined && cached.length === state.size) return cached;
    const list = [...state.changes()]
      .map((c) => ({
        cid: c.id,
        signer: c.actor,
        ts: c.ts,
        deps: [...c.deps].sort(),
        isGenesis: c.deps.length === 0,
      }))
      .sort((a, b) => a.ts - b.ts || (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0));
    this.#sortedChanges.set(state, list);
    return list;
  }
}
