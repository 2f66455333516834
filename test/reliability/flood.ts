/**
 * Flood: an attacker process sends `opts.flood` requests the daemon refuses (wrong or no token,
 * foreign Host) while an authorised client keeps calling GetInfo over Connect (HTTP/1.1) and
 * gRPC (h2c), one call at a time. The authorised client must see no failure; its latency is
 * printed next to a baseline measured before the flood. Every attacker request must be refused
 * (`401` or `403`).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { Agent } from "node:http";
import { join } from "node:path";
import { ROOT } from "../helpers/daemon.js";
import type { AttackerArgs, AttackerReport } from "./flood-attacker.js";
import {
  type Check,
  check,
  ms,
  nearMiss,
  percentile,
  type RunOptions,
  type ScenarioResult,
  within,
} from "./lib.js";
import { getInfoCall, h2Sessions } from "./protocol.js";
import { withScope } from "./scope.js";

/** Concurrent requests of the attacker. */
const ATTACKER_CONCURRENCY = 64;
/** An authorised call slower than this counts as a failure. */
const CALL_TIMEOUT_MS = 10_000;
/** Calls of the baseline before the flood. */
const BASELINE_CALLS = 200;

/** The longest the attacker may take: a minute per 20,000 requests, plus start-up. */
export function floodBoundMs(requests: number): number {
  return 30_000 + Math.ceil(requests / 20_000) * 60_000;
}

/** Runs the flood. */
export async function floodScenario(opts: RunOptions): Promise<ScenarioResult> {
  const failures: string[] = [];
  const baseline: number[] = [];
  const during: number[] = [];
  let attacker: AttackerReport | undefined;
  let attackerError: string | undefined;
  await withScope("flood", async (scope) => {
    const d = await scope.daemon();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sessions = h2Sessions(d.grpcPort, 1);
    scope.defer(() => {
      sessions.destroy();
      agent.destroy();
    });
    // One call at a time, alternately Connect over h1 and gRPC over h2c.
    const call = async (i: number, when: string, into: number[]) => {
      const grpc = i % 2 === 1;
      const r = await getInfoCall(
        d,
        grpc ? { session: sessions.get(0) } : { agent },
        CALL_TIMEOUT_MS,
      );
      into.push(r.ms);
      if (r.outcome !== "ok") {
        failures.push(
          `call ${i} (${grpc ? "gRPC h2c" : "Connect h1"}) ${when}: ${r.outcome} after ${ms(r.ms)}`,
        );
      }
    };
    for (let i = 0; i < BASELINE_CALLS; i++) await call(i, "of the baseline", baseline);

    const args: AttackerArgs = {
      httpPort: d.httpPort,
      grpcPort: d.grpcPort,
      total: opts.flood,
      concurrency: ATTACKER_CONCURRENCY,
      wrongToken: nearMiss(d.token),
    };
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "flood-attacker.ts"), JSON.stringify(args)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    scope.defer(() => child.kill("SIGKILL"));
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    let done = false;
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    void exited.then(() => {
      done = true;
    });
    const bound = floodBoundMs(opts.flood);
    const t0 = Date.now();
    for (let i = 0; !done; i++) {
      await call(i, "during the flood", during);
      if (Date.now() - t0 > bound) {
        child.kill("SIGKILL");
        attackerError = `the attacker did not finish within ${bound / 1000} s`;
        break;
      }
    }
    const code = await within(exited, 5_000);
    if (code !== 0 && attackerError === undefined)
      attackerError = `attacker exited ${code}: ${err.slice(0, 500)}`;
    try {
      attacker = JSON.parse(out.trim().split("\n").pop() ?? "") as AttackerReport;
    } catch {
      attackerError ??= `no attacker report: ${err.slice(0, 500)}`;
    }
    if (d.proc.exitCode !== null || d.proc.signalCode !== null)
      failures.push("the daemon exited during the flood");
  });
  const statuses = attacker?.statuses ?? {};
  const refused = (statuses["401"] ?? 0) + (statuses["403"] ?? 0);
  const sent = Object.values(statuses).reduce((a, b) => a + b, 0);
  const notRefused = Object.entries(statuses).filter(([k]) => k !== "401" && k !== "403");
  const rate = attacker === undefined ? 0 : sent / attacker.seconds;
  const latency = (xs: number[]) => `p50 ${ms(percentile(xs, 50))}, p99 ${ms(percentile(xs, 99))}`;
  const attackerProblems = [
    ...(attackerError === undefined ? [] : [attackerError]),
    ...(sent === opts.flood ? [] : [`the attacker sent ${sent} of ${opts.flood} requests`]),
    ...notRefused.map(([status, n]) => `${n} attacker requests got ${status}, not 401/403`),
  ];
  const checks: Check[] = [
    check(
      "flood.authorised-client-served",
      during.length === 0 ? ["no authorised call during the flood", ...failures] : failures,
      `${during.length} authorised calls during the flood, 0 failed; ${latency(during)} (baseline ${latency(baseline)})`,
      "authorised calls failed",
    ),
    check(
      "flood.attacker-refused",
      attackerProblems,
      `${refused} of ${sent} attacker requests refused (401/403) at ${rate.toFixed(0)} req/s`,
    ),
  ];
  return {
    scenario: "flood",
    requests: sent + baseline.length + during.length,
    failures: failures.length + notRefused.reduce((a, [, n]) => a + n, 0),
    figures: `${refused} refused at ${rate.toFixed(0)} req/s; client ${during.length} calls, ${latency(during)} (baseline ${latency(baseline)})`,
    checks,
    details: [],
  };
}
