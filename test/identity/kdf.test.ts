import assert from "node:assert/strict";
import { test } from "node:test";
import { isIdentityError } from "../../src/identity/errors.js";
import { deriveKeyFromPassword, MAX_PENDING_DERIVATIONS } from "../../src/identity/kdf.js";

// Cheapest legal costs: the test is about queueing, not about Argon2id itself.
const CHEAP = { t: 1, m: 8, p: 1 };
const SALT = new Uint8Array(16).fill(7);

test("the daemon takes MAX_PENDING_DERIVATIONS password derivations at once; a caller past that is told to retry", async () => {
  const calls = Array.from({ length: MAX_PENDING_DERIVATIONS + 3 }, (_, i) =>
    deriveKeyFromPassword(`pw${i}`, SALT, CHEAP).then(
      (key) => ({ ok: true as const, key }),
      (err: unknown) => ({ ok: false as const, err }),
    ),
  );
  const results = await Promise.all(calls);
  // MAX_PENDING_DERIVATIONS are taken (one runs, the others wait); the rest are refused at once.
  const done = results.filter((r) => r.ok);
  const refused = results.filter((r) => !r.ok);
  assert.equal(done.length, MAX_PENDING_DERIVATIONS);
  assert.equal(refused.length, 3);
  for (const r of refused) {
    assert.ok(!r.ok && isIdentityError(r.err, "resource_exhausted"), String(!r.ok && r.err));
  }
  // Each queued one derived its own key (the queue did not mix up passwords).
  const distinct = new Set(done.map((r) => (r.ok ? Buffer.from(r.key).toString("hex") : "")));
  assert.equal(distinct.size, done.length);
  // Once the queue has drained, a new derivation runs again and matches an earlier one.
  const again = await deriveKeyFromPassword("pw0", SALT, CHEAP);
  const first = results[0];
  assert.ok(first?.ok);
  assert.deepEqual(again, first.key);
});

test("a failing derivation does not block the ones queued behind it", async () => {
  const bad = deriveKeyFromPassword("x", new Uint8Array(16), {
    t: 1,
    m: 8,
    p: 1,
    dkLen: 0,
  } as never);
  const good = deriveKeyFromPassword("x", SALT, CHEAP);
  await bad.catch(() => undefined);
  assert.equal((await good).length, 32);
});

test("a caller who goes away while queued frees its place, and its derivation never runs", async () => {
  const gone = new AbortController();
  // Fill the queue: one caller who will leave, waiting behind a slow one, and the rest staying.
  const first = deriveKeyFromPassword("slow", SALT, { t: 3, m: 8192, p: 1 });
  const leaving = deriveKeyFromPassword("a", SALT, CHEAP, gone.signal);
  const staying = Array.from({ length: MAX_PENDING_DERIVATIONS - 2 }, (_, i) =>
    deriveKeyFromPassword(`s${i}`, SALT, CHEAP),
  );
  await assert.rejects(deriveKeyFromPassword("full", SALT, CHEAP), (err) =>
    isIdentityError(err, "resource_exhausted"),
  );
  gone.abort();
  // Its place is free at once, before the queue has moved.
  const late = deriveKeyFromPassword("late", SALT, CHEAP);
  await assert.rejects(leaving, (err) => isIdentityError(err, "failed_precondition"));
  assert.equal((await late).length, 32);
  for (const key of await Promise.all([first, ...staying])) assert.equal(key.length, 32);
  // A caller already gone is refused before it queues.
  await assert.rejects(deriveKeyFromPassword("b", SALT, CHEAP, gone.signal), (err) =>
    isIdentityError(err, "failed_precondition"),
  );
});
