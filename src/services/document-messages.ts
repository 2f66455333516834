/**
 * Between the documents wire messages (documents.proto, access_control.proto) and the store's
 * and document model's shapes. Pure functions; every refusal is `invalid_argument` with a fixed
 * message or one that quotes caller input cut short.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ChangeAnnotation, ChangeBlock, Edit } from "../docmodel/index.js";
import type {
  DocumentState,
  Block as ModelBlock,
  BlockNode as ModelNode,
} from "../docmodel/types.js";
import {
  type Capability,
  CapabilitySchema,
  Role,
} from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  type Block,
  type BlockNode,
  BlockNodeSchema,
  BlockSchema,
  type Document,
  type DocumentChange,
  type DocumentChangeInfo,
  DocumentChangeInfoSchema,
  type DocumentListItem,
  DocumentListItemSchema,
  DocumentSchema,
  ResourceVisibility,
} from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import { parsePrincipal } from "../identity/principal.js";
import type {
  DocumentChangeEntry,
  DocumentEntry,
  StoredCapability,
  Visibility,
} from "../store/blob-store.js";
import { quoted } from "../util/text.js";

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** A required principal field (`z6Mk…`). */
export function requirePrincipal(field: string, value: string): string {
  if (value === "") throw invalid(`${field} is required`);
  try {
    parsePrincipal(value);
  } catch {
    throw invalid(`${field} must be an Ed25519 principal (z6Mk…)`);
  }
  return value;
}

/** Wire visibility of a stored one. */
export function visibilityToProto(v: Visibility): ResourceVisibility {
  return v === "private" ? ResourceVisibility.PRIVATE : ResourceVisibility.PUBLIC;
}

/** A request's visibility: unspecified leaves it to the store (public for a new document). */
export function visibilityFromProto(v: ResourceVisibility): Visibility | undefined {
  switch (v) {
    case ResourceVisibility.UNSPECIFIED:
      return undefined;
    case ResourceVisibility.PUBLIC:
      return "public";
    case ResourceVisibility.PRIVATE:
      return "private";
    default:
      throw invalid("unknown visibility");
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v === null || v === undefined) return undefined;
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));
}

/**
 * Nested attributes as the wire's `map<string, string>`: nested keys joined with `.`
 * (`{theme: {layout: "x"}}` is `theme.layout`), scalars as text, `null` left out.
 */
export function flattenAttributes(
  value: Record<string, unknown>,
  prefix = "",
  out: Record<string, string> = {},
): Record<string, string> {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix === "" ? k : `${prefix}.${k}`;
    if (isPlainObject(v)) flattenAttributes(v, key, out);
    else {
      const text = scalarText(v);
      if (text !== undefined) out[key] = text;
    }
  }
  return out;
}

function blockMessage(b: ModelBlock): Block {
  return create(BlockSchema, {
    id: b.id,
    type: b.type,
    text: b.text,
    link: b.link,
    attributes: flattenAttributes(b.attributes),
    annotations: b.annotations.map((a) => ({
      type: a.type,
      link: a.link,
      attributes: flattenAttributes(a.attributes),
      starts: a.starts,
      ends: a.ends,
    })),
    revision: b.revision,
  });
}

function nodeMessage(n: ModelNode): BlockNode {
  return create(BlockNodeSchema, {
    block: blockMessage(n.block),
    children: n.children.map(nodeMessage),
  });
}

/** The `Document` message of a readable document. */
export function documentMessage(entry: DocumentEntry, state: DocumentState): Document {
  return create(DocumentSchema, {
    account: entry.account,
    path: entry.path,
    metadata: flattenAttributes(state.metadata),
    authors: state.authors,
    content: state.content.map(nodeMessage),
    createTime: timestampFromMs(state.createTime),
    updateTime: timestampFromMs(state.updateTime),
    version: state.version,
    visibility: visibilityToProto(entry.visibility),
  });
}

/** The `DocumentListItem` of a readable document. */
export function listItemMessage(entry: DocumentEntry, state: DocumentState): DocumentListItem {
  return create(DocumentListItemSchema, {
    account: entry.account,
    path: entry.path,
    metadata: flattenAttributes(state.metadata),
    authors: state.authors,
    createTime: timestampFromMs(state.createTime),
    updateTime: timestampFromMs(state.updateTime),
    version: state.version,
    visibility: visibilityToProto(entry.visibility),
  });
}

