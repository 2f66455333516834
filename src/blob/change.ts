import { BLOB_ERROR_MESSAGES, BlobError } from "./errors.js";
import {
  asArray,
  asString,
  asStringArray,
  asUint64,
  compareCidStrings,
  expectMap,
  expectOpenMap,
  fail,
  has,
  isWireMap,
  linkToWire,
  optPositiveInt,
  readLink,
  type WireMap,
} from "./fields.js";
import type { SignFn } from "./signature.js";
import { BASE_FIELDS, buildSigned, checkTs, readBase } from "./signed.js";
import type {
  Annotation,
  AttributeEntry,
  AttributeValue,
  Block,
  Change,
  ChangeBody,
  EncodedBlob,
  Op,
  WritableOp,
} from "./types.js";

// Field names as Seed spells them (backend/blob/blob_change.go, refmt tags).
const CHANGE_FIELDS = new Set([...BASE_FIELDS, "genesis", "deps", "depth", "body"]);
const BODY_FIELDS = new Set(["opCount", "ops"]);
const OP_FIELDS: Readonly<Record<Op["type"], ReadonlySet<string>>> = {
  SetAttributes: new Set(["type", "block", "attrs"]),
  ReplaceBlock: new Set(["type", "block"]),
  MoveBlocks: new Set(["type", "parent", "blocks", "ref"]),
  DeleteBlocks: new Set(["type", "blocks"]),
  SetKey: new Set(["type", "key", "value"]),
};
const ATTR_FIELDS = new Set(["key", "value"]);

// Inside ops Seed keeps the decoded map as it is (`OpMap`) and signs over exactly that, so it
// accepts what its op readers accept: `null` for a list, `""` for the root parent or the
// document block. Those readers are the reference for the leniency below.

function asAttributeValue(v: unknown): AttributeValue {
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  fail("badField");
}

function nullableStringList(v: unknown): string[] {
  return v === null ? [] : asStringArray(v);
}

function parseAnnotation(v: unknown): Annotation {
  const m = expectOpenMap(v);
  if (!has(m, "type")) fail("badField");
  asString(m.type);
  if (has(m, "link")) asString(m.link);
  for (const key of ["starts", "ends"]) {
    if (!has(m, key)) continue;
    for (const n of asArray(m[key])) {
      if (typeof n !== "number" || !Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) {
        fail("badField");
      }
    }
  }
  return m as Annotation;
}

function parseBlock(v: unknown): Block {
  const m = expectOpenMap(v);
  if (!has(m, "id") || asString(m.id).length === 0) fail("badField");
  for (const key of ["type", "text", "link"]) if (has(m, key)) asString(m[key]);
  if (has(m, "annotations") && m.annotations !== null) asArray(m.annotations).map(parseAnnotation);
  return m as Block;
}

function parseAttrs(v: unknown): AttributeEntry[] {
  if (v === null) return [];
  return asArray(v).map((item) => {
    const m = expectMap(item, ATTR_FIELDS);
    return {
      key: has(m, "key") ? nullableStringList(m.key) : [],
      value: has(m, "value") ? asAttributeValue(m.value) : null,
    };
  });
}

