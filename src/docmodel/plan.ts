import { quoted } from "../util/text.js";
import type { DocState } from "./doc-state.js";
import { TRASH } from "./doc-state.js";
import { DocModelError } from "./errors.js";
import { encodeRef, type OpId } from "./op-id.js";
import type { ChangeBlock, Op, OpRef } from "./types.js";

/**
 * One logical edit, as `DocumentChange` in documents.proto: edits apply in order, each seeing
 * the effect of the previous ones.
 */
export type Edit =
  /** Sets (or with `value: null` removes) a metadata key path. */
  | { readonly type: "setMetadata"; readonly key: readonly string[]; readonly value: unknown }
  /** Creates or moves `block` under `parent` (`""`: root) right after `leftSibling` (`""`: first). */
  | {
      readonly type: "moveBlock";
      readonly block: string;
      readonly parent: string;
      readonly leftSibling: string;
    }
  /** Replaces the content of a block (its `id` names it). */
  | { readonly type: "replaceBlock"; readonly block: ChangeBlock }
  /** Deletes a block and its subtree. */
  | { readonly type: "deleteBlock"; readonly block: string };

function refused(message: string): never {
  throw new DocModelError("invalid_change", message);
}

/**
 * Turns logical edits into the body ops of a new Change made on top of `state` (undefined for a
 * new document). Every op carries one logical item, so op `k` gets index `k` and a move after a
 * block moved earlier in the same change names it as `[k]`, as Seed does. Moves that change
 * nothing and deletes of blocks that are absent or already deleted produce no op.
 *
 * The change must then be stamped with a `ts` greater than `state.maxTs` and applied with
 * `DocState.apply`, which re-checks it.
 *
 * @throws DocModelError `invalid_change` for a move under a missing parent, after a left sibling
 *   that is not a child of that parent, or onto the block itself or one of its descendants.
 */
export function planOps(state: DocState | undefined, edits: readonly Edit[]): Op[] {
  const ops: Op[] = [];
  const parentOf = new Map<string, string>();
  const slotOf = new Map<string, OpRef>();
  const kids = new Map<string, string[]>();
  const created = new Set<string>();

  const parent = (b: string) => parentOf.get(b) ?? state?.position(b)?.parent;
  const children = (p: string): string[] => {
    let list = kids.get(p);
    if (list === undefined) {
      list = state?.children(p) ?? [];
      kids.set(p, list);
    }
    return list;
  };
  const refOf = (b: string): OpRef => {
    const local = slotOf.get(b);
    if (local !== undefined) return local;
    return encodeRef(state?.position(b)?.slot as OpId);
  };
  const exists = (b: string) =>
    parent(b) !== undefined || created.has(b) || state?.block(b) !== undefined;
  const isAncestor = (a: string, b: string): boolean => {
    for (let p = parent(b), steps = 0; p !== undefined && steps < 1_000_000; steps++) {
      if (p === "" || p === TRASH) return false;
      if (p === a) return true;
      p = parent(p);
    }
    return false;
  };
  const place = (block: string, to: string, index: number) => {
    const from = parent(block);
    if (from !== undefined) {
      const list = children(from);
      const i = list.indexOf(block);
      if (i >= 0) list.splice(i, 1);
    }
    if (to !== TRASH) children(to).splice(index, 0, block);
    parentOf.set(block, to);
    slotOf.set(block, [ops.length]);
  };

  for (const e of edits) {
    switch (e.type) {
      case "setMetadata":
        ops.push({ type: "SetAttributes", attrs: [{ key: [...e.key], value: e.value ?? null }] });
        break;
      case "replaceBlock": {
        const id = e.block.id;
        if (typeof id !== "string" || id === "" || id === TRASH) refused("block without id");
        created.add(id);
        ops.push({ type: "ReplaceBlock", block: e.block });
        break;
      }
      case "deleteBlock": {
        const p = parent(e.block);
        if (p === undefined || p === TRASH) break;
        place(e.block, TRASH, 0);
        ops.push({ type: "DeleteBlocks", blocks: [e.block] });
        break;
      }
      case "moveBlock": {
        const { block, parent: to, leftSibling: left } = e;
        if (block === "" || block === TRASH) refused("move without a block id");
        if (to === TRASH) refused("use deleteBlock to delete a block");
        if (to !== "" && !exists(to)) refused(`parent block ${quoted(to)} not found`);
        if (block === to || isAncestor(block, to))
          refused(`moving ${quoted(block)} under ${quoted(to)} makes a cycle`);
        if (block === left) refused("a block cannot be its own left sibling");
        const list = children(to);
        const leftIndex = left === "" ? -1 : list.indexOf(left);
        if (left !== "" && leftIndex < 0)
          refused(
            `left sibling ${quoted(left)} is not a child of ${to === "" ? "the root" : quoted(to)}`,
          );
        const here = list.indexOf(block);
        if (here >= 0 && here === leftIndex + 1) break;
        const ref = left === "" ? [] : refOf(left);
        const index = here >= 0 && here < leftIndex ? leftIndex : leftIndex + 1;
        place(block, to, index);
        ops.push({
          type: "MoveBlocks",
          blocks: [block],
          ...(to !== "" ? { parent: to } : {}),
          ...(ref.length > 0 ? { ref } : {}),
        });
        break;
      }
      default:
        refused("unsupported edit");
    }
  }
  return ops;
}