/** One entry of `ListDocumentChanges`. */
export function changeInfoMessage(c: DocumentChangeEntry): DocumentChangeInfo {
  return create(DocumentChangeInfoSchema, {
    id: c.cid,
    author: c.signer,
    deps: [...c.deps],
    createTime: timestampFromMs(c.ts),
  });
}

const ROLE_TO_PROTO: Readonly<Record<string, Role>> = {
  WRITER: Role.WRITER,
  AGENT: Role.AGENT,
  READER: Role.READER,
};

/** A capability role of a request; unspecified or unknown is refused. */
export function roleFromProto(role: Role): "WRITER" | "AGENT" | "READER" {
  switch (role) {
    case Role.WRITER:
      return "WRITER";
    case Role.AGENT:
      return "AGENT";
    case Role.READER:
      return "READER";
    default:
      throw invalid("role must be WRITER, AGENT or READER");
  }
}

/** The `Capability` message of a stored capability. */
export function capabilityMessage(c: StoredCapability): Capability {
  return create(CapabilitySchema, {
    id: c.cid,
    issuer: c.signer,
    delegate: c.delegate,
    account: c.signer,
    path: c.path,
    role: (c.role !== undefined && ROLE_TO_PROTO[c.role]) || Role.ROLE_UNSPECIFIED,
    isExact: c.noRecursive,
    createTime: timestampFromMs(c.ts),
    label: c.label ?? "",
    ...(c.exp !== undefined && { expireTime: timestampFromMs(c.exp) }),
  });
}

/** Unix ms of a request timestamp, refusing ones outside what a blob can hold. */
export function msOf(field: string, t: Parameters<typeof timestampMs>[0]): number {
  const ms = timestampMs(t);
  if (!Number.isSafeInteger(ms) || ms <= 0) throw invalid(`${field} is out of range`);
  return ms;
}

// Keys a block (or annotation) map names itself; an attribute may not take them.
const BLOCK_FIELDS = new Set([
  "id",
  "iD",
  "type",
  "text",
  "link",
  "annotations",
  "attributes",
  "revision",
]);
const ANNOTATION_FIELDS = new Set(["type", "link", "starts", "ends", "attributes"]);

function inlineAttributes(
  attributes: Record<string, string>,
  reserved: ReadonlySet<string>,
  what: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) {
    if (k === "" || reserved.has(k)) throw invalid(`${what} attribute ${quoted(k)} is not allowed`);
    out[k] = v;
  }
  return out;
}

function changeBlock(b: Block): ChangeBlock {
  if (b.id === "") throw invalid("replace_block needs a block id");
  const annotations: ChangeAnnotation[] = b.annotations.map((a) => {
    if (a.type === "") throw invalid("an annotation needs a type");
    if (a.starts.length !== a.ends.length)
      throw invalid("an annotation needs as many starts as ends");
    return {
      ...inlineAttributes(a.attributes, ANNOTATION_FIELDS, "annotation"),
      type: a.type,
      ...(a.link !== "" && { link: a.link }),
      ...(a.starts.length > 0 && { starts: a.starts, ends: a.ends }),
    };
  });
  return {
    ...inlineAttributes(b.attributes, BLOCK_FIELDS, "block"),
    id: b.id,
    ...(b.type !== "" && { type: b.type }),
    ...(b.text !== "" && { text: b.text }),
    ...(b.link !== "" && { link: b.link }),
    ...(annotations.length > 0 && { annotations }),
  };
}

/**
 * The request's changes as document-model edits. A metadata key is a `.`-separated path, the
 * way documents show their metadata (`theme.layout`).
 */
export function editsFromProto(changes: readonly DocumentChange[]): Edit[] {
  if (changes.length === 0) throw invalid("changes must not be empty");
  return changes.map((c): Edit => {
    switch (c.op.case) {
      case "setMetadata": {
        const key = c.op.value.key.split(".");
        if (key.some((k) => k === "")) throw invalid("set_metadata needs a key with no empty part");
        return { type: "setMetadata", key, value: c.op.value.value };
      }
      case "moveBlock": {
        const m = c.op.value;
        if (m.blockId === "") throw invalid("move_block needs a block id");
        return {
          type: "moveBlock",
          block: m.blockId,
          parent: m.parent,
          leftSibling: m.leftSibling,
        };
      }
      case "replaceBlock":
        return { type: "replaceBlock", block: changeBlock(c.op.value) };
      case "deleteBlock":
        if (c.op.value === "") throw invalid("delete_block needs a block id");
        return { type: "deleteBlock", block: c.op.value };
      default:
        throw invalid("a change needs one op");
    }
  });
}