function parseOp(v: unknown): Op {
  if (!isWireMap(v)) fail("badField");
  const type = v.type;
  if (typeof type !== "string" || !Object.hasOwn(OP_FIELDS, type)) fail("unknownOp");
  const m = expectMap(v, OP_FIELDS[type as Op["type"]]);
  switch (type as Op["type"]) {
    case "SetAttributes": {
      const block = has(m, "block") ? asString(m.block) : "";
      const attrs = has(m, "attrs") ? parseAttrs(m.attrs) : [];
      return {
        type: "SetAttributes",
        ...(block !== "" && { block }),
        ...(attrs.length > 0 && { attrs }),
      };
    }
    case "ReplaceBlock":
      if (!has(m, "block")) fail("badField");
      return { type: "ReplaceBlock", block: parseBlock(m.block) };
    case "MoveBlocks": {
      const parent = has(m, "parent") ? asString(m.parent) : "";
      const blocks = has(m, "blocks") ? nullableStringList(m.blocks) : [];
      // Seed's document model refuses a move of nothing; refuse it before it gets there.
      if (blocks.length === 0) fail("badField");
      const ref = has(m, "ref") && m.ref !== null ? asArray(m.ref).map(asUint64) : [];
      return {
        type: "MoveBlocks",
        ...(parent !== "" && { parent }),
        blocks,
        ...(ref.length > 0 && { ref }),
      };
    }
    case "DeleteBlocks":
      return { type: "DeleteBlocks", blocks: has(m, "blocks") ? nullableStringList(m.blocks) : [] };
    case "SetKey":
      if (!has(m, "key")) fail("badField");
      return {
        type: "SetKey",
        key: asString(m.key),
        value: has(m, "value") ? asAttributeValue(m.value) : null,
      };
  }
}

function parseBody(v: unknown): ChangeBody {
  const m = expectMap(v, BODY_FIELDS);
  const opCount = optPositiveInt(m, "opCount");
  let ops: Op[] | undefined;
  if (has(m, "ops")) {
    ops = asArray(m.ops).map(parseOp);
    if (ops.length === 0) fail("badField");
  }
  // Seed omits an empty body altogether.
  if (opCount === undefined && ops === undefined) fail("badField");
  return { ...(opCount !== undefined && { opCount }), ...(ops !== undefined && { ops }) };
}

/** Validates a decoded Change map; the decoder and the builder share it. */
export function parseChange(m: WireMap): Change {
  expectMap(m, CHANGE_FIELDS);
  const base = readBase(m);
  const genesis = has(m, "genesis") ? readLink(m.genesis) : undefined;
  let deps: string[] | undefined;
  if (has(m, "deps")) {
    deps = asArray(m.deps).map(readLink);
    if (deps.length === 0) fail("badField");
  }
  const depth = optPositiveInt(m, "depth");
  const body = has(m, "body") ? parseBody(m.body) : undefined;
  const isGenesis = genesis === undefined && deps === undefined && depth === undefined;
  const isChild = genesis !== undefined && deps !== undefined && depth !== undefined;
  // Seed's causality invariant (indexChange): all three or none.
  if (!isGenesis && !isChild) fail("badShape");
  return {
    type: "Change",
    signer: base.signer,
    sig: base.sig,
    ts: base.ts,
    ...(genesis !== undefined && { genesis }),
    ...(deps !== undefined && { deps }),
    ...(depth !== undefined && { depth }),
    ...(body !== undefined && { body }),
  };
}

/** What {@link createChange} needs. */
export interface ChangeInput {
  /** Principal (`z6Mk…`) of the signing key. */
  readonly signer: string;
  /** Unix milliseconds; must exceed every dep's `ts`. */
  readonly ts: number;
  /** Genesis change CID; absent for a genesis change. */
  readonly genesis?: string;
  /** Heads this change follows; required with `genesis`. Sorted and deduplicated here. */
  readonly deps?: readonly string[];
  /** Greater than every dep's depth (Seed uses max + 1); required with `genesis`. */
  readonly depth?: number;
  readonly ops?: readonly WritableOp[];
  /** Logical op count; computed as Seed does when absent. */
  readonly opCount?: number;
}

function withoutUndefined(m: WireMap): WireMap {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined));
}

function blockToWire(block: unknown): WireMap {
  const m = withoutUndefined(expectOpenMap(block));
  if (Array.isArray(m.annotations)) {
    m.annotations = m.annotations.map((a: unknown) => withoutUndefined(expectOpenMap(a)));
  }
  return m;
}

