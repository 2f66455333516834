import { base58btc } from "multiformats/bases/base58";
import { actorIdOf, type ChangeInput, type Op } from "../../src/docmodel/index.js";

/** Deterministic PRNG (mulberry32): property tests replay from the seed in the failure message. */
export function prng(seed: number): {
  next: () => number;
  int: (n: number) => number;
  pick: <T>(xs: readonly T[]) => T;
  shuffle: <T>(xs: readonly T[]) => T[];
} {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)] as (typeof xs)[number],
    shuffle: (xs) => {
      const out = [...xs];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [out[i], out[j]] = [out[j] as (typeof out)[number], out[i] as (typeof out)[number]];
      }
      return out;
    },
  };
}

/** A syntactically valid ed25519 principal (`z6Mk…`) derived from a small number. */
export function principal(n: number): string {
  const bytes = new Uint8Array(34);
  bytes[0] = 0xed;
  bytes[1] = 0x01;
  for (let i = 2; i < 34; i++) bytes[i] = (n * 31 + i * 7) & 0xff;
  return base58btc.encode(bytes);
}

/** Two principals ordered by Seed ActorID: `lo` < `hi`. */
export function orderedActors(): { lo: string; hi: string } {
  const a = principal(1);
  const b = principal(2);
  return actorIdOf(a) < actorIdOf(b) ? { lo: a, hi: b } : { lo: b, hi: a };
}

let counter = 0;

/** A change with a fake but unique CID-like id. */
export function change(
  actor: string,
  ts: number,
  deps: readonly ChangeInput[],
  ops: readonly Op[],
  id?: string,
): ChangeInput {
  counter++;
  return {
    id: id ?? `bafy${ts.toString(36)}x${counter.toString(36)}`,
    deps: deps.map((d) => d.id).sort(),
    ts,
    actor,
    ...(deps[0] !== undefined ? { genesis: deps[0].genesis ?? deps[0].id } : {}),
    ops,
  };
}

/** Block ids of a rendered tree, nested: `["a", ["b"], "c"]` means b is a's child. */
export type Shape = (string | Shape)[];

export function shape(
  nodes: readonly { block: { id: string }; children: readonly unknown[] }[],
): Shape {
  const out: Shape = [];
  for (const n of nodes) {
    out.push(n.block.id);
    if (n.children.length > 0) out.push(shape(n.children as typeof nodes));
  }
  return out;
}
