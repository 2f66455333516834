import { compareOpId, type OpId } from "./op-id.js";

/**
 * One position in a parent's child list: the record of one move op (block creation is a move).
 * A block may own several slots over time; only the one of its winning move is visible.
 */
export interface Slot {
  readonly id: OpId;
  readonly parent: string;
  readonly block: string;
  /** Next slot in list order; `null` at the end. */
  next: Slot | null;
}

/**
 * Ordered child list with RGA insert-after-ref semantics, as Seed's `rgaList`: a new slot goes
 * right after its ref, then past every following slot with a greater op id. Because every op id
 * is greater than its ref's (checked at apply time), the slots skipped are exactly those that
 * were inserted at the same ref concurrently with a greater id, or after those, so any delivery
 * order that delivers refs first yields the same list.
 *
 * A singly linked list: insertion is O(1) after the skip scan, which is empty for the common
 * append-after-a-sibling edit and only walks concurrent inserts at the same position.
 */
export class RgaList {
  /** Sentinel before the first slot. */
  readonly head: Slot;

  constructor(parent: string) {
    this.head = { id: { ts: 0, idx: 0, actor: 0n }, parent, block: "", next: null };
  }

  /**
   * Links `slot` in after `ref` (the sentinel for the start of the list).
   *
   * @param slot - the new slot; its `next` is overwritten.
   * @param ref - slot of the ref op in this list, or `undefined` for the start.
   */
  integrate(slot: Slot, ref: Slot | undefined): void {
    let left = ref ?? this.head;
    let right = left.next;
    while (right !== null && compareOpId(right.id, slot.id) > 0) {
      left = right;
      right = right.next;
    }
    slot.next = right;
    left.next = slot;
  }

  /** Slots in list order, visible or not. */
  *slots(): IterableIterator<Slot> {
    for (let s = this.head.next; s !== null; s = s.next) yield s;
  }
}
