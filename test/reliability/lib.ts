/**
 * What the reliability scenarios share: the row a scenario reports, a seeded PRNG, process
 * figures from `/proc`, latency percentiles, bounded waits and one raw HTTP/1.1 exchange over a
 * socket for requests Node's client refuses to send (two Host headers, absolute-form targets,
 * malformed bytes).
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { ROOT } from "../helpers/daemon.js";
import { rawHttp1 } from "../helpers/http.js";
import { settleOnce } from "../helpers/raw-h2.js";

/** Counts and knobs of one run; `--short` picks the CI sizes. */
export interface RunOptions {
  /** Fuzz requests. */
  readonly fuzz: number;
  /** SIGKILL rounds of the crash scenario. */
  readonly crash: number;
  /** Rejected requests of the flood. */
  readonly flood: number;
  /** Slow HTTP/1.1 connections, and as many idle HTTP/2 sessions. */
  readonly slow: number;
  /** Seed of every PRNG in the run (printed, so a finding can be replayed). */
  readonly seed: number;
  /** True for the CI sizes. */
  readonly short: boolean;
  /** Longest wait of the slowloris scenario for its connections to be closed, in ms. */
  readonly slowCapMs: number;
  /** Progress lines go here (stderr in the runner, diagnostics in node:test). */
  readonly log: (line: string) => void;
}

/** CI sizes: the whole short form stays under 2 minutes on 2 cores. */
export const SHORT_SIZES = {
  fuzz: 3000,
  crash: 5,
  flood: 5000,
  slow: 50,
  slowCapMs: 50_000,
} as const;

/** The long form of issue 10. */
export const LONG_SIZES = {
  fuzz: 100_000,
  crash: 50,
  flood: 200_000,
  slow: 500,
  slowCapMs: 360_000,
} as const;

/** One invariant of a scenario, checked once per run. */
export interface Check {
  /** Stable id, used by the node:test short form to mark a known finding `todo`. */
  readonly id: string;
  readonly ok: boolean;
  /** What was measured; for a failed check, the precise request and answer. */
  readonly detail: string;
}

/** A scenario's row of the table and its checks. */
export interface ScenarioResult {
  readonly scenario: string;
  /** Requests (or rounds, calls, connections) the scenario made. */
  readonly requests: number;
  /** Requests that broke an invariant. */
  readonly failures: number;
  /** The figures of the row, short. */
  readonly figures: string;
  readonly checks: readonly Check[];
  /** Extra lines printed under the table (per-class counts, notes). */
  readonly details: readonly string[];
  /** Set when the scenario (or part of it) could not run here, with the reason. */
  readonly skipped?: string;
}

/** True when every check of a result holds. */
export function resultOk(r: ScenarioResult): boolean {
  return r.checks.every((c) => c.ok);
}

/**
 * A check that holds when `problems` is empty: `pass` then says what was measured. A failure
 * counts the problems, says what they are (`what`) and lists the first {@link KEEP} in full.
 */
export function check(
  id: string,
  problems: readonly string[],
  pass: string,
  what = "problems",
): Check {
  return problems.length === 0
    ? { id, ok: true, detail: pass }
    : {
        id,
        ok: false,
        detail: `${problems.length} ${what}:\n${indent(problems.slice(0, KEEP))}`,
      };
}

/** How many findings of one kind are kept in full. */
export const KEEP = 8;

/** Lines as the details under a check: one per line, indented. */
export function indent(lines: readonly string[]): string {
  return lines.map((l) => `      ${l}`).join("\n");
}

