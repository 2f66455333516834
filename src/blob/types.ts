// The blob types at the API: principals are `z6Mk…` strings, links are base32 CID strings,
// `ts` is Unix milliseconds. Optional fields are absent (never empty) in decoded blobs.

/** Fields every signed blob has. */
export interface SignedBlobBase {
  /** Principal (`z6Mk…`) of the key that signed the blob. */
  readonly signer: string;
  /** 64-byte Ed25519 signature over the encoding with `sig` set to 64 zero bytes. */
  readonly sig: Uint8Array;
  /** Unix milliseconds; an integer, `0` for the home document's genesis. */
  readonly ts: number;
}

/** A document attribute value; Seed writes only these scalars. */
export type AttributeValue = string | number | boolean | null;

/** One attribute of a SetAttributes op: a key path (`["title"]`) and its new value. */
export interface AttributeEntry {
  readonly key: readonly string[];
  readonly value: AttributeValue;
}

/**
 * An annotation (bold, link, …) over ranges of a block's text. Attributes are inlined as
 * extra keys, as Seed encodes them.
 */
export interface Annotation {
  readonly type: string;
  readonly link?: string;
  /** Range starts, in Unicode code points. */
  readonly starts?: readonly number[];
  /** Range ends (exclusive), in Unicode code points. */
  readonly ends?: readonly number[];
  readonly [attribute: string]: unknown;
}

/**
 * A block's content. Seed's schema is open: besides the named fields, attributes
 * (`childrenType`, `level`, …) sit inline as extra keys, with any IPLD value.
 */
export interface Block {
  readonly id: string;
  readonly type?: string;
  readonly text?: string;
  readonly link?: string;
  readonly annotations?: readonly Annotation[];
  readonly [attribute: string]: unknown;
}

/** Sets document attributes (`block` absent) or a block's attributes. */
export interface SetAttributesOp {
  readonly type: "SetAttributes";
  readonly block?: string;
  readonly attrs?: readonly AttributeEntry[];
}

/** Replaces the whole content of one block (last writer wins per block). */
export interface ReplaceBlockOp {
  readonly type: "ReplaceBlock";
  readonly block: Block;
}

/**
 * Moves a contiguous run of blocks under `parent` (absent or `""`: the root), placed after the
 * list position `ref`: absent or empty is the start of the list; `[idx]` is an op of this same
 * change; `[ts, idx, actor]` an op of an earlier change. Consecutive blocks chain after each
 * other.
 */
export interface MoveBlocksOp {
  readonly type: "MoveBlocks";
  readonly parent?: string;
  readonly blocks: readonly string[];
  readonly ref?: readonly bigint[];
}

/** Deletes blocks (moves them to Seed's trash node). */
export interface DeleteBlocksOp {
  readonly type: "DeleteBlocks";
  readonly blocks: readonly string[];
}

/**
 * Seed's deprecated single-attribute op, equivalent to SetAttributes of `[key]`. Accepted when
 * decoding older blobs; never written.
 */
export interface SetKeyOp {
  readonly type: "SetKey";
  readonly key: string;
  readonly value: AttributeValue;
}

/** An op this daemon writes. */
export type WritableOp = SetAttributesOp | ReplaceBlockOp | MoveBlocksOp | DeleteBlocksOp;
/** An op a decoded change may hold. */
export type Op = WritableOp | SetKeyOp;

/** A change's payload. */
export interface ChangeBody {
  /** Number of logical ops (a MoveBlocks of n blocks counts n); a hint. */
  readonly opCount?: number;
  readonly ops?: readonly Op[];
}

/**
 * An atomic change to a document. A genesis change has no `genesis`, `deps` or `depth`; every
 * other change has all three (`deps` non-empty, `depth` ≥ 1).
 */
export interface Change extends SignedBlobBase {
  readonly type: "Change";
  /** CID of the document's genesis change. */
  readonly genesis?: string;
  /** CIDs of the changes this one follows. */
  readonly deps?: readonly string[];
  readonly depth?: number;
  readonly body?: ChangeBody;
}

/** Where a redirect Ref points. */
export interface RefRedirect {
  /** Target space; absent when it is the Ref's own space. */
  readonly space?: string;
  readonly path?: string;
  readonly republish?: true;
}

/**
 * A signed claim that a path of a space points at some heads of a document. `heads: []` is a
 * tombstone (or, with `redirect`, a redirect).
 */
export interface Ref extends SignedBlobBase {
  readonly type: "Ref";
  /** The space, when it is not the signer (a delegate writing to another account). */
  readonly space?: string;
  /** Document path, absent for the home document. */
  readonly path?: string;
  readonly genesisBlob: string;
  /** CID of the Capability that lets a non-owner signer write here. */
  readonly capability?: string;
  readonly heads: readonly string[];
  readonly redirect?: RefRedirect;
  readonly generation?: number;
  readonly visibility?: "Private";
}

/** Roles: Seed's `WRITER` and `AGENT`, and this daemon's `READER`. */
export type CapabilityRole = "WRITER" | "AGENT" | "READER";

/**
 * Rights granted by the signer (the space) to `delegate`. `exp` and `noRecursive` are this
 * daemon's extensions: Seed peers do not know them.
 */
export interface Capability extends SignedBlobBase {
  readonly type: "Capability";
  readonly delegate: string;
  /** Seed: the principal a short-lived authentication capability is addressed to. */
  readonly audience?: string;
  /** Path prefix the capability covers; absent for the whole space. */
  readonly path?: string;
  readonly role?: CapabilityRole;
  readonly label?: string;
  /** Expiry, Unix milliseconds. */
  readonly exp?: number;
  /** Covers `path` itself only, not the documents below it. */
  readonly noRecursive?: true;
}

/** Any blob this module encodes and decodes. */
export type Blob = Change | Ref | Capability;

/** Blob type names. */
export type BlobType = Blob["type"];

/** A blob with its exact encoding and CID. */
export interface EncodedBlob<T extends Blob = Blob> {
  /** CID string (`bafy…`): the claimed one when decoding with a claim, else blake2b-256. */
  readonly cid: string;
  /** Binary form of `cid`. */
  readonly cidBytes: Uint8Array;
  /** The canonical DAG-CBOR encoding; the bytes the CID hashes. */
  readonly bytes: Uint8Array;
  readonly blob: T;
}
