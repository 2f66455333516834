import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { base58btc } from "multiformats/bases/base58";
import {
  actorIdOf,
  type ChangeInput,
  DocModelError,
  DocState,
  decodeRef,
  encodeRef,
  heads,
  materialize,
  parseVersion,
  version,
} from "../../src/docmodel/index.js";
import { change, orderedActors, principal, shape } from "./helpers.js";

const A = principal(1);
const B = principal(2);
const aid = actorIdOf(A);
const bid = actorIdOf(B);

describe("op ids", () => {
  test("ActorID is Seed's: sha256 of the principal bytes, 7 bytes little-endian", () => {
    // Independent recomputation of core.Principal.ActorID with node:crypto.
    const sum = createHash("sha256").update(base58btc.decode(A)).digest();
    sum[7] = 0;
    assert.equal(aid, sum.readBigUInt64LE(0));
    assert.ok(aid < 2n ** 56n);
    assert.notEqual(aid, bid);
  });

  test("refs decode like Seed's decodeOpID", () => {
    const self = { ts: 77, idx: 9, actor: 5n };
    assert.equal(decodeRef([], self), undefined);
    assert.equal(decodeRef(undefined, self), undefined);
    assert.deepEqual(decodeRef([3], self), { ts: 77, idx: 3, actor: 5n });
    assert.deepEqual(decodeRef([10, 2, 2n ** 60n], self), { ts: 10, idx: 2, actor: 2n ** 60n });
    for (const bad of [
      [1, 2],
      [2 ** 48, 0, 1],
      [1, 2 ** 31, 1],
      [-1, 0, 1],
      [1.5, 0, 1],
      [2 ** 31],
    ])
      assert.throws(() => decodeRef(bad, self), DocModelError);
    assert.deepEqual(encodeRef({ ts: 77, idx: 3, actor: 5n }, self), [3]);
    assert.deepEqual(encodeRef({ ts: 10, idx: 2, actor: 2n ** 60n }, self), [10, 2, 2n ** 60n]);
    assert.deepEqual(encodeRef(undefined), []);
  });
});

describe("version and heads", () => {
  test("version sorts head CIDs as strings and joins them with '.'", () => {
    assert.equal(version(["bafyc", "bafya", "bafyb"]), "bafya.bafyb.bafyc");
    assert.equal(version([]), "");
    assert.deepEqual(parseVersion("bafya.bafyb"), ["bafya", "bafyb"]);
    assert.deepEqual(parseVersion(""), []);
  });

  test("heads are the changes nothing depends on", () => {
    const g = change(A, 1, [], []);
    const x = change(A, 2, [g], []);
    const y = change(B, 2, [g], []);
    assert.deepEqual(heads([g, x, y]), [x.id, y.id].sort());
    assert.deepEqual(heads([g]), [g.id]);
    const z = change(A, 3, [x, y], []);
    assert.deepEqual(heads([z, y, g, x]), [z.id]);
  });
});

