// Input and output shapes of the document model. Input ops mirror the body ops of Seed's Change
// blob (`backend/blob/blob_change.go`) field for field, so the blob decoder maps onto them 1:1;
// output mirrors `Block`/`BlockNode` in proto/com/seed/documents/v3alpha/documents.proto.

/**
 * An op id reference as Seed writes it in `MoveBlocks.ref` (CBOR `[]uint64`): `[]` is the start
 * of the list, `[idx]` an op of the same change, `[ts, idx, actor]` any op. DAG-CBOR decodes
 * integers above 2^53 (56-bit actor ids usually are) as bigint, so both are accepted.
 */
export type OpRef = readonly (number | bigint)[];

/**
 * A block as carried by `ReplaceBlock.block`. Seed inlines the type-specific attributes in the
 * block map itself (every key other than the named ones is an attribute); old blobs spell the id
 * `iD` and nest attributes under `attributes`, and both forms are read.
 */
export interface ChangeBlock {
  /** Block id, unique in the document. */
  readonly id?: string;
  /** Legacy spelling of `id` in early blobs. */
  readonly iD?: string;
  /** Block type, e.g. `Paragraph`, `Heading`, `Image`. */
  readonly type?: string;
  /** Plain text. */
  readonly text?: string;
  /** Link to an external resource. */
  readonly link?: string;
  /** Formatting and link spans on `text`. */
  readonly annotations?: readonly ChangeAnnotation[];
  /** Legacy nested attributes; when non-empty they replace the inline ones. */
  readonly attributes?: Readonly<Record<string, unknown>>;
  /** Inline attributes. */
  readonly [attribute: string]: unknown;
}

/** An annotation as carried inside {@link ChangeBlock}; attributes inline as for blocks. */
export interface ChangeAnnotation {
  /** Annotation type, e.g. `Bold`, `Link`. */
  readonly type: string;
  /** Link target. */
  readonly link?: string;
  /** Span starts (code-point offsets). */
  readonly starts?: readonly number[];
  /** Span ends. */
  readonly ends?: readonly number[];
  /** Legacy nested attributes. */
  readonly attributes?: Readonly<Record<string, unknown>>;
  /** Inline attributes. */
  readonly [attribute: string]: unknown;
}

/** One attribute write: `key` is a path into the nested metadata object. */
export interface KeyValue {
  /** Key path, e.g. `["title"]` or `["theme", "headerLayout"]`. Never empty. */
  readonly key: readonly string[];
  /** New value; `null` removes the key (it still wins over older writes). */
  readonly value: unknown;
}

/** Sets document metadata. `block` must be empty or absent: Seed refuses block attributes too. */
export interface SetAttributesOp {
  readonly type: "SetAttributes";
  readonly block?: string;
  readonly attrs: readonly KeyValue[];
}

/** Replaces the whole state of one block (content only, never its position). */
export interface ReplaceBlockOp {
  readonly type: "ReplaceBlock";
  readonly block: ChangeBlock;
}

/**
 * Places a contiguous run of blocks under `parent` (absent or `""`: the root), the first one after
 * the list position `ref`, each next one after the previous. Creating a block is moving it.
 */
export interface MoveBlocksOp {
  readonly type: "MoveBlocks";
  readonly parent?: string;
  readonly blocks: readonly string[];
  readonly ref?: OpRef;
}

/** Deletes blocks (with their subtrees): Seed moves them under the trash node. */
export interface DeleteBlocksOp {
  readonly type: "DeleteBlocks";
  readonly blocks: readonly string[];
}

/** Deprecated single-key metadata write, still found in old Seed documents. */
export interface SetKeyOp {
  readonly type: "SetKey";
  readonly key: string;
  readonly value: unknown;
}

/** A body op of a Seed Change, in the order the change lists them. */
export type Op = SetAttributesOp | ReplaceBlockOp | MoveBlocksOp | DeleteBlocksOp | SetKeyOp;

/**
 * One verified Change blob, as the integration maps it: `id` is its CID string, `deps` the CID
 * strings of `deps` (empty for the genesis change), `ts` the blob's `ts` (integer Unix ms),
 * `actor` the signer principal (`z6Mk…`), `genesis` the CID of the genesis change (absent on the
 * genesis itself), `ops` the decoded `body.ops`.
 */
export interface ChangeInput {
  readonly id: string;
  readonly deps: readonly string[];
  readonly ts: number;
  readonly actor: string;
  readonly genesis?: string;
  readonly ops: readonly Op[];
}

/** Annotation of an output block, as `Annotation` in documents.proto. */
export interface Annotation {
  type: string;
  link: string;
  attributes: Record<string, unknown>;
  starts: number[];
  ends: number[];
}

/**
 * Output block, as `Block` in documents.proto. Strings are `""` when unset (proto3 defaults).
 * Attribute values are kept as decoded (strings, numbers, booleans, maps); the service renders
 * them for the proto's `map<string, string>`.
 */
export interface Block {
  id: string;
  type: string;
  text: string;
  link: string;
  attributes: Record<string, unknown>;
  annotations: Annotation[];
  /** CID of the change whose ReplaceBlock gave the block its content (`""` if none did). */
  revision: string;
}

/** A block with its children in order, as `BlockNode` in documents.proto. */
export interface BlockNode {
  block: Block;
  children: BlockNode[];
}

/** A materialised document. */
export interface DocumentState {
  /** Metadata nested by key path (`["a","b"]` = `{a:{b:…}}`); keys set to null are absent. */
  metadata: Record<string, unknown>;
  /** Root blocks in order. */
  content: BlockNode[];
  /** Head CIDs, sorted. */
  heads: string[];
  /** {@link version} of `heads`. */
  version: string;
  /** CID of the genesis change. */
  genesis: string;
  /** Signers of the changes, sorted. */
  authors: string[];
  /**
   * `ts` of the genesis change; for a genesis with `ts` 0 (the home document's fixed one), that
   * of the earliest other change.
   */
  createTime: number;
  /** Greatest `ts` of the changes. */
  updateTime: number;
}