/** A token that differs from `token` in its last character only. */
export function nearMiss(token: string): string {
  return `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
}

/**
 * A small seeded PRNG (an add-and-mix generator over 32-bit state). Not for cryptography; its
 * only job is to make a run replayable from its seed.
 */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A generator for item `index` of a run, independent of the order items are scheduled in. */
  static derive(seed: number, index: number): Rng {
    const r = new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    r.next();
    return r;
  }

  /** The next 32-bit unsigned value. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error("pick from an empty array");
    return item;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** A string of `n` characters drawn from `alphabet`. */
  string(n: number, alphabet: string): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

/** Memory figures of a process from `/proc/<pid>/status`, in KiB (undefined off Linux). */
export function memoryKiB(pid: number | undefined): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1]);
    const rss = field("VmRSS");
    const hwm = field("VmHWM");
    return Number.isFinite(rss) ? { rss, hwm: Number.isFinite(hwm) ? hwm : rss } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resets a process's VmHWM to its VmRSS (`clear_refs` 5, Linux 4.0+), so VmHWM then gives the
 * peak since this moment: exact, where sampling VmRSS would miss a short peak. False when the
 * kernel or the permissions do not allow it.
 */
export function resetPeak(pid: number | undefined): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** The `p`-th percentile (0–100) of unsorted samples, nearest rank; 0 for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** Milliseconds with one decimal. */
export function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}

/** Resolves after `ms` milliseconds (never keeps the process alive). */
export function sleep(msecs: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msecs).unref());
}

/** The promise's value, or `timeout` once `msecs` have passed. */
export function within<T>(p: Promise<T>, msecs: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), msecs);
    timer.unref();
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** GET /health on the HTTP/1.1 listener: true when it answers 200 within `msecs`. */
export async function healthy(port: number, msecs = 5_000): Promise<boolean> {
  const r = await within(
    rawHttp1({ port, path: "/health" }).catch(() => undefined),
    msecs,
  );
  return r !== "timeout" && r?.status === 200;
}

/** A raw exchange's outcome: a parsed response, a reset or close without one, or no answer. */
export type RawOutcome =
  | {
      readonly kind: "response";
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: string;
      /** Interim (`1xx`) statuses that came before the answer. */
      readonly interim?: readonly number[];
    }
  | { readonly kind: "reset" }
  | { readonly kind: "timeout" };

/** A chunked body decoded as far as it goes; `done` once the last chunk was seen. */
function dechunk(raw: string): { data: string; done: boolean } {
  let data = "";
  let at = 0;
  for (;;) {
    const eol = raw.indexOf("\r\n", at);
    if (eol === -1) return { data, done: false };
    const size = Number.parseInt(raw.slice(at, eol).split(";")[0] ?? "", 16);
    if (!Number.isFinite(size)) return { data, done: false };
    if (size === 0) return { data, done: true };
    data += raw.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
    if (at > raw.length) return { data, done: false };
  }
}

/**
 * Writes `bytes` to a fresh connection and reads until the peer closes, the first response is
 * complete (by `content-length`) or `msecs` pass. Headers are lower-cased; repeated ones keep the
 * last value. A connection closed before any status line counts as a reset.
 */
export function rawExchange(port: number, bytes: string | Uint8Array, msecs = 5_000) {
  return new Promise<RawOutcome>((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const interim: number[] = [];
    const finish = settleOnce(
      resolve,
      msecs,
      (): RawOutcome => parse(true) ?? { kind: "timeout" },
      () => socket.destroy(),
    );
    const parse = (final: boolean): RawOutcome | undefined => {
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return final ? { kind: "reset" } : undefined;
      const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      // A 100 Continue is not the answer: note it, keep reading for the final one.
      if (status === 100) {
        interim.push(status);
        chunks.splice(0, chunks.length, Buffer.from(text.slice(end + 4), "latin1"));
        return parse(final);
      }
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon > 0)
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const rest = text.slice(end + 4);
      if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
        const body = dechunk(rest);
        return final || body.done
          ? { kind: "response", status, headers, body: body.data, interim }
          : undefined;
      }
      const length = headers["content-length"];
      if (length !== undefined && rest.length >= Number(length)) {
        return { kind: "response", status, headers, body: rest.slice(0, Number(length)), interim };
      }
      return final ? { kind: "response", status, headers, body: rest, interim } : undefined;
    };
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      const o = parse(false);
      if (o !== undefined) finish(o);
    });
    socket.on("error", () => finish(parse(true) ?? { kind: "reset" }));
    socket.on("close", () => finish(parse(true) ?? { kind: "reset" }));
    socket.on("connect", () => socket.write(bytes));
  });
}

/**
 * The listener limits the daemon sets, read from `src/server/daemon.ts` and the defaults in
 * `src/config/config.ts`, so the bounds the scenarios assert follow the code. A constant that is
 * missing is undefined.
 */
export function daemonLimits(): {
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** `connectionsCheckingInterval` when the daemon sets it, else Node's default (30 s). */
  connectionsCheckingIntervalMs: number;
  /** The idle bound of an HTTP/2 session and the constant it came from, if any. */
  h2Idle?: { name: string; ms: number };
} {
  const text = ["server/daemon.ts", "config/config.ts"]
    .map((f) => readFileSync(join(ROOT, "src", f), "utf8"))
    .join("\n");
  const constant = (name: string): number | undefined => {
    const m = new RegExp(`\\b${name}\\s*=\\s*([\\d_]+)\\b`).exec(text);
    return m?.[1] === undefined ? undefined : Number(m[1].replaceAll("_", ""));
  };
  const checking = /connectionsCheckingInterval\s*:\s*([A-Z_]+|[\d_]+)/.exec(text)?.[1];
  const checkingMs =
    checking === undefined
      ? 30_000
      : /^[\d_]+$/.test(checking)
        ? Number(checking.replaceAll("_", ""))
        : (constant(checking) ?? 30_000);
  // The h2 idle bound: any `*H2*IDLE*_MS` or `*SESSION*IDLE*_MS` constant; the smallest wins.
  let h2Idle: { name: string; ms: number } | undefined;
  for (const m of text.matchAll(
    /\b([A-Z0-9_]*(?:H2|HTTP2|SESSION)[A-Z0-9_]*IDLE[A-Z0-9_]*_MS)\s*=\s*([\d_]+)/g,
  )) {
    const value = Number(m[2]?.replaceAll("_", ""));
    if (m[1] !== undefined && (h2Idle === undefined || value < h2Idle.ms)) {
      h2Idle = { name: m[1], ms: value };
    }
  }
  return {
    headersTimeoutMs: constant("HEADERS_TIMEOUT_MS"),
    requestTimeoutMs: constant("REQUEST_TIMEOUT_MS"),
    keepAliveTimeoutMs: constant("KEEP_ALIVE_TIMEOUT_MS"),
    connectionsCheckingIntervalMs: checkingMs,
    h2Idle,
  };
}

/** Formats a table of rows, columns padded, separated by ` | `. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join(" | ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}

/** A short printable form of a value for a finding (control bytes escaped, capped). */
export function show(value: string | Uint8Array, max = 160): string {
  const s = typeof value === "string" ? value : Buffer.from(value).toString("latin1");
  const escaped = JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
  return s.length > max ? `${escaped} (${s.length} bytes)` : escaped;
}
