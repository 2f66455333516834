import { type BlockContent, blockContentOf, blockIdOf, emptyBlock } from "./blocks.js";
import { reachable, version } from "./dag.js";
import { DocModelError } from "./errors.js";
import { actorIdOf, compareOpId, decodeRef, MAX_IDX, MAX_TS, type OpId, opKey } from "./op-id.js";
import { RgaList, type Slot } from "./rga-list.js";
import type { Block, BlockNode, ChangeInput, DocumentState, KeyValue, Op } from "./types.js";

/** Seed's trash node: deleting a block moves it here, out of reach of the root. */
export const TRASH = "◊";

/** Where a block currently sits: its parent and the op id of its visible list slot. */
export interface BlockPosition {
  readonly parent: string;
  readonly slot: OpId;
}

type Action =
  | {
      readonly kind: "meta";
      readonly id: OpId;
      readonly key: readonly string[];
      readonly value: unknown;
    }
  | { readonly kind: "block"; readonly id: OpId; readonly content: BlockContent }
  | {
      readonly kind: "move";
      readonly id: OpId;
      readonly parent: string;
      readonly block: string;
      readonly ref: OpId | undefined;
    };

interface Register<T> {
  readonly id: OpId;
  readonly value: T;
  readonly change: string;
}

interface MetaWrite {
  readonly key: readonly string[];
  readonly value: unknown;
}

interface TrieNode {
  written: boolean;
  below: boolean;
  readonly children: Map<string, TrieNode>;
}

function invalid(message: string): never {
  throw new DocModelError("invalid_change", message);
}

function isBlockId(v: unknown): v is string {
  return typeof v === "string" && v !== "" && v !== TRASH;
}

/**
 * The CRDT state of one document, Seed's `docCRDT`: changes are applied one at a time (each after
 * its deps) and {@link DocState.render} derives the document. Every rule is independent of the
 * order in which concurrent changes are applied:
 *
 * - op ids are `(ts, idx, actor)`; `idx` follows Seed's numbering (each op takes the next index,
 *   and the i-th item of a multi-item op adds i more), so refs in Seed's blobs resolve;
 * - a move (creation included) inserts a slot in the parent's {@link RgaList}; a block's position
 *   is its move with the highest op id, skipping, in op id order, moves onto itself or its own
 *   descendants (they would make a cycle); deletion is a move to {@link TRASH}, so a subtree goes
 *   with its root and a later move brings it back;
 * - block content is last-writer-wins by op id;
 * - a metadata write survives unless a write with a higher op id touches the same key, an
 *   ancestor or a descendant key (Seed's `setMetadata` applied in op id order).
 *
 * Costs, for C changes, O ops, M moves, B blocks: apply is O(ops + skipped concurrent slots);
 * render is O(M log M + M·depth + B) and is cached until the next apply.
 */
export class DocState {
  readonly #changes = new Map<string, ChangeInput>();
  readonly #heads = new Set<string>();
  readonly #stamps = new Set<string>();
  readonly #actors = new Map<string, bigint>();
  readonly #blocks = new Map<string, Register<BlockContent>>();
  readonly #metadata = new Map<string, Register<MetaWrite>>();
  readonly #lists = new Map<string, RgaList>();
  readonly #slots = new Map<string, Slot>();
  readonly #moves: Slot[] = [];
  #movesSorted = true;
  #genesis: string | undefined;
  #maxTs = 0;
  #positions: Map<string, Slot> | undefined;
  #rendered: DocumentState | undefined;

  /**
   * Builds the state of a change set, applied in a deterministic causal order: by `ts`, then CID
   * string (`ts` grows strictly along deps, so this is a topological order).
   *
   * @param changes - every change of the document (or more: see `heads`).
   * @param heads - when given and non-empty, only the changes reachable from these heads count:
   *   the document as of that version (empty, like Seed's empty version, means the latest).
   * @throws DocModelError on a missing dep, an unknown head, or a change breaking Seed's rules.
   */
  static from(changes: Iterable<ChangeInput>, heads?: readonly string[]): DocState {
    const byId = new Map<string, ChangeInput>();
    for (const c of changes) if (!byId.has(c.id)) byId.set(c.id, c);
    const chosen =
      heads === undefined || heads.length === 0 ? [...byId.values()] : reachable(byId, heads);
    for (const c of chosen) {
      for (const d of c.deps) {
        const dep = byId.get(d);
        if (dep === undefined)
          throw new DocModelError("missing_dependency", `change ${c.id} needs missing change ${d}`);
        if (!(dep.ts < c.ts)) invalid(`change ${c.id} is not later than its dep ${d}`);
      }
    }
    chosen.sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const state = new DocState();
    for (const c of chosen) state.apply(c);
    return state;
  }

  /** Number of applied changes. */
  get size(): number {
    return this.#changes.size;
  }

