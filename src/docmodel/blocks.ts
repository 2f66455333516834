import { DocModelError } from "./errors.js";
import type { Annotation, Block, ChangeAnnotation, ChangeBlock } from "./types.js";

/** A block's content without its revision, as stored in the block register. */
export type BlockContent = Omit<Block, "revision">;

const BLOCK_FIELDS = new Set(["id", "iD", "type", "text", "link", "annotations", "attributes"]);
const ANNOTATION_FIELDS = new Set(["type", "link", "starts", "ends", "attributes"]);

function invalid(what: string): never {
  throw new DocModelError("invalid_change", `ReplaceBlock: ${what}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optString(v: unknown, what: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") invalid(`${what} is not a string`);
  return v;
}

function ints(v: unknown, what: string): number[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid(`${what} is not a list`);
  return v.map((n) => {
    if (typeof n !== "number" || !Number.isInteger(n)) invalid(`${what} holds a non-integer`);
    return n;
  });
}

// Seed reads legacy nested `attributes` when non-empty, the inline remainder otherwise.
function attributesOf(
  m: Record<string, unknown>,
  named: ReadonlySet<string>,
): Record<string, unknown> {
  const legacy = m.attributes;
  if (legacy !== undefined && legacy !== null && !isRecord(legacy))
    invalid("attributes is not a map");
  if (legacy !== undefined && legacy !== null && Object.keys(legacy).length > 0)
    return { ...legacy };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (!named.has(k)) out[k] = v;
  return out;
}

function annotationOf(a: ChangeAnnotation): Annotation {
  if (!isRecord(a)) invalid("annotation is not a map");
  return {
    type: optString(a.type, "annotation type"),
    link: optString(a.link, "annotation link"),
    attributes: attributesOf(a, ANNOTATION_FIELDS),
    starts: ints(a.starts, "annotation starts"),
    ends: ints(a.ends, "annotation ends"),
  };
}

/** The id of a ReplaceBlock block, honouring Seed's legacy `iD` spelling (`""` if none). */
export function blockIdOf(b: ChangeBlock): string {
  if (!isRecord(b)) invalid("block is not a map");
  const id = optString(b.id, "id");
  return id !== "" ? id : optString(b.iD, "iD");
}

/** Normalises a ReplaceBlock block into the output shape (`""`/`{}`/`[]` for absent fields). */
export function blockContentOf(b: ChangeBlock): BlockContent {
  const annotations = b.annotations;
  if (annotations !== undefined && annotations !== null && !Array.isArray(annotations))
    invalid("annotations is not a list");
  return {
    id: blockIdOf(b),
    type: optString(b.type, "type"),
    text: optString(b.text, "text"),
    link: optString(b.link, "link"),
    attributes: attributesOf(b, BLOCK_FIELDS),
    annotations: (annotations ?? []).map(annotationOf),
  };
}

/** Output of a block that was placed in the tree but never given content (as Seed: id only). */
export function emptyBlock(id: string): Block {
  return { id, type: "", text: "", link: "", attributes: {}, annotations: [], revision: "" };
}
