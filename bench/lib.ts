/**
 * What the benches share: one request on a keep-alive agent, a load loop with bounded
 * concurrency, a raw-socket HTTP/1.1 load for cheap rows, the CPU time a process used, and
 * interleaved rounds (these machines are noisy, so rows are measured in turn
 * and drift hits every row alike).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { type Agent, request } from "node:http";
import { connect as http2connect } from "node:http2";
import { connect } from "node:net";
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

/** A load of one fixed HTTP/1.1 request, written straight to sockets (see {@link rawLoad}). */
export interface RawLoad {
  readonly port: number;
  /** The whole request, head and body, as sent each time. */
  readonly request: Buffer;
  readonly total: number;
  readonly connections: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining); 1 waits for each answer. */
  readonly depth: number;
  /** The status every answer must have. */
  readonly expect: number;
}

const HEAD_END = Buffer.from("\r\n\r\n");

/**
 * Sends `total` copies of one request over keep-alive connections and counts the answers, with
 * next to no client work per request: no `http` client objects, a parse that reads only the
 * status and `content-length`. On a 2-core machine the client shares the CPU with the daemon,
 * and Node's `http` client costs more per request than a refusal does, so this is the client
 * for rows whose server side is cheap. Every answer must carry a `content-length`.
 *
 * @returns requests per second over the whole run.
 * @throws on a connection error, an unexpected status, or an answer without a length.
 */
export async function rawLoad(l: RawLoad): Promise<number> {
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: l.connections },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = connect(l.port, "127.0.0.1");
          socket.setNoDelay(true);
          let pending: Buffer = Buffer.alloc(0);
          let inFlight = 0;
          const fail = (err: Error) => {
            socket.destroy();
            reject(err);
          };
          const pump = () => {
            let n = 0;
            while (inFlight < l.depth && sent < l.total) {
              sent++;
              inFlight++;
              n++;
            }
            if (n > 0) socket.write(n === 1 ? l.request : Buffer.concat(Array(n).fill(l.request)));
            else if (inFlight === 0) {
              socket.end();
              resolve();
            }
          };
          socket.on("connect", pump);
          socket.on("error", fail);
          socket.on("data", (chunk: Buffer) => {
            pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
            for (;;) {
              const end = pending.indexOf(HEAD_END);
              if (end === -1) break;
              const head = pending.subarray(0, end).toString("latin1");
              const length = /\r\ncontent-length: *(\d+)/i.exec(head);
              if (length === null) return fail(new Error(`answer without a length: ${head}`));
              const size = end + 4 + Number(length[1]);
              if (pending.length < size) break;
              const status = Number(head.slice(9, 12));
              if (status !== l.expect) return fail(new Error(`status ${status}, not ${l.expect}`));
              pending = pending.subarray(size);
              inFlight--;
            }
            pump();
          });
        }),
    ),
  );
  return (l.total / (performance.now() - t0)) * 1000;
}

/**
 * CPU time `pid` has used so far, user and system, all threads, in microseconds (Linux: from
 * `/proc`; NaN elsewhere). Its resolution is one clock tick (10 ms), so a measured stretch should
 * last a second or more.
 */
export function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
  } catch {
    return Number.NaN;
  }
}
/** `sysconf(_SC_CLK_TCK)`, which is 100 on every Linux this runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** A load of one fixed gRPC unary call over h2c (see {@link grpcLoad}). */
export interface GrpcLoad {
  readonly port: number;
  /** `/package.Service/Method`. */
  readonly path: string;
  /** The request message, serialised (empty for an empty message). */
  readonly message: Uint8Array;
  readonly headers?: Record<string, string>;
  readonly total: number;
  readonly connections: number;
  /** Calls in flight per connection (streams of one HTTP/2 session). */
  readonly depth: number;
}

/**
 * Makes `total` gRPC unary calls with `node:http2` streams directly: much less client work per
 * call than a Connect or grpc-js client, for the same reason as {@link rawLoad}.
 *
 * @returns calls per second over the whole run.
 * @throws on a session error, or a call that does not end with HTTP 200 and `grpc-status: 0`.
 */
export async function grpcLoad(l: GrpcLoad): Promise<number> {
  const frame = Buffer.alloc(5 + l.message.length);
  frame.writeUInt32BE(l.message.length, 1);
  frame.set(l.message, 5);
  const headers = {
    ":method": "POST",
    ":path": l.path,
    "content-type": "application/grpc",
    te: "trailers",
    ...l.headers,
  };
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: l.connections }, async () => {
      const session = http2connect(`http://127.0.0.1:${l.port}`);
      const failed = new Promise<never>((_, reject) => session.once("error", reject));
      const call = () =>
        new Promise<void>((resolve, reject) => {
          const stream = session.request(headers);
          let status = 0;
          let grpcStatus: string | undefined;
          stream.on("response", (h) => {
            status = Number(h[":status"]);
            grpcStatus = h["grpc-status"] as string | undefined;
          });
          stream.on("trailers", (t) => {
            grpcStatus = t["grpc-status"] as string | undefined;
          });
          stream.on("data", () => {});
          stream.on("error", reject);
          stream.on("end", () => {
            if (status === 200 && grpcStatus === "0") resolve();
            else reject(new Error(`HTTP ${status}, grpc-status ${grpcStatus}`));
          });
          stream.end(frame);
        });
      const worker = async () => {
        while (started < l.total) {
          started++;
          await call();
        }
      };
      try {
        await Promise.race([Promise.all(Array.from({ length: l.depth }, worker)), failed]);
      } finally {
        session.close();
      }
    }),
  );
  return (l.total / (performance.now() - t0)) * 1000;
}
