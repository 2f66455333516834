/**
 * What the benches share: one request on a keep-alive agent, a load loop with bounded
 * concurrency, and interleaved rounds (these machines are noisy, so rows are measured in turn
 * and drift hits every row alike).
 *
 * @module
 */
import { type Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

/** A response as a bench looks at it. */
export interface Reply {
  readonly status: number;
  readonly body: Buffer;
}

/** One HTTP/1.1 request to the daemon on loopback. */
export interface BenchRequest {
  readonly port: number;
  readonly agent: Agent;
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
}

/** Sends one request and resolves with its status and whole body. */
export function send(r: BenchRequest): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: r.port,
        method: r.method ?? "POST",
        path: r.path,
        headers: r.headers ?? {},
        agent: r.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

/**
 * Runs `one` `total` times with at most `concurrency` calls in flight.
 *
 * @returns calls per second over the whole run.
 * @throws the first error `one` throws (the run stops there).
 */
export async function load(
  total: number,
  concurrency: number,
  one: () => Promise<void>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await one();
      }
    }),
  );
  return (total / (performance.now() - t0)) * 1000;
}

/** One measured run of a bench row. */
export interface RowResult {
  readonly name: string;
  readonly rps: number;
}

/** The arithmetic mean (0 for none). */
export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The median (0 for none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * One warm-up run of every case, then `rounds` rounds that run every case in turn.
 *
 * @param summary - how a row's rounds become one figure (the mean unless told).
 * @returns each row's figure, in the order the cases first reported them.
 */
export async function interleave(
  cases: readonly (() => Promise<RowResult>)[],
  rounds: number,
  summary: (xs: readonly number[]) => number = mean,
): Promise<Map<string, number>> {
  for (const c of cases) await c();
  const rows = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) {
      const r = await c();
      rows.set(r.name, [...(rows.get(r.name) ?? []), r.rps]);
    }
  }
  return new Map([...rows].map(([name, rps]) => [name, summary(rps)]));
}