describe("hand-checked document", () => {
  // Expected values below are derived by hand from Seed's rules (docmodel/crdt.go ApplyChange,
  // crdt_list.go Integrate, crdt_block_tree.go State, crdt.go setMetadata), not by running this
  // code:
  //  - C1 (A, ts 10): MoveBlocks [b1,b2,b3] at the root takes idx 0, 0+1=1, 1+2=3 (Seed's
  //    quadratic numbering); the three ReplaceBlocks take 4, 5, 6; SetAttributes with two attrs
  //    takes 7 and 7+1=8.
  //  - C2 (A, ts 20) and C3 (B, ts 20) are concurrent on C1.
  //    C2: b3 under b1 (20,0,A); b2.text "from A" (20,1,A); title (20,2,A).
  //    C3: n1 at the root after b2's slot (10,1,A) (20,0,B); b2.text "from B" (20,1,B); delete b1
  //    (20,2,B); theme = "dark" (20,3,B).
  //  - Root list: b1(10,0,A) b2(10,1,A) b3(10,3,A); n1 (20,0,B) is inserted after b2 and the scan
  //    stops at b3's slot, which has the lower id. b3's visible slot is its later move under b1.
  //  - b1 is in the trash, so b3 (under b1) vanishes with it: root = [b2, n1].
  //  - b2.text: same ts and idx, so the greater ActorID wins.
  //  - n1 was placed but never given content: Seed shows it with only its id.
  //  - theme = "dark" at (20,3,B) beats the descendant key theme.layout (10,8,A).
  //  - C4 (A, ts 30, merges both) moves b3 back to the root after n1: it reappears.
  const g = change(A, 1, [], [], undefined);
  const c1 = change(
    A,
    10,
    [g],
    [
      { type: "MoveBlocks", blocks: ["b1", "b2", "b3"] },
      { type: "ReplaceBlock", block: { id: "b1", type: "Paragraph", text: "one" } },
      { type: "ReplaceBlock", block: { id: "b2", type: "Paragraph", text: "two" } },
      { type: "ReplaceBlock", block: { id: "b3", type: "Heading", text: "three", level: 2 } },
      {
        type: "SetAttributes",
        attrs: [
          { key: ["title"], value: "Draft" },
          { key: ["theme", "layout"], value: "wide" },
        ],
      },
    ],
  );
  const c2 = change(
    A,
    20,
    [c1],
    [
      { type: "MoveBlocks", parent: "b1", blocks: ["b3"] },
      { type: "ReplaceBlock", block: { id: "b2", type: "Paragraph", text: "from A" } },
      { type: "SetAttributes", attrs: [{ key: ["title"], value: "Final" }] },
    ],
  );
  const c3 = change(
    B,
    20,
    [c1],
    [
      { type: "MoveBlocks", blocks: ["n1"], ref: [10, 1, aid] },
      { type: "ReplaceBlock", block: { id: "b2", type: "Paragraph", text: "from B" } },
      { type: "DeleteBlocks", blocks: ["b1"] },
      { type: "SetAttributes", attrs: [{ key: ["theme"], value: "dark" }] },
    ],
  );

  test("C1 alone: quadratic op numbering and nested metadata", () => {
    const s = DocState.from([g, c1]);
    assert.deepEqual(s.position("b3")?.slot, { ts: 10, idx: 3, actor: aid });
    const doc = s.render();
    assert.deepEqual(shape(doc.content), ["b1", "b2", "b3"]);
    assert.deepEqual(doc.metadata, { title: "Draft", theme: { layout: "wide" } });
    assert.deepEqual(doc.content[2]?.block, {
      id: "b3",
      type: "Heading",
      text: "three",
      link: "",
      attributes: { level: 2 },
      annotations: [],
      revision: c1.id,
    });
  });

  test("C2 and C3 merge as Seed would", () => {
    const doc = materialize([c3, g, c2, c1]);
    assert.deepEqual(shape(doc.content), ["b2", "n1"]);
    const winner = aid > bid ? "from A" : "from B";
    assert.equal(doc.content[0]?.block.text, winner);
    assert.equal(doc.content[0]?.block.revision, aid > bid ? c2.id : c3.id);
    assert.deepEqual(doc.content[1]?.block, {
      id: "n1",
      type: "",
      text: "",
      link: "",
      attributes: {},
      annotations: [],
      revision: "",
    });
    assert.deepEqual(doc.metadata, { title: "Final", theme: "dark" });
    assert.deepEqual(doc.heads, [c2.id, c3.id].sort());
    assert.equal(doc.version, version([c2.id, c3.id]));
    assert.deepEqual(doc.authors, [A, B].sort());
    assert.equal(doc.createTime, 1);
    assert.equal(doc.updateTime, 20);
    assert.equal(doc.genesis, g.id);
  });

  test("a later move brings a block out of a deleted subtree", () => {
    const c4 = change(A, 30, [c2, c3], [{ type: "MoveBlocks", blocks: ["b3"], ref: [20, 0, bid] }]);
    const doc = materialize([g, c1, c2, c3, c4]);
    assert.deepEqual(shape(doc.content), ["b2", "n1", "b3"]);
  });

  test("state at an older version uses only the changes reachable from its heads", () => {
    const all = [g, c1, c2, c3];
    assert.deepEqual(materialize(all, [c1.id]), materialize([g, c1]));
    assert.deepEqual(materialize(all, [c2.id]), materialize([g, c1, c2]));
    assert.deepEqual(shape(materialize(all, [c2.id]).content), ["b1", ["b3"], "b2"]);
    assert.deepEqual(materialize(all, [c2.id, c3.id]), materialize(all));
    const s = DocState.from(all);
    assert.deepEqual(s.at([c3.id]).render(), materialize([g, c1, c3]));
    assert.equal(s.at(parseVersion(s.version())), s);
    assert.throws(
      () => materialize(all, ["bafynope"]),
      (e: unknown) => e instanceof DocModelError && e.code === "not_found",
    );
  });
});

