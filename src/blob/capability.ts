import {
  expectMap,
  fail,
  has,
  optNonEmptyString,
  optPositiveInt,
  principalToWire,
  readPrincipal,
  type WireMap,
} from "./fields.js";
import type { SignFn } from "./signature.js";
import { BASE_FIELDS, buildSigned, checkTs, readBase } from "./signed.js";
import type { Capability, CapabilityRole, EncodedBlob } from "./types.js";

// Seed's fields (backend/blob/blob_capability.go, refmt tags) plus this daemon's `exp` and
// `noRecursive`.
const CAPABILITY_FIELDS = new Set([
  ...BASE_FIELDS,
  "delegate",
  "audience",
  "path",
  "role",
  "label",
  "exp",
  "noRecursive",
]);
const ROLES: ReadonlySet<string> = new Set<CapabilityRole>(["WRITER", "AGENT", "READER"]);

/** Seed's label limit (`labelLimitBytes`), in UTF-8 bytes. */
export const MAX_CAPABILITY_LABEL_BYTES = 512;

/** Validates a decoded Capability map; the decoder and the builder share it. */
export function parseCapability(m: WireMap): Capability {
  expectMap(m, CAPABILITY_FIELDS);
  const base = readBase(m);
  if (!has(m, "delegate")) fail("badField");
  const delegate = readPrincipal(m.delegate).principal;
  const audience = has(m, "audience") ? readPrincipal(m.audience).principal : undefined;
  const path = optNonEmptyString(m, "path");
  const role = optNonEmptyString(m, "role");
  if (role !== undefined && !ROLES.has(role)) fail("badField");
  const label = optNonEmptyString(m, "label");
  // Seed's ValidateCapabilityLabel.
  if (
    label !== undefined &&
    (Buffer.byteLength(label, "utf8") > MAX_CAPABILITY_LABEL_BYTES || label.trim() !== label)
  ) {
    fail("badField");
  }
  const exp = optPositiveInt(m, "exp");
  if (has(m, "noRecursive") && m.noRecursive !== true) fail("badField");
  // Seed refuses to index an AGENT capability tied to a path.
  if (role === "AGENT" && path !== undefined) fail("badShape");
  return {
    type: "Capability",
    signer: base.signer,
    sig: base.sig,
    ts: base.ts,
    delegate,
    ...(audience !== undefined && { audience }),
    ...(path !== undefined && { path }),
    ...(role !== undefined && { role: role as CapabilityRole }),
    ...(label !== undefined && { label }),
    ...(exp !== undefined && { exp }),
    ...(m.noRecursive === true && { noRecursive: true as const }),
  };
}

/** What {@link createCapability} needs. */
export interface CapabilityInput {
  /** Principal (`z6Mk…`) of the signing key; the capability's space. */
  readonly signer: string;
  /** Unix milliseconds. */
  readonly ts: number;
  readonly delegate: string;
  readonly audience?: string;
  /** Path prefix covered; `""` or absent for the whole space. Never with role AGENT. */
  readonly path?: string;
  readonly role?: CapabilityRole;
  /** At most 512 UTF-8 bytes, no leading or trailing white space. */
  readonly label?: string;
  /** Expiry, Unix milliseconds. */
  readonly exp?: number;
  /** Cover `path` only, not the documents below it. */
  readonly noRecursive?: boolean;
}

/**
 * Builds, signs and encodes a Capability. Empty optionals (path `""`, no label, no expiry,
 * `noRecursive: false`) are omitted.
 *
 * @throws {BlobError} `invalid_argument` for malformed input or a signature that does not
 *   verify against `input.signer`.
 */
export function createCapability(input: CapabilityInput, sign: SignFn): EncodedBlob<Capability> {
  const map: WireMap = {
    type: "Capability",
    ts: checkTs(input.ts),
    delegate: principalToWire(input.delegate),
  };
  if (input.audience !== undefined) map.audience = principalToWire(input.audience);
  if (input.path) map.path = input.path;
  if (input.role !== undefined) map.role = input.role;
  if (input.label) map.label = input.label;
  if (input.exp !== undefined) map.exp = input.exp;
  if (input.noRecursive === true) map.noRecursive = true;
  return buildSigned(map, input.signer, sign, parseCapability);
}
