import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ChangeInput,
  DocModelError,
  DocState,
  type Edit,
  materialize,
  planOps,
} from "../../src/docmodel/index.js";
import { change, principal, prng, shape } from "./helpers.js";

const A = principal(1);

function commit(s: DocState, edits: Edit[], deps: ChangeInput[]): ChangeInput {
  const c = change(A, s.maxTs + 1, deps, planOps(s, edits));
  s.apply(c);
  return c;
}

describe("planOps", () => {
  test("edits apply in order; refs to blocks moved in the same change use [idx]", () => {
    const s = new DocState();
    const g = change(
      A,
      1,
      [],
      planOps(undefined, [
        { type: "moveBlock", block: "a", parent: "", leftSibling: "" },
        { type: "moveBlock", block: "b", parent: "", leftSibling: "a" },
        { type: "replaceBlock", block: { id: "b", type: "Paragraph", text: "bee" } },
        { type: "moveBlock", block: "c", parent: "b", leftSibling: "" },
        { type: "setMetadata", key: ["title"], value: "T" },
      ]),
    );
    assert.deepEqual(g.ops[1], { type: "MoveBlocks", blocks: ["b"], ref: [0] });
    assert.deepEqual(g.ops[3], { type: "MoveBlocks", blocks: ["c"], parent: "b" });
    s.apply(g);
    assert.deepEqual(shape(s.render().content), ["a", "b", ["c"]]);
    const c2 = commit(
      s,
      [
        { type: "moveBlock", block: "a", parent: "", leftSibling: "b" },
        { type: "moveBlock", block: "a", parent: "", leftSibling: "b" },
        { type: "deleteBlock", block: "c" },
        { type: "deleteBlock", block: "nope" },
      ],
      [g],
    );
    assert.equal(c2.ops.length, 2, "no-op move and delete of an absent block are dropped");
    assert.deepEqual(shape(s.render().content), ["b", "a"]);
    assert.deepEqual(s.render().metadata, { title: "T" });
  });

  test("refuses moves the document cannot take", () => {
    const s = DocState.from([
      change(
        A,
        1,
        [],
        [
          { type: "MoveBlocks", blocks: ["a"] },
          { type: "MoveBlocks", parent: "a", blocks: ["b"] },
        ],
      ),
    ]);
    const bad: Edit[] = [
      { type: "moveBlock", block: "a", parent: "b", leftSibling: "" },
      { type: "moveBlock", block: "a", parent: "a", leftSibling: "" },
      { type: "moveBlock", block: "x", parent: "missing", leftSibling: "" },
      { type: "moveBlock", block: "x", parent: "", leftSibling: "b" },
      { type: "moveBlock", block: "a", parent: "", leftSibling: "a" },
    ];
    for (const e of bad) assert.throws(() => planOps(s, [e]), DocModelError);
  });
});

test("1,000 blocks over 1,000 changes materialise (complexity check, no timing asserted)", () => {
  const r = prng(42);
  const s = new DocState();
  const changes: ChangeInput[] = [];
  let prev: ChangeInput | undefined;
  for (let i = 0; i < 1000; i++) {
    const root = s.size === 0 ? [] : s.children("");
    const edits: Edit[] = [
      { type: "moveBlock", block: `b${i}`, parent: "", leftSibling: root[root.length - 1] ?? "" },
      { type: "replaceBlock", block: { id: `b${i}`, type: "Paragraph", text: `block ${i}` } },
    ];
    if (i > 10 && r.int(4) === 0)
      edits.push({ type: "replaceBlock", block: { id: `b${r.int(i)}`, text: `edit ${i}` } });
    if (i % 100 === 0) edits.push({ type: "setMetadata", key: ["title"], value: `v${i}` });
    const c = change(A, 10 + i, prev === undefined ? [] : [prev], planOps(s, edits));
    s.apply(c);
    changes.push(c);
    prev = c;
  }
  const doc = materialize(changes);
  assert.equal(doc.content.length, 1000);
  assert.equal(doc.content[999]?.block.id, "b999");
  assert.equal(doc.metadata.title, "v900");
  assert.deepEqual(s.render(), doc);
});
