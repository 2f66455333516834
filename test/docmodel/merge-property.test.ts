import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type BlockNode,
  type ChangeInput,
  DocModelError,
  DocState,
  type Edit,
  materialize,
  type Op,
  planOps,
  reachable,
  TRASH,
} from "../../src/docmodel/index.js";
import { change, principal, prng } from "./helpers.js";

const ACTORS = [principal(1), principal(2), principal(3)];
const KEYS = [["title"], ["m"], ["m", "a"], ["m", "b"], ["m", "a", "x"]];

function allBlocks(s: DocState): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const c of s.children(p)) {
      out.push(c);
      walk(c);
    }
  };
  walk("");
  return out;
}

// A random DAG of changes, each written by an honest writer against the state at its deps, so
// branches are concurrent and conflict (same blocks moved, deleted, replaced; cycles across
// branches; same metadata keys).
function randomHistory(seed: number): ChangeInput[] {
  const r = prng(seed);
  const g = change(
    ACTORS[0] as string,
    1000,
    [],
    [
      { type: "MoveBlocks", blocks: ["b0", "b1", "b2", "b3"] },
      { type: "ReplaceBlock", block: { id: "b0", type: "Paragraph", text: "zero" } },
    ],
  );
  const changes: ChangeInput[] = [g];
  const stamps = new Set<string>();
  let fresh = 0;
  const n = 4 + r.int(9);
  for (let k = 0; k < n; k++) {
    const deps = [...new Set([r.pick(changes), r.pick(changes.slice(-3))])];
    const actor = r.pick(ACTORS);
    let ts = Math.max(...deps.map((d) => d.ts)) + 1 + r.int(2);
    while (stamps.has(`${actor}:${ts}`)) ts++;
    stamps.add(`${actor}:${ts}`);
    const base = DocState.from(
      changes,
      deps.map((d) => d.id),
    );
    const placed = allBlocks(base);
    let ops: Op[];
    let last: Edit | undefined;
    if (r.int(6) === 0) {
      // Raw multi-block ops: Seed's quadratic numbering and a [idx] self-ref to the third block.
      const [x, y, z, w] = [1, 2, 3, 4].map(() => `n${seed}_${fresh++}`) as string[];
      ops = [
        { type: "MoveBlocks", blocks: [x, y, z] as string[] },
        { type: "ReplaceBlock", block: { id: z as string, text: "z" } },
        { type: "MoveBlocks", blocks: [w as string], ref: [3] },
      ];
      if (placed.length >= 2) ops.push({ type: "DeleteBlocks", blocks: placed.slice(0, 2) });
    } else {
      const edits: Edit[] = [];
      for (let e = 0, want = 1 + r.int(4); e < want; e++) {
        const kind = r.int(5);
        const parent = r.int(3) === 0 || placed.length === 0 ? "" : r.pick(placed);
        const siblings = base.children(parent);
        // Few distinct positions, so concurrent branches often insert at the same one.
        const left = siblings.length === 0 || r.int(3) === 0 ? "" : (siblings[r.int(2)] ?? "");
        let edit: Edit;
        if (kind === 0 || placed.length === 0) {
          edit = { type: "moveBlock", block: `n${seed}_${fresh++}`, parent, leftSibling: left };
        } else if (kind === 1) {
          edit = { type: "moveBlock", block: r.pick(placed), parent, leftSibling: left };
        } else if (kind === 2) {
          edit = { type: "deleteBlock", block: r.pick(placed) };
        } else if (kind === 3) {
          edit = { type: "replaceBlock", block: { id: r.pick(placed), text: `t${r.int(100)}` } };
        } else {
          const value = r.int(4) === 0 ? null : r.int(100);
          edit = { type: "setMetadata", key: r.pick(KEYS), value };
        }
        try {
          planOps(base, [...edits, edit]);
          edits.push(edit);
        } catch (err) {
          if (!(err instanceof DocModelError)) throw err;
        }
      }
      ops = planOps(base, edits);
      last = edits[edits.length - 1];
    }
    const c = change(actor, ts, deps, ops);
    base.apply(c); // an honest writer's change applies on top of its own base
    if (last?.type === "moveBlock") {
      // Insert-after-ref: on the writer's own state the block lands right after its left sibling.
      const kids = base.children(last.parent);
      assert.equal(kids[kids.indexOf(last.leftSibling) + 1], last.block, `seed ${seed}: placement`);
    }
    changes.push(c);
  }
  return changes;
}

// Delivers changes in the given order, holding back those whose deps have not arrived, as a
// syncing daemon would.
function deliver(order: readonly ChangeInput[]): DocState {
  const s = new DocState();
  let pending = [...order];
  let progress = true;
  while (pending.length > 0 && progress) {
    progress = false;
    const later: ChangeInput[] = [];
    for (const c of pending) {
      try {
        s.apply(c);
        progress = true;
      } catch (err) {
        if (!(err instanceof DocModelError) || err.reason !== "missing_dependency") throw err;
        later.push(c);
      }
    }
    pending = later;
  }
  assert.equal(pending.length, 0);
  return s;
}

// Every block ever placed either shows in the document or sits under a deleted block: a move
// that would make a cycle must not take a subtree out of the document.
function assertNothingLost(changes: readonly ChangeInput[], s: DocState, seed: number): void {
  const shown = new Set(ids(s.render().content));
  for (const c of changes)
    for (const op of c.ops) {
      if (op.type !== "MoveBlocks") continue;
      for (const b of op.blocks) {
        let at: string | undefined = b;
        for (let steps = 0; at !== undefined && at !== "" && at !== TRASH; steps++) {
          assert.ok(steps < 10_000, `seed ${seed}: ${b} is in a cycle`);
          at = s.position(at)?.parent;
        }
        assert.ok(at !== undefined, `seed ${seed}: ${b} has no position`);
        assert.equal(shown.has(b), at === "", `seed ${seed}: ${b} shown iff attached`);
        assert.equal(s.isAttached(b), at === "");
      }
    }
}

function ids(nodes: readonly BlockNode[], out: string[] = []): string[] {
  for (const n of nodes) {
    out.push(n.block.id);
    ids(n.children, out);
  }
  return out;
}

test("every arrival order of concurrent changes yields the same document", () => {
  let concurrent = 0;
  for (let seed = 1; seed <= 80; seed++) {
    const changes = randomHistory(seed);
    const r = prng(seed * 7919);
    const expected = materialize(changes);
    if (expected.heads.length > 1) concurrent++;
    assertNothingLost(changes, DocState.from(changes), seed);
    const seen = ids(expected.content);
    assert.equal(new Set(seen).size, seen.length, `seed ${seed}: a block shows twice`);
    for (let round = 0; round < 6; round++) {
      const order = r.shuffle(changes);
      assert.deepEqual(materialize(order), expected, `seed ${seed}: batch order`);
      assert.deepEqual(deliver(order).render(), expected, `seed ${seed}: incremental order`);
    }
    // State at an older version: the changes reachable from one change, delivered incrementally.
    const target = r.pick(changes);
    const past = reachable(new Map(changes.map((c) => [c.id, c])), [target.id]);
    const older = materialize(changes, [target.id]);
    assert.deepEqual(deliver(r.shuffle(past)).render(), older, `seed ${seed}: older version`);
    assert.deepEqual(DocState.from(changes).at([target.id]).render(), older);
    assert.deepEqual(older.heads, [target.id]);
  }
  assert.ok(concurrent > 10, "the generator must produce concurrent branches");
});