  /** Greatest `ts` applied: a new change must be stamped later than this. */
  get maxTs(): number {
    return this.#maxTs;
  }

  /** Whether the change with this CID is applied. */
  has(id: string): boolean {
    return this.#changes.has(id);
  }

  /** The applied changes, in application order. */
  changes(): IterableIterator<ChangeInput> {
    return this.#changes.values();
  }

  /** Head CIDs, sorted. */
  heads(): string[] {
    return [...this.#heads].sort();
  }

  /** Current version string. */
  version(): string {
    return version([...this.#heads]);
  }

  /**
   * Applies one change (incremental update). Validation happens before any mutation, so a
   * refused change leaves the state as it was. Applying a change twice is a no-op.
   *
   * @returns false if the change was already applied.
   * @throws DocModelError `missing_dependency` if a dep (or the op a ref names) is not applied
   *   yet, `invalid_change` if the change breaks Seed's rules.
   */
  apply(change: ChangeInput): boolean {
    if (typeof change.id !== "string" || change.id === "") invalid("change without id");
    if (this.#changes.has(change.id)) return false;
    const { id, ts } = change;
    if (!Number.isSafeInteger(ts) || ts < 0 || ts >= MAX_TS) invalid(`change ${id}: bad ts`);
    if (!Array.isArray(change.deps) || !Array.isArray(change.ops))
      invalid(`change ${id}: bad shape`);
    const deps = [...new Set(change.deps)];
    for (const d of deps) {
      const dep = this.#changes.get(d);
      if (dep === undefined)
        throw new DocModelError("missing_dependency", `change ${id} needs missing change ${d}`);
      if (!(dep.ts < ts)) invalid(`change ${id} is not later than its dep ${d}`);
    }
    if (deps.length === 0) {
      if (this.#genesis !== undefined) invalid(`change ${id}: a second genesis change`);
      if (change.genesis !== undefined && change.genesis !== "")
        invalid(`change ${id}: genesis change names a genesis`);
    } else if (change.genesis !== this.#genesis) {
      invalid(`change ${id}: wrong genesis`);
    }
    if (typeof change.actor !== "string") invalid(`change ${id}: bad actor`);
    let actor = this.#actors.get(change.actor);
    if (actor === undefined) {
      actor = actorIdOf(change.actor);
      this.#actors.set(change.actor, actor);
    }
    const stamp = `${actor}:${ts}`;
    if (this.#stamps.has(stamp)) invalid(`change ${id}: same signer and ts as another change`);

    const actions = this.#prepare(id, change.ops, ts, actor);

    this.#changes.set(id, change);
    this.#stamps.add(stamp);
    if (deps.length === 0) this.#genesis = id;
    for (const d of deps) this.#heads.delete(d);
    this.#heads.add(id);
    this.#maxTs = Math.max(this.#maxTs, ts);
    for (const a of actions) this.#commit(id, a);
    this.#positions = undefined;
    this.#rendered = undefined;
    return true;
  }

  // Turns ops into actions with Seed's op numbering, checking every ref against the state plus
  // the moves earlier in this change.
  #prepare(change: string, ops: readonly Op[], ts: number, actor: bigint): Action[] {
    const out: Action[] = [];
    const local = new Map<string, string>(); // op key -> parent, for moves of this change
    const self: OpId = { ts, idx: 0, actor };
    const opId = (idx: number): OpId => {
      if (idx > MAX_IDX) invalid(`change ${change}: op index overflows`);
      return { ts, idx, actor };
    };
    const move = (id: OpId, parent: string, block: unknown, ref: OpId | undefined) => {
      if (!isBlockId(block)) invalid(`change ${change}: bad block id in a move`);
      if (ref !== undefined) {
        if (compareOpId(ref, id) >= 0) invalid(`change ${change}: a move refers to a later op`);
        const key = opKey(ref);
        const refParent = local.get(key) ?? this.#slots.get(key)?.parent;
        if (refParent === undefined)
          throw new DocModelError("missing_dependency", `change ${change}: ref op not found`);
        if (refParent !== parent) invalid(`change ${change}: ref op is under another parent`);
      }
      local.set(opKey(id), parent);
      out.push({ kind: "move", id, parent, block, ref });
    };
    const meta = (id: OpId, kv: KeyValue) => {
      const key = kv?.key;
      if (!Array.isArray(key) || key.length === 0 || !key.every((k) => typeof k === "string"))
        invalid(`change ${change}: bad attribute key`);
      out.push({ kind: "meta", id, key: [...key], value: kv.value ?? null });
    };

    let idx = -1;
    for (const op of ops) {
      idx++;
      switch (op?.type) {
        case "SetKey":
          if (typeof op.key !== "string") invalid(`change ${change}: bad SetKey key`);
          meta(opId(idx), { key: [op.key], value: op.value });
          break;
        case "SetAttributes": {
          if (op.block !== undefined && op.block !== "")
            invalid(`change ${change}: SetAttributes on a block is not supported`);
          if (!Array.isArray(op.attrs)) invalid(`change ${change}: bad attrs`);
          op.attrs.forEach((kv, i) => {
            idx += i;
            meta(opId(idx), kv);
          });
          break;
        }
        case "ReplaceBlock": {
          const content = blockContentOf(op.block);
          if (!isBlockId(blockIdOf(op.block))) invalid(`change ${change}: bad block id`);
          out.push({ kind: "block", id: opId(idx), content });
          break;
        }
        case "MoveBlocks": {
          const parent = op.parent ?? "";
          if (typeof parent !== "string") invalid(`change ${change}: bad parent`);
          if (!Array.isArray(op.blocks) || op.blocks.length === 0)
            invalid(`change ${change}: move without blocks`);
          let ref = decodeRef(op.ref, self);
          op.blocks.forEach((block, i) => {
            idx += i;
            const id = opId(idx);
            move(id, parent, block, ref);
            ref = id;
          });
          break;
        }
        case "DeleteBlocks":
          if (!Array.isArray(op.blocks)) invalid(`change ${change}: bad blocks`);
          op.blocks.forEach((block, i) => {
            idx += i;
            move(opId(idx), TRASH, block, undefined);
          });
          break;
        default:
          invalid(`change ${change}: unsupported op`);
      }
    }
    return out;
  }

  #commit(change: string, a: Action): void {
    switch (a.kind) {
      case "meta": {
        const k = JSON.stringify(a.key);
        const cur = this.#metadata.get(k);
        if (cur === undefined || compareOpId(a.id, cur.id) > 0)
          this.#metadata.set(k, { id: a.id, value: { key: a.key, value: a.value }, change });
        break;
      }
      case "block": {
        const cur = this.#blocks.get(a.content.id);
        if (cur === undefined || compareOpId(a.id, cur.id) > 0)
          this.#blocks.set(a.content.id, { id: a.id, value: a.content, change });
        break;
      }
      case "move": {
        let list = this.#lists.get(a.parent);
        if (list === undefined) {
          list = new RgaList(a.parent);
          this.#lists.set(a.parent, list);
        }
        const slot: Slot = { id: a.id, parent: a.parent, block: a.block, next: null };
        list.integrate(slot, a.ref === undefined ? undefined : this.#slots.get(opKey(a.ref)));
        this.#slots.set(opKey(a.id), slot);
        const last = this.#moves[this.#moves.length - 1];
        if (last !== undefined && compareOpId(last.id, a.id) > 0) this.#movesSorted = false;
        this.#moves.push(slot);
        break;
      }
    }
  }

  // Replays the move log in op id order (Seed's treeOpSet.State): the last valid move of each
  // block is its position; a move onto itself or under its own descendant is skipped.
  #visible(): Map<string, Slot> {
    if (this.#positions !== undefined) return this.#positions;
    if (!this.#movesSorted) {
      this.#moves.sort((a, b) => compareOpId(a.id, b.id));
      this.#movesSorted = true;
    }
    const pos = new Map<string, Slot>();
    const isAncestor = (a: string, b: string): boolean => {
      let n = pos.get(b);
      for (let steps = pos.size; n !== undefined && steps >= 0; steps--) {
        if (n.parent === "" || n.parent === TRASH) return false;
        if (n.parent === a) return true;
        n = pos.get(n.parent);
      }
      return false;
    };
    for (const m of this.#moves) {
      if (m.block === m.parent || isAncestor(m.block, m.parent)) continue;
      pos.set(m.block, m);
    }
    this.#positions = pos;
    return pos;
  }

  /**
   * Where a block sits now, or `undefined` if it was never placed. A deleted block sits under
   * {@link TRASH}. The slot op id is what a MoveBlocks `ref` names to insert after the block.
   */
  position(block: string): BlockPosition | undefined {
    const s = this.#visible().get(block);
    return s === undefined ? undefined : { parent: s.parent, slot: s.id };
  }

  /** Whether `block` is reachable from the root (placed, and neither it nor an ancestor deleted). */
  isAttached(block: string): boolean {
    const pos = this.#visible();
    let n = pos.get(block);
    for (let steps = pos.size; n !== undefined && steps >= 0; steps--) {
      if (n.parent === "") return true;
      if (n.parent === TRASH) return false;
      n = pos.get(n.parent);
    }
    return false;
  }

  /** The visible children of `parent` (`""` for the root), in order. */
  children(parent: string): string[] {
    const pos = this.#visible();
    const out: string[] = [];
    for (const s of this.#lists.get(parent)?.slots() ?? [])
      if (pos.get(s.block) === s) out.push(s.block);
    return out;
  }

  /** The current content of a block, placed or not, or `undefined` if it has none. */
  block(id: string): Block | undefined {
    const reg = this.#blocks.get(id);
    return reg === undefined ? undefined : this.#blockView(id);
  }

  #blockView(id: string): Block {
    const reg = this.#blocks.get(id);
    if (reg === undefined) return emptyBlock(id);
    const c = reg.value;
    return {
      id: c.id,
      type: c.type,
      text: c.text,
      link: c.link,
      attributes: { ...c.attributes },
      annotations: c.annotations.map((a) => ({
        ...a,
        attributes: { ...a.attributes },
        starts: [...a.starts],
        ends: [...a.ends],
      })),
      revision: reg.change,
    };
  }

  #metadataView(): Record<string, unknown> {
    // Highest op id first: a write survives if no higher write sits on its key, above it or
    // below it. Writes of null survive as removals and are left out of the output.
    const writes = [...this.#metadata.values()].sort((a, b) => compareOpId(b.id, a.id));
    const root: TrieNode = { written: false, below: false, children: new Map() };
    const survivors: Register<MetaWrite>[] = [];
    for (const w of writes) {
      let node = root;
      let shadowed = false;
      const path: TrieNode[] = [];
      for (const seg of w.value.key) {
        if (node.written) shadowed = true;
        path.push(node);
        let next = node.children.get(seg);
        if (next === undefined) {
          next = { written: false, below: false, children: new Map() };
          node.children.set(seg, next);
        }
        node = next;
      }
      if (node.written || node.below) shadowed = true;
      node.written = true;
      for (const p of path) p.below = true;
      if (!shadowed && w.value.value !== null && w.value.value !== undefined) survivors.push(w);
    }
    survivors.reverse();
    const out: Record<string, unknown> = {};
    for (const w of survivors) {
      let obj = out;
      const key = w.value.key;
      for (let i = 0; i < key.length - 1; i++) {
        const seg = key[i] as string;
        let child = obj[seg];
        if (typeof child !== "object" || child === null || Array.isArray(child)) {
          child = {};
          obj[seg] = child;
        }
        obj = child as Record<string, unknown>;
      }
      obj[key[key.length - 1] as string] = w.value.value;
    }
    return out;
  }

  /**
   * The document. The result is cached until the next {@link DocState.apply}: treat it as
   * read-only.
   *
   * @throws DocModelError `invalid_change` if no change was applied.
   */
  render(): DocumentState {
    if (this.#rendered !== undefined) return this.#rendered;
    const genesis = this.#genesis;
    if (genesis === undefined) invalid("document without changes");
    const pos = this.#visible();
    const content: BlockNode[] = [];
    // Iterative depth-first walk: a hostile document may nest blocks deeper than the JS stack.
    const stack: { cur: Slot | null; out: BlockNode[] }[] = [
      { cur: this.#lists.get("")?.head.next ?? null, out: content },
    ];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as { cur: Slot | null; out: BlockNode[] };
      const s = frame.cur;
      if (s === null) {
        stack.pop();
        continue;
      }
      frame.cur = s.next;
      if (pos.get(s.block) !== s) continue;
      const node: BlockNode = { block: this.#blockView(s.block), children: [] };
      frame.out.push(node);
      stack.push({ cur: this.#lists.get(s.block)?.head.next ?? null, out: node.children });
    }
    const heads = this.heads();
    // The home document's genesis is Seed's fixed one with ts 0: its creation is then the time
    // of its first real change.
    let createTime = (this.#changes.get(genesis) as ChangeInput).ts;
    if (createTime === 0) {
      let first = Number.POSITIVE_INFINITY;
      for (const c of this.#changes.values()) if (c.ts > 0 && c.ts < first) first = c.ts;
      if (Number.isFinite(first)) createTime = first;
    }
    this.#rendered = {
      metadata: this.#metadataView(),
      content,
      heads,
      version: heads.join("."),
      genesis,
      authors: [...new Set([...this.#changes.values()].map((c) => c.actor))].sort(),
      createTime,
      updateTime: this.#maxTs,
    };
    return this.#rendered;
  }

  /**
   * The state as of an older (or concurrent) version: only the changes reachable from `heads`.
   * Returns this state when `heads` is the current version.
   *
   * @throws DocModelError `unknown_head` if a head is not applied here.
   */
  at(heads: readonly string[]): DocState {
    if (heads.length === 0 || version(heads) === this.version()) return this;
    return DocState.from(reachable(this.#changes, heads));
  }
}

/**
 * The document made of `changes`, or of the changes reachable from `heads` when given
 * (GetDocument at an older version).
 */
export function materialize(
  changes: Iterable<ChangeInput>,
  heads?: readonly string[],
): DocumentState {
  return DocState.from(changes, heads).render();
}