describe("merge rules", () => {
  const g = change(
    A,
    1,
    [],
    [
      { type: "MoveBlocks", blocks: ["r", "x", "y"] },
      { type: "ReplaceBlock", block: { id: "x", type: "Paragraph", text: "x0" } },
    ],
  );

  test("concurrent inserts at the same position: the greater op id comes first", () => {
    const { lo, hi } = orderedActors();
    // Both insert right after r at the same ts, so the op ids differ only by actor.
    const p = change(lo, 5, [g], [{ type: "MoveBlocks", blocks: ["p"], ref: [1, 0, aid] }]);
    const q = change(hi, 5, [g], [{ type: "MoveBlocks", blocks: ["q"], ref: [1, 0, aid] }]);
    assert.deepEqual(shape(materialize([g, p, q]).content), ["r", "q", "p", "x", "y"]);
    // A later ts beats a greater actor.
    const p2 = change(lo, 6, [g], [{ type: "MoveBlocks", blocks: ["p"], ref: [1, 0, aid] }]);
    assert.deepEqual(shape(materialize([g, p2, q]).content), ["r", "p", "q", "x", "y"]);
  });

  test("Seed's RGA example: two runs inserted at the start interleave by op id", () => {
    // Seed's TestCRDTList: A,B,C by actor 1 and X,Y,Z by actor 2 at the same ts, each run chained
    // after its previous item; the run with the greater first id (actor 2) goes first.
    const { lo, hi } = orderedActors();
    const base = change(A, 1, [], []);
    const l = change(lo, 2, [base], [{ type: "MoveBlocks", blocks: ["A", "B", "C"] }]);
    const h = change(hi, 2, [base], [{ type: "MoveBlocks", blocks: ["X", "Y", "Z"] }]);
    assert.deepEqual(shape(materialize([base, l, h]).content), ["X", "Y", "Z", "A", "B", "C"]);
  });

  test("concurrent ReplaceBlock: last writer by op id wins, in any order", () => {
    const { lo, hi } = orderedActors();
    const a = change(lo, 7, [g], [{ type: "ReplaceBlock", block: { id: "x", text: "lo" } }]);
    const b = change(hi, 7, [g], [{ type: "ReplaceBlock", block: { id: "x", text: "hi" } }]);
    for (const order of [
      [g, a, b],
      [g, b, a],
    ]) {
      const s = new DocState();
      for (const c of order) s.apply(c);
      assert.equal(s.render().content[1]?.block.text, "hi");
    }
    const later = change(lo, 8, [g], [{ type: "ReplaceBlock", block: { id: "x", text: "late" } }]);
    assert.equal(materialize([g, b, later]).content[1]?.block.text, "late");
  });

  test("moves: the highest op id wins", () => {
    const a = change(A, 5, [g], [{ type: "MoveBlocks", parent: "r", blocks: ["y"] }]);
    const b = change(B, 6, [g], [{ type: "MoveBlocks", parent: "x", blocks: ["y"] }]);
    assert.deepEqual(shape(materialize([g, b, a]).content), ["r", "x", ["y"]]);
  });

  test("moves that would make a cycle are ignored", () => {
    // Concurrently x goes under y and y goes under x. Replayed in op id order the first one
    // applies and the second would make a cycle, so it is skipped (Seed's State()).
    const a = change(A, 5, [g], [{ type: "MoveBlocks", parent: "y", blocks: ["x"] }]);
    const b = change(B, 6, [g], [{ type: "MoveBlocks", parent: "x", blocks: ["y"] }]);
    assert.deepEqual(shape(materialize([g, a, b]).content), ["r", "y", ["x"]]);
    const b2 = change(B, 4, [g], [{ type: "MoveBlocks", parent: "x", blocks: ["y"] }]);
    assert.deepEqual(shape(materialize([g, a, b2]).content), ["r", "x", ["y"]]);
    // A block under itself is ignored too.
    const self = change(A, 5, [g], [{ type: "MoveBlocks", parent: "x", blocks: ["x"] }]);
    assert.deepEqual(shape(materialize([g, self]).content), ["r", "x", "y"]);
  });

  test("a deleted block vanishes with its subtree; concurrent edits inside it vanish too", () => {
    const nest = change(A, 3, [g], [{ type: "MoveBlocks", parent: "x", blocks: ["y"] }]);
    const del = change(A, 5, [nest], [{ type: "DeleteBlocks", blocks: ["x"] }]);
    const edit = change(
      B,
      6,
      [nest],
      [
        { type: "ReplaceBlock", block: { id: "y", text: "edited" } },
        { type: "MoveBlocks", parent: "y", blocks: ["new"] },
      ],
    );
    assert.deepEqual(shape(materialize([g, nest, del, edit]).content), ["r"]);
  });

  test("metadata: a newer write on an ancestor or descendant key replaces the older one", () => {
    const a = change(
      A,
      5,
      [g],
      [
        {
          type: "SetAttributes",
          attrs: [
            { key: ["m", "a"], value: 1 },
            { key: ["m", "b"], value: 2 },
          ],
        },
      ],
    );
    const b = change(
      B,
      6,
      [a],
      [{ type: "SetAttributes", attrs: [{ key: ["m"], value: "flat" }] }],
    );
    const c = change(
      A,
      7,
      [b],
      [{ type: "SetAttributes", attrs: [{ key: ["m", "c"], value: 3 }] }],
    );
    assert.deepEqual(materialize([g, a]).metadata, { m: { a: 1, b: 2 } });
    assert.deepEqual(materialize([g, a, b]).metadata, { m: "flat" });
    assert.deepEqual(materialize([g, a, b, c]).metadata, { m: { c: 3 } });
    const d = change(
      B,
      8,
      [c],
      [
        { type: "SetAttributes", attrs: [{ key: ["m", "c"], value: null }] },
        { type: "SetKey", key: "title", value: "legacy" },
      ],
    );
    assert.deepEqual(materialize([g, a, b, c, d]).metadata, { title: "legacy" });
  });

  test("legacy block encoding: iD and nested attributes", () => {
    const c = change(
      A,
      5,
      [g],
      [
        {
          type: "ReplaceBlock",
          block: {
            iD: "x",
            type: "Image",
            link: "ipfs://bafy",
            attributes: { width: 100 },
            annotations: [{ type: "Bold", starts: [0], ends: [2], extra: true }],
          },
        },
      ],
    );
    assert.deepEqual(materialize([g, c]).content[1]?.block, {
      id: "x",
      type: "Image",
      text: "",
      link: "ipfs://bafy",
      attributes: { width: 100 },
      annotations: [
        { type: "Bold", link: "", attributes: { extra: true }, starts: [0], ends: [2] },
      ],
      revision: c.id,
    });
  });
});

