import { DocModelError } from "./errors.js";

/** The minimal DAG view of a change: its CID and its deps' CIDs. */
export interface DagNode {
  readonly id: string;
  readonly deps: readonly string[];
}

/**
 * Seed's document version: the head CIDs sorted as strings and joined with `.` (`""` for none).
 * CID strings are ASCII, so JavaScript's default sort is Go's byte-wise `sort.Strings`.
 */
export function version(heads: readonly string[]): string {
  return [...new Set(heads)].sort().join(".");
}

/** Splits a {@link version} back into head CIDs (`""` is no heads). */
export function parseVersion(v: string): string[] {
  return v === "" ? [] : v.split(".");
}

/** Heads of a change set: the changes no other change in the set depends on, sorted. */
export function heads(changes: Iterable<DagNode>): string[] {
  const ids = new Set<string>();
  const depended = new Set<string>();
  for (const c of changes) {
    ids.add(c.id);
    for (const d of c.deps) depended.add(d);
  }
  return [...ids].filter((id) => !depended.has(id)).sort();
}

/**
 * The changes reachable from `from` through deps (the heads included): the document as of that
 * version. O(changes + edges).
 *
 * @throws DocModelError `unknown_head` if a head is not in `changes`, `missing_dependency` if a
 *   reachable change names a dep that is not.
 */
export function reachable<T extends DagNode>(
  changes: ReadonlyMap<string, T>,
  from: readonly string[],
): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  const stack: string[] = [];
  for (const h of from) {
    if (!changes.has(h)) throw new DocModelError("unknown_head", `version head ${h} not found`);
    stack.push(h);
  }
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (seen.has(id)) continue;
    seen.add(id);
    const c = changes.get(id);
    if (c === undefined) throw new DocModelError("missing_dependency", `missing change ${id}`);
    out.push(c);
    for (const d of c.deps) if (!seen.has(d)) stack.push(d);
  }
  return out;
}