function opToWire(op: WritableOp): { wire: WireMap; size: number } {
  const type: unknown = isWireMap(op) ? op.type : undefined;
  if (typeof type !== "string" || type === "SetKey" || !Object.hasOwn(OP_FIELDS, type)) {
    fail("unknownOp");
  }
  expectMap(withoutUndefined(op as unknown as WireMap), OP_FIELDS[op.type]);
  switch (op.type) {
    case "SetAttributes": {
      const attrs = (op.attrs ?? []).map((kv) => ({ key: [...kv.key], value: kv.value }));
      if (attrs.length === 0 || attrs.some((kv) => kv.key.length === 0)) fail("badField");
      return {
        wire: { type: op.type, ...(op.block ? { block: op.block } : {}), attrs },
        size: attrs.length,
      };
    }
    case "ReplaceBlock":
      return { wire: { type: op.type, block: blockToWire(op.block) }, size: 1 };
    case "MoveBlocks": {
      const ref = op.ref ?? [];
      return {
        wire: {
          type: op.type,
          ...(op.parent ? { parent: op.parent } : {}),
          blocks: [...op.blocks],
          ...(ref.length > 0 ? { ref: [...ref] } : {}),
        },
        size: op.blocks.length,
      };
    }
    case "DeleteBlocks":
      if (op.blocks.length === 0) fail("badField");
      return { wire: { type: op.type, blocks: [...op.blocks] }, size: op.blocks.length };
  }
}

/**
 * Builds, signs and encodes a Change. Empty optionals are omitted, deps are sorted by binary
 * CID as Seed sorts them.
 *
 * @param input - the change; a genesis change has no `genesis`, `deps` or `depth`.
 * @param sign - signs with the key of `input.signer`.
 * @throws {BlobError} `invalid_argument` for a malformed input or a signature that does not
 *   verify against `input.signer`.
 */
export function createChange(input: ChangeInput, sign: SignFn): EncodedBlob<Change> {
  const map: WireMap = { type: "Change", ts: checkTs(input.ts) };
  if (input.genesis !== undefined) map.genesis = linkToWire(input.genesis);
  if (input.deps !== undefined && input.deps.length > 0) {
    const deps = [...new Set(input.deps)].sort(compareCidStrings);
    map.deps = deps.map(linkToWire);
  }
  if (input.depth !== undefined && input.depth !== 0) map.depth = input.depth;
  const ops = (input.ops ?? []).map(opToWire);
  if (ops.length > 0) {
    const opCount = input.opCount ?? ops.reduce((n, op) => n + op.size, 0);
    map.body = { ...(opCount !== 0 && { opCount }), ops: ops.map((op) => op.wire) };
  }
  return buildSigned(map, input.signer, sign, parseChange);
}

/**
 * Seed's fixed genesis change of an account's home document: an empty change with `ts: 0`, so
 * every device derives the same CID from the key alone.
 *
 * @param signer - principal (`z6Mk…`) of the account.
 * @param sign - signs with that account's key.
 */
export function createHomeGenesisChange(signer: string, sign: SignFn): EncodedBlob<Change> {
  return createChange({ signer, ts: 0 }, sign);
}

/** True for a genesis change (no `genesis`, `deps` or `depth`). */
export function isGenesisChange(change: Change): boolean {
  return change.genesis === undefined;
}

/**
 * Checks a change against the changes it names as deps, as Seed's document model does: the
 * same genesis, a strictly greater `ts` and a strictly greater `depth` than each dep.
 *
 * @param change - the new change.
 * @param deps - every change in `change.deps`, decoded.
 * @throws {BlobError} `invalid_argument` when a dep is missing or an invariant fails.
 */
export function checkChangeDeps(change: Change, deps: readonly EncodedBlob<Change>[]): void {
  const byCid = new Map(deps.map((d) => [d.cid, d.blob]));
  for (const cid of change.deps ?? []) {
    const dep = byCid.get(cid);
    if (dep === undefined) throw new BlobError(BLOB_ERROR_MESSAGES.badShape);
    const depGenesis = dep.genesis ?? cid;
    if (
      depGenesis !== change.genesis ||
      !(change.ts > dep.ts) ||
      !((change.depth ?? 0) > (dep.depth ?? 0))
    ) {
      throw new BlobError(BLOB_ERROR_MESSAGES.badShape);
    }
  }
}