describe("refused changes", () => {
  const g = change(A, 1, [], [{ type: "MoveBlocks", blocks: ["r"] }]);
  const refused = (changes: ChangeInput[], code: string) =>
    assert.throws(
      () => materialize(changes),
      (e: unknown) => e instanceof DocModelError && e.code === code,
    );

  test("broken causality", () => {
    refused(
      [g, change(A, 5, [{ id: "bafymissing", deps: [], ts: 0, actor: A, ops: [] }], [])],
      "failed_precondition",
    );
    refused([g, change(A, 1, [g], [])], "invalid_argument");
    refused([g, change(B, 0, [], [])], "invalid_argument");
    refused([g, { ...change(A, 2, [g], []), genesis: "bafyother" }], "invalid_argument");
    const x = change(A, 2, [g], []);
    refused([g, x, change(A, 2, [g], [])], "invalid_argument");
  });

  test("bad ops", () => {
    const bad: unknown[] = [
      { type: "MoveBlocks", blocks: [] },
      { type: "MoveBlocks", blocks: [""] },
      { type: "MoveBlocks", blocks: ["◊"] },
      { type: "MoveBlocks", blocks: ["z"], ref: [9, 9, 9] },
      { type: "MoveBlocks", parent: "other", blocks: ["z"], ref: [1, 0, aid] },
      { type: "MoveBlocks", blocks: ["z"], ref: [5] },
      { type: "SetAttributes", block: "r", attrs: [{ key: ["a"], value: 1 }] },
      { type: "SetAttributes", attrs: [{ key: [], value: 1 }] },
      { type: "ReplaceBlock", block: { text: "no id" } },
      { type: "ReplaceBlock", block: { id: "r", text: 5 } },
      { type: "Frobnicate" },
    ];
    for (const [i, op] of bad.entries()) {
      const s = DocState.from([g]);
      const before = s.render();
      assert.throws(() => s.apply(change(A, 2, [g], [op as never])), DocModelError, `bad op #${i}`);
      assert.equal(s.size, 1);
      assert.deepEqual(s.render(), before);
    }
    assert.throws(() => materialize([{ ...g, actor: "alice" }]), DocModelError);
  });
});
