import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LruCache } from "../../src/util/lru.js";

describe("LruCache", () => {
  it("keeps at most its limit, evicting the least recently used", () => {
    const c = new LruCache<string, number>(2);
    c.set("a", 1);
    c.set("b", 2);
    assert.equal(c.get("a"), 1); // a is now the most recent
    c.set("c", 3); // evicts b
    assert.equal(c.get("b"), undefined);
    assert.equal(c.get("a"), 1);
    assert.equal(c.size, 2);
    c.set("a", 4); // refresh, no growth
    c.set("d", 5); // evicts c
    assert.deepEqual([c.get("a"), c.get("c"), c.get("d")], [4, undefined, 5]);
    c.deleteValue(4);
    assert.equal(c.get("a"), undefined);
  });

  it("keeps a stored null (a remembered negative answer) apart from a miss", () => {
    const c = new LruCache<string, number | null>(2);
    c.set("bad", null);
    assert.equal(c.get("bad"), null);
    assert.equal(c.get("unknown"), undefined);
  });
});
