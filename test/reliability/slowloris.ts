/**
 * Slowloris: `opts.slow` HTTP/1.1 connections that trickle their headers a byte at a time and
 * never finish them, plus as many HTTP/2 sessions that send the preface and SETTINGS, answer
 * SETTINGS and PING as a polite client would, and open no stream. An authorised client calls
 * GetInfo on fresh connections to both listeners throughout; every call must succeed. Each slow
 * connection must be closed by the daemon within its bound, read from `src/server/daemon.ts`:
 * `headersTimeout` plus Node's connections-checking interval for HTTP/1.1, the idle-session
 * bound for HTTP/2. The wait is capped (`opts.slowCapMs`): a bound longer than the cap, or none,
 * is reported with the measured close times instead of hanging the run.
 *
 * @module
 */
import { connect as h2connect } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { TestDaemon } from "../helpers/daemon.js";
import { GET_INFO_PATH } from "../helpers/http.js";
import { H2_PREFACE, readH2Frames } from "../helpers/raw-h2.js";
import {
  type Check,
  check,
  daemonLimits,
  ms,
  percentile,
  type RunOptions,
  type ScenarioResult,
  sleep,
} from "./lib.js";
import { getInfoCall } from "./protocol.js";
import { withScope } from "./scope.js";

/** Slack on top of a bound: timers, a loaded machine. */
const SLACK_MS = 3_000;
/** One trickled byte per connection this often. */
const TRICKLE_MS = 1_000;
/** Connections opened per batch, so the listen backlog never overflows. */
const BATCH = 50;
/** How often the authorised client calls. */
const CLIENT_EVERY_MS = 250;
/** An authorised call slower than this counts as a failure. */
const CALL_TIMEOUT_MS = 5_000;

/** One slow connection and when the daemon closed it (ms after it opened). */
interface Slow {
  readonly socket: Socket;
  readonly openedAt: number;
  closedAfter?: number;
}

/** A connection to `port` that `start`s its attack once connected. */
function slowConnection(port: number, start: (socket: Socket) => void): Promise<Slow> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    const s: Slow = { socket, openedAt: performance.now() };
    socket.on("error", () => {});
    socket.once("close", () => {
      s.closedAfter = performance.now() - s.openedAt;
    });
    socket.once("connect", () => {
      start(socket);
      resolve(s);
    });
  });
}

