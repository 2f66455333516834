import {
  asArray,
  expectMap,
  fail,
  has,
  linkToWire,
  optNonEmptyString,
  optPositiveInt,
  principalToWire,
  readLink,
  readPrincipal,
  type WireMap,
} from "./fields.js";
import type { SignFn } from "./signature.js";
import { BASE_FIELDS, buildSigned, checkTs, readBase } from "./signed.js";
import type { EncodedBlob, Ref, RefRedirect } from "./types.js";

// Field names as Seed spells them (backend/blob/blob_ref.go, refmt tags).
const REF_FIELDS = new Set([
  ...BASE_FIELDS,
  "space",
  "path",
  "genesisBlob",
  "capability",
  "heads",
  "redirect",
  "generation",
  "visibility",
]);
const REDIRECT_FIELDS = new Set(["space", "path", "republish"]);

function parseRedirect(v: unknown): RefRedirect {
  const m = expectMap(v, REDIRECT_FIELDS);
  const space = has(m, "space") ? readPrincipal(m.space).principal : undefined;
  const path = optNonEmptyString(m, "path");
  if (has(m, "republish") && m.republish !== true) fail("badField");
  return {
    ...(space !== undefined && { space }),
    ...(path !== undefined && { path }),
    ...(m.republish === true && { republish: true }),
  };
}

/** Validates a decoded Ref map; the decoder and the builder share it. */
export function parseRef(m: WireMap): Ref {
  expectMap(m, REF_FIELDS);
  const base = readBase(m);
  const space = has(m, "space") ? readPrincipal(m.space).principal : undefined;
  const path = optNonEmptyString(m, "path");
  if (!has(m, "genesisBlob") || !has(m, "heads")) fail("badField");
  const genesisBlob = readLink(m.genesisBlob);
  const capability = has(m, "capability") ? readLink(m.capability) : undefined;
  // Seed's Go writer encodes a tombstone's nil heads as null, its JS SDK as [].
  const heads = m.heads === null ? [] : asArray(m.heads).map(readLink);
  const redirect = has(m, "redirect") ? parseRedirect(m.redirect) : undefined;
  const generation = optPositiveInt(m, "generation");
  if (has(m, "visibility") && m.visibility !== "Private") fail("badField");
  // Seed's indexRef: a redirect has no heads; the home document is never a tombstone or a
  // redirect; a private Ref names a path.
  if (redirect !== undefined && heads.length > 0) fail("badShape");
  if (path === undefined && heads.length === 0) fail("badShape");
  if (m.visibility === "Private" && path === undefined) fail("badShape");
  return {
    type: "Ref",
    signer: base.signer,
    sig: base.sig,
    ts: base.ts,
    ...(space !== undefined && { space }),
    ...(path !== undefined && { path }),
    genesisBlob,
    ...(capability !== undefined && { capability }),
    heads,
    ...(redirect !== undefined && { redirect }),
    ...(generation !== undefined && { generation }),
    ...(m.visibility === "Private" && { visibility: "Private" as const }),
  };
}

/** What {@link createRef} needs. */
export interface RefInput {
  /** Principal (`z6Mk…`) of the signing key. */
  readonly signer: string;
  /** Unix milliseconds. */
  readonly ts: number;
  /** The space; omitted on the wire when it is the signer. Defaults to the signer. */
  readonly space?: string;
  /** Document path; `""` or absent for the home document. */
  readonly path?: string;
  readonly genesisBlob: string;
  /** Capability CID, when the signer writes to someone else's space. */
  readonly capability?: string;
  /** Head CIDs, in the order given; `[]` makes a tombstone. */
  readonly heads: readonly string[];
  readonly redirect?: {
    readonly space?: string;
    readonly path?: string;
    readonly republish?: boolean;
  };
  readonly generation?: number;
  /** `"Private"` for a private document; absent for public. */
  readonly visibility?: "Private";
}

/**
 * Builds, signs and encodes a Ref. Empty optionals (a space equal to the signer, path `""`,
 * generation 0, public visibility) are omitted.
 *
 * @throws {BlobError} `invalid_argument` for malformed input (including a home-document
 *   tombstone or a private home document) or a signature that does not verify.
 */
export function createRef(input: RefInput, sign: SignFn): EncodedBlob<Ref> {
  const map: WireMap = {
    type: "Ref",
    ts: checkTs(input.ts),
    genesisBlob: linkToWire(input.genesisBlob),
    heads: input.heads.map(linkToWire),
  };
  if (input.space !== undefined && input.space !== input.signer) {
    map.space = principalToWire(input.space);
  }
  if (input.path) map.path = input.path;
  if (input.capability !== undefined) map.capability = linkToWire(input.capability);
  if (input.redirect !== undefined) {
    const r = input.redirect;
    const targetSpace = r.space ?? input.space ?? input.signer;
    map.redirect = {
      ...(targetSpace !== (input.space ?? input.signer) && { space: principalToWire(targetSpace) }),
      ...(r.path ? { path: r.path } : {}),
      ...(r.republish === true && { republish: true }),
    };
  }
  if (input.generation !== undefined && input.generation !== 0) map.generation = input.generation;
  if (input.visibility !== undefined) map.visibility = input.visibility;
  return buildSigned(map, input.signer, sign, parseRef);
}

/** The space a Ref applies to: `space` when present, else the signer. */
export function refSpace(ref: Ref): string {
  return ref.space ?? ref.signer;
}
