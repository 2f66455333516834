import { sha256 } from "@noble/hashes/sha2.js";
import { base58btc } from "multiformats/bases/base58";
import { DocModelError } from "./errors.js";
import type { OpRef } from "./types.js";

/**
 * Identity of one logical op, ordered by `(ts, idx, actor)` exactly as Seed's `opID.Compare`.
 * `actor` is Seed's 56-bit `ActorID` of the signer, so refs found in Seed's blobs resolve here.
 */
export interface OpId {
  /** Change timestamp, Unix ms. */
  readonly ts: number;
  /** Logical op index within the change (Seed's numbering, see `doc-state.ts`). */
  readonly idx: number;
  /** Seed ActorID of the change signer. */
  readonly actor: bigint;
}

/** Seed's bounds: ts fits 48 bits, idx is a policy cap of 2^31-1. */
export const MAX_TS = 2 ** 48 - 1;
export const MAX_IDX = 2 ** 31 - 1;

/** Total order of op ids: ts, then idx, then actor (all unsigned). */
export function compareOpId(a: OpId, b: OpId): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.idx !== b.idx) return a.idx < b.idx ? -1 : 1;
  if (a.actor === b.actor) return 0;
  return a.actor < b.actor ? -1 : 1;
}

/** Map key of an op id. */
export function opKey(id: OpId): string {
  return `${id.ts}:${id.idx}:${id.actor}`;
}

// A z6Mk… principal is 48 characters; the bound keeps a hostile string away from base58's
// quadratic decoder.
const MAX_PRINCIPAL_CHARS = 128;

/**
 * Seed's `Principal.ActorID()`: the first 8 bytes of sha256(principal bytes), little-endian, with
 * the top byte cleared (56 bits). `principal` is the base58btc multibase string (`z6Mk…`).
 */
export function actorIdOf(principal: string): bigint {
  let bytes: Uint8Array;
  try {
    if (principal.length > MAX_PRINCIPAL_CHARS) throw new Error("too long");
    bytes = base58btc.decode(principal);
  } catch {
    throw new DocModelError("invalid_change", "change actor is not a base58btc principal");
  }
  const sum = sha256(bytes);
  let id = 0n;
  for (let i = 6; i >= 0; i--) id = (id << 8n) | BigInt(sum[i] as number);
  return id;
}

function refInt(v: number | bigint, max: bigint, what: string): bigint {
  const n = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
  if (n < 0n || n > max) throw new DocModelError("invalid_change", `invalid op ref: bad ${what}`);
  return n;
}

/**
 * Decodes a MoveBlocks `ref` the way Seed does: empty means the start of the list, `[idx]` is an
 * op of the same change (`self`), `[ts, idx, actor]` is any op.
 *
 * @returns the op id, or `undefined` for the start of the list.
 */
export function decodeRef(ref: OpRef | undefined, self: OpId): OpId | undefined {
  if (ref === undefined || ref.length === 0) return undefined;
  if (ref.length === 1) {
    const idx = Number(refInt(ref[0] as number | bigint, BigInt(MAX_IDX), "index"));
    return { ts: self.ts, idx, actor: self.actor };
  }
  if (ref.length !== 3) throw new DocModelError("invalid_change", "invalid op ref: wrong length");
  const ts = Number(refInt(ref[0] as number | bigint, BigInt(MAX_TS), "timestamp"));
  const idx = Number(refInt(ref[1] as number | bigint, BigInt(MAX_IDX), "index"));
  const actor = refInt(ref[2] as number | bigint, 2n ** 64n - 1n, "actor");
  if (ts === 0 && idx === 0 && actor === 0n) return undefined;
  return { ts, idx, actor };
}

/**
 * Encodes a ref the way Seed writes it: `[idx]` for an op of the change being written (`self`),
 * `[ts, idx, actor]` otherwise, `[]` for the start of the list. Numbers above 2^53 are bigints,
 * which `@ipld/dag-cbor` encodes as CBOR unsigned integers.
 */
export function encodeRef(id: OpId | undefined, self?: { ts: number; actor: bigint }): OpRef {
  if (id === undefined) return [];
  if (self !== undefined && id.ts === self.ts && id.actor === self.actor) return [id.idx];
  const actor = id.actor <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id.actor) : id.actor;
  return [id.ts, id.idx, actor];
}