/** Request headers that never end: one more byte every {@link TRICKLE_MS}. */
function slowH1(port: number): Promise<Slow> {
  return slowConnection(port, (socket) => {
    socket.write(`POST ${GET_INFO_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);
    const timer = setInterval(() => socket.write("a"), TRICKLE_MS);
    timer.unref();
    socket.once("close", () => clearInterval(timer));
  });
}

/** A polite HTTP/2 session (SETTINGS and PING answered) that never opens a stream. */
function idleH2(port: number): Promise<Slow> {
  return slowConnection(port, (socket) => {
    readH2Frames(socket, () => {});
    socket.write(H2_PREFACE);
  });
}

async function openAll(n: number, open: () => Promise<Slow>): Promise<Slow[]> {
  const out: Slow[] = [];
  for (let i = 0; i < n; i += BATCH) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, open))));
  }
  return out;
}

/** An authorised GetInfo on a fresh connection: Connect over h1 or gRPC over a fresh h2c session. */
async function freshCall(d: TestDaemon, grpc: boolean): Promise<{ outcome: string; ms: number }> {
  if (!grpc) return getInfoCall(d, { agent: false }, CALL_TIMEOUT_MS);
  const session = h2connect(`http://127.0.0.1:${d.grpcPort}`);
  session.on("error", () => {});
  try {
    return await getInfoCall(d, { session }, CALL_TIMEOUT_MS);
  } finally {
    session.destroy();
  }
}

function closeFigures(conns: readonly Slow[]) {
  const closed = conns.filter((c) => c.closedAfter !== undefined).map((c) => c.closedAfter ?? 0);
  return {
    closed: closed.length,
    max: closed.length === 0 ? 0 : Math.max(...closed),
    p50: percentile(closed, 50),
  };
}

/** Runs the slowloris scenario. */
export async function slowlorisScenario(opts: RunOptions): Promise<ScenarioResult> {
  const limits = daemonLimits();
  const h1Bound =
    limits.headersTimeoutMs === undefined
      ? undefined
      : limits.headersTimeoutMs + limits.connectionsCheckingIntervalMs + SLACK_MS;
  const h2Bound = limits.h2Idle === undefined ? undefined : limits.h2Idle.ms + SLACK_MS;
  const wait = Math.min(
    opts.slowCapMs,
    Math.max(h1Bound ?? Number.POSITIVE_INFINITY, h2Bound ?? Number.POSITIVE_INFINITY),
  );
  const run = await withScope("slowloris", async (scope) => {
    const d = await scope.daemon();
    const failures: string[] = [];
    const latencies: number[] = [];
    const t0 = performance.now();
    const [h1, h2] = await Promise.all([
      openAll(opts.slow, () => slowH1(d.httpPort)),
      openAll(opts.slow, () => idleH2(d.grpcPort)),
    ]);
    scope.defer(() => {
      for (const c of [...h1, ...h2]) c.socket.destroy();
    });
    opts.log(
      `slowloris: ${h1.length} slow h1 + ${h2.length} idle h2 open in ${ms(performance.now() - t0)}; waiting up to ${(wait / 1000).toFixed(0)} s`,
    );
    const call = async (grpc: boolean, when: string) => {
      const r = await freshCall(d, grpc);
      latencies.push(r.ms);
      if (r.outcome !== "ok")
        failures.push(`${grpc ? "gRPC h2c" : "Connect h1"} call ${when}: ${r.outcome}`);
    };
    const allClosed = () => [...h1, ...h2].every((c) => c.closedAfter !== undefined);
    for (let i = 0; performance.now() - t0 < wait && !allClosed(); i++) {
      await call(i % 2 === 1, `at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      await sleep(CLIENT_EVERY_MS);
    }
    // What the daemon closed, before the scope closes the rest.
    const f1 = closeFigures(h1);
    const f2 = closeFigures(h2);
    // One more call each after the attackers are gone (or the cap is reached).
    await call(false, "after the wait");
    await call(true, "after the wait");
    return { h1: h1.length, h2: h2.length, f1, f2, failures, latencies };
  });
  const { f1, f2, failures, latencies } = run;
  const capS = (opts.slowCapMs / 1000).toFixed(0);
  const stillOpen = (f: { closed: number }, n: number, after: string) =>
    f.closed < n ? `; ${n - f.closed} still open ${after}` : "";
  const h1Ok = h1Bound !== undefined && f1.closed === run.h1 && f1.max <= h1Bound;
  const h2Ok = h2Bound !== undefined && f2.closed === run.h2 && f2.max <= h2Bound;
  const h1Figures = `${f1.closed}/${run.h1} slow h1 connections closed by the daemon, median ${ms(f1.p50)}, max ${ms(f1.max)}; bound ${h1Bound === undefined ? "none found" : `${(h1Bound / 1000).toFixed(0)} s (headersTimeout ${limits.headersTimeoutMs} ms + checking interval ${limits.connectionsCheckingIntervalMs} ms + ${SLACK_MS} ms slack)`}${stillOpen(f1, run.h1, `at the cap (${capS} s)`)}`;
  const h2Figures = `${f2.closed}/${run.h2} idle h2 sessions closed by the daemon, median ${ms(f2.p50)}, max ${ms(f2.max)}; bound ${limits.h2Idle === undefined ? "none found" : `${((h2Bound ?? 0) / 1000).toFixed(0)} s (${limits.h2Idle.name} = ${limits.h2Idle.ms / 1000} s + ${SLACK_MS} ms slack)`}${h2Bound !== undefined && h2Bound > opts.slowCapMs ? `, longer than the cap (${capS} s)` : ""}${stillOpen(f2, run.h2, `after ${(wait / 1000).toFixed(0)} s`)}`;
  const calls = latencies.length;
  const checks: Check[] = [
    check(
      "slowloris.authorised-client-served",
      failures,
      `${calls} calls on fresh connections, 0 failed; p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}`,
      `of ${calls} calls failed`,
    ),
    { id: "slowloris.h1-closed-within-bound", ok: h1Ok, detail: h1Figures },
    { id: "slowloris.h2-closed-within-bound", ok: h2Ok, detail: h2Figures },
  ];
  return {
    scenario: "slowloris",
    requests: run.h1 + run.h2 + calls,
    failures: failures.length + (run.h1 - f1.closed) + (run.h2 - f2.closed),
    figures: `${run.h1} h1 closed ${f1.closed} (max ${(f1.max / 1000).toFixed(1)} s), ${run.h2} h2 closed ${f2.closed} (max ${(f2.max / 1000).toFixed(1)} s); client ${calls} calls, ${failures.length} failed`,
    checks,
    details: [],
  };
}
