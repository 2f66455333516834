/**
 * Start-up cost and idle memory of the real binary, against baselines measured in the same run:
 * `node -e 0` for the time to ready, a bare connect-node server (bench/bare-server.ts) for
 * resident memory, and a floor for both (bench/startup-floor.cjs): the builtins, SQLite and two
 * listeners that any daemon with these duties starts with. Bounded: `runs` starts of each.
 *
 *   npm run build && node --import tsx bench/startup.ts [runs=7]
 *
 * Rows:
 * - time to ready: spawn to the `--ready-fd` line, on a data dir that already exists (a restart:
 *   the common case) and on a fresh one (first run: token file and database created);
 * - the floor's time to ready and idle RSS, and the daemon's against it: what the daemon's own
 *   code adds to what Node and better-sqlite3 cost on this runtime;
 * - idle RSS: VmRSS from /proc after one GetInfo, 2 s after ready and again at 15 s, when V8 has
 *   shrunk the young generation that start-up grew (Linux only).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { BIN, cleanEnv, ROOT } from "../test/helpers/daemon.js";
import { median } from "./lib.js";

const runs = Number(process.argv[2] ?? 7);
const FLOOR = join(ROOT, "bench", "startup-floor.cjs");
const root = mkdtempSync(join(tmpdir(), "seed-bench-startup-"));
// Every child gets this environment, the baseline too. Without NODE_EXTRA_CA_CERTS: Node 20 reads
// and parses that file as it starts, in every process (tens of ms for a system CA bundle), which
// would add the same constant to the baseline and the daemon and hide their ratio. The daemon
// opens no TLS connection.
const env = cleanEnv({
  HOME: root,
  XDG_CONFIG_HOME: join(root, "config"),
  SEED_DAEMON_KEYCHAIN: "off",
  NODE_EXTRA_CA_CERTS: undefined,
});

/** Milliseconds from spawn to exit of `node -e 0`. */
function nodeBaseline(): Promise<number> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, ["-e", "0"], { env, stdio: "ignore" });
  return new Promise((resolve) => proc.once("exit", () => resolve(performance.now() - t0)));
}

/** VmRSS of `pid` in MiB, or NaN off Linux. */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** When idle RSS is sampled: soon after start, and once V8 has shrunk its start-up heap. */
const EARLY_MS = 2_000;
const SETTLED_MS = 15_000;

/** RSS of `pid` after {@link EARLY_MS} and after {@link SETTLED_MS} of idling. */
async function idleRss(pid: number): Promise<{ early: number; settled: number }> {
  await sleep(EARLY_MS);
  const early = rssMiB(pid);
  await sleep(SETTLED_MS - EARLY_MS);
  return { early, settled: rssMiB(pid) };
}

/**
 * Starts the daemon on `dataDir`, resolves with the time to its ready line; with `measure`, also
 * its idle RSS after one GetInfo and a pause. Stops it either way.
 */
async function daemonStart(
  dataDir: string,
  measure: boolean,
): Promise<{ ms: number; rss: { early: number; settled: number } }> {
  const args = [
    BIN,
    "--data-dir",
    dataDir,
    "--http-addr",
    "127.0.0.1:0",
    "--grpc-addr",
    "127.0.0.1:0",
    "--log-level",
    "warn",
    "--ready-fd",
    "3",
  ];
  const token = () => readFileSync(join(dataDir, "auth.token"), "utf8").trim();
  return start(args, measure ? token : undefined);
}

/** Starts the floor on `dataDir`, as {@link daemonStart} does the daemon. */
function floorStart(
  dataDir: string,
  measure: boolean,
): Promise<{ ms: number; rss: { early: number; settled: number } }> {
  mkdirSync(dataDir, { recursive: true });
  return start([FLOOR, dataDir], measure ? () => "none" : undefined);
}

/**
 * Spawns `node args`, resolves with the time to its ready line on fd 3; with `token`, also its
 * idle RSS after one GetInfo with that token and a pause. Stops it either way.
 */
async function start(
  args: string[],
  token: (() => string) | undefined,
): Promise<{ ms: number; rss: { early: number; settled: number } }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, args, {
    env,
    stdio: ["ignore", "ignore", "inherit", "pipe"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`daemon exited with ${code}`)));
    createInterface({ input: proc.stdio[3] as NodeJS.ReadableStream }).once("line", resolve);
  });
  const ms = performance.now() - t0;
  let rss = { early: Number.NaN, settled: Number.NaN };
  if (token !== undefined) {
    const { httpAddr } = JSON.parse(line) as { httpAddr: string };
    const res = await fetch(`http://${httpAddr}/com.seed.daemon.v1alpha.Daemon/GetInfo`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token()}` },
      body: "{}",
    });
    if (res.status !== 200) throw new Error(`GetInfo: ${res.status}`);
    rss = await idleRss(proc.pid as number);
  }
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await exited;
  return { ms, rss };
}

async function bareRss(): Promise<{ early: number; settled: number }> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "bare-server.ts")], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((resolve) =>
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once("line", resolve),
  );
  const rss = await idleRss(proc.pid as number);
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill();
  await exited;
  return rss;
}

try {
  const node: number[] = [];
  const restart: number[] = [];
  const first: number[] = [];
  const floor: number[] = [];
  const existing = join(root, "existing");
  const floorDir = join(root, "floor");
  await daemonStart(existing, false); // creates it; also warms the OS file cache
  await floorStart(floorDir, false);
  for (let i = 0; i < runs; i++) {
    node.push(await nodeBaseline());
    restart.push((await daemonStart(existing, false)).ms);
    first.push((await daemonStart(join(root, `fresh-${i}`), false)).ms);
    floor.push((await floorStart(floorDir, false)).ms);
  }
  const idle = await daemonStart(existing, true);
  const floorIdle = await floorStart(floorDir, true);
  const bare = await bareRss();
  const n = median(node);
  const f = median(floor);
  const row = (name: string, ms: number, extra = "") =>
    console.log(
      `${name.padEnd(26)}${ms.toFixed(0).padStart(5)} ms  ${(ms / n).toFixed(1)}x node  ${(ms / f).toFixed(1)}x floor${extra}`,
    );
  console.log(`runs=${runs} (medians); floor: Node's builtins, SQLite and two listeners`);
  console.log(`${"node -e 0".padEnd(26)}${n.toFixed(0).padStart(5)} ms`);
  row("ready, floor", f);
  row("ready, restart", median(restart), "  [<= 2.5x node]");
  row("ready, first run", median(first));
  const mib = (x: number) => `${x.toFixed(1).padStart(5)} MiB`;
  const at = (ms: number) => `${ms / 1000} s`.padEnd(4);
  const rss = (name: string, daemon: number, base: number) =>
    console.log(
      `${name.padEnd(26)}${mib(daemon)}  floor ${mib(base)}  +${mib(daemon - base)}  [<= 64 MiB]`,
    );
  rss(`idle RSS, daemon, ${at(EARLY_MS)}`, idle.rss.early, floorIdle.rss.early);
  rss(`idle RSS, daemon, ${at(SETTLED_MS)}`, idle.rss.settled, floorIdle.rss.settled);
  console.log(
    `${"idle RSS, bare connect".padEnd(26)}${mib(bare.early)} / ${mib(bare.settled)} (under tsx)`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
