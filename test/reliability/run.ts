/**
 * The reliability suite (issue 10): starts the real binary on loopback for each scenario, runs it
 * bounded in count and time, prints one row per scenario and exits non-zero when a row breaks
 * its invariant. `npm run build` first. See docs/reliability.md.
 *
 *     node --import tsx test/reliability/run.ts [--short] [--fuzz N] [--crash N] [--flood N]
 *       [--slow N] [--slow-cap-ms MS] [--seed N] [--only attack,fuzz,crash,flood,slowloris,disk]
 *
 * @module
 */
import { randomInt } from "node:crypto";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ROOT } from "../helpers/daemon.js";
import { attackMatrix } from "./attack.js";
import { crashScenario } from "./crash.js";
import { diskScenario } from "./disk.js";
import { floodBoundMs, floodScenario } from "./flood.js";
import { fuzzScenario } from "./fuzz.js";
import {
  LONG_SIZES,
  type RunOptions,
  resultOk,
  type ScenarioResult,
  SHORT_SIZES,
  table,
  within,
} from "./lib.js";
import { closeAllScopes } from "./scope.js";
import { slowlorisScenario } from "./slowloris.js";

/** A scenario of the suite. */
export interface Scenario {
  readonly key: string;
  readonly run: (opts: RunOptions) => Promise<ScenarioResult>;
  /**
   * The longest the scenario may take at these counts: generous (several times what 2 cores
   * need), so only a hang reaches it. Past it the row fails and its daemons are killed.
   */
  readonly budgetMs: (opts: RunOptions) => number;
}

/** Every scenario, in the order they run. */
export const SCENARIOS: readonly Scenario[] = [
  { key: "attack", run: attackMatrix, budgetMs: () => 180_000 },
  { key: "fuzz", run: fuzzScenario, budgetMs: (o) => 120_000 + o.fuzz * 25 },
  { key: "crash", run: crashScenario, budgetMs: (o) => 60_000 + o.crash * 15_000 },
  { key: "flood", run: floodScenario, budgetMs: (o) => 120_000 + floodBoundMs(o.flood) },
  { key: "slowloris", run: slowlorisScenario, budgetMs: (o) => 120_000 + o.slowCapMs },
  { key: "disk", run: diskScenario, budgetMs: () => 240_000 },
];

/**
 * Runs one scenario within its budget. A scenario that throws or overruns is a failed row, not
 * a crashed run; an overrun's daemons and temp dirs are removed at once.
 */
export async function runScenario(s: Scenario, opts: RunOptions): Promise<ScenarioResult> {
  const failed = (detail: string): ScenarioResult => ({
    scenario: s.key,
    requests: 0,
    failures: 1,
    figures: "the scenario did not finish",
    checks: [{ id: `${s.key}.ran`, ok: false, detail }],
    details: [],
  });
  const budget = s.budgetMs(opts);
  try {
    const r = await within(s.run(opts), budget);
    if (r !== "timeout") return r;
    await closeAllScopes();
    return failed(`still running after its budget of ${(budget / 1000).toFixed(0)} s`);
  } catch (err) {
    return failed((err as Error)?.stack ?? String(err));
  }
}

/** Parses the flags; `--short` picks the CI sizes, explicit counts override either. */
export function parseOptions(
  argv: readonly string[],
  log: (line: string) => void,
): {
  opts: RunOptions;
  only: Set<string>;
} {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      short: { type: "boolean", default: false },
      fuzz: { type: "string" },
      crash: { type: "string" },
      flood: { type: "string" },
      slow: { type: "string" },
      "slow-cap-ms": { type: "string" },
      seed: { type: "string" },
      only: { type: "string" },
    },
    strict: true,
  });
  const sizes = values.short ? SHORT_SIZES : LONG_SIZES;
  const count = (name: string, raw: string | undefined, fallback: number) => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) throw new Error(`--${name}: expected a whole number`);
    return Number(raw);
  };
  const only = new Set(
    (values.only ?? SCENARIOS.map((s) => s.key).join(",")).split(",").map((s) => s.trim()),
  );
  for (const k of only) {
    if (!SCENARIOS.some((s) => s.key === k)) throw new Error(`--only: unknown scenario ${k}`);
  }
  return {
    opts: {
      short: values.short ?? false,
      fuzz: count("fuzz", values.fuzz, sizes.fuzz),
      crash: count("crash", values.crash, sizes.crash),
      flood: count("flood", values.flood, sizes.flood),
      slow: count("slow", values.slow, sizes.slow),
      slowCapMs: count("slow-cap-ms", values["slow-cap-ms"], sizes.slowCapMs),
      seed: count("seed", values.seed, randomInt(1, 2 ** 31)),
      log,
    },
    only,
  };
}

async function main(): Promise<number> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // Ctrl-C: no daemon or temp dir is left behind.
  process.once("SIGINT", () => {
    void closeAllScopes().then(() => process.exit(130));
  });
  const { opts, only } = parseOptions(process.argv.slice(2), log);
  if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) {
    log("dist/ is missing: run `npm run build` first");
    return 2;
  }
  log(
    `reliability: seed ${opts.seed}, fuzz ${opts.fuzz}, crash ${opts.crash}, flood ${opts.flood}, slow ${opts.slow}+${opts.slow}${opts.short ? " (short)" : ""}`,
  );
  const started = Date.now();
  const results: { r: ScenarioResult; seconds: number }[] = [];
  for (const s of SCENARIOS) {
    if (!only.has(s.key)) continue;
    const t0 = Date.now();
    log(`-- ${s.key}`);
    const r = await runScenario(s, opts);
    results.push({ r, seconds: (Date.now() - t0) / 1000 });
  }
  const rows = results.map(({ r, seconds }) => [
    r.scenario,
    String(r.requests),
    String(r.failures),
    `${r.figures}; ${seconds.toFixed(0)} s`,
    resultOk(r) ? (r.skipped === undefined ? "yes" : "yes (part skipped)") : "NO",
  ]);
  const out: string[] = [
    "",
    `seed ${opts.seed}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`,
    "",
    table(["scenario", "requests", "failures", "figures", "invariant ok"], rows),
  ];
  for (const { r } of results) {
    const lines = [...r.details];
    if (r.skipped !== undefined) lines.push(`  skipped: ${r.skipped}`);
    for (const c of r.checks) lines.push(`  [${c.ok ? "ok" : "FAIL"}] ${c.id}: ${c.detail}`);
    out.push("", `${r.scenario}:`, ...lines);
  }
  process.stdout.write(`${out.join("\n")}\n`);
  return results.every(({ r }) => resultOk(r)) ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`reliability: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
