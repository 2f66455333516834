import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** Repository root (tests run from anywhere). */
export const ROOT = resolve(import.meta.dirname, "..", "..");
/** The real entry point every e2e test spawns. */
export const BIN = join(ROOT, "bin", "seed-daemon.js");

/** A fresh 0700 temp dir, removed by the returned cleanup. */
export function tempDir(prefix = "seed-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A random token long enough for SEED_DAEMON_AUTH_TOKEN. */
export function randomToken(): string {
  return randomBytes(32).toString("base64url");
}

let testHome: string | undefined;

/**
 * A temp home for every child this test process starts, removed when the process exits: a
 * daemon without a KEK source generates its KEK file in the per-OS config dir under HOME (or
 * XDG_CONFIG_HOME), and no test may write into the developer's real one.
 */
export function testHomeDir(): string {
  if (testHome === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "seed-test-home-"));
    testHome = dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return testHome;
}

/**
 * Environment for a child: the parent's minus anything that would configure the daemon, with
 * the OS keychain off (`SEED_DAEMON_KEYCHAIN=off`: no test touches a developer's keychain) and
 * HOME, XDG_CONFIG_HOME and APPDATA in {@link testHomeDir}. `extra` may override any of them.
 */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("SEED_DAEMON_")) env[k] = v;
  }
  const home = testHomeDir();
  env.HOME = home;
  env.XDG_CONFIG_HOME = join(home, ".config");
  env.APPDATA = join(home, "AppData", "Roaming");
  env.SEED_DAEMON_KEYCHAIN = "off";
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** A daemon child process started on port 0 with a temp data dir. */
export interface TestDaemon {
  readonly proc: ChildProcess;
  readonly dataDir: string;
  readonly httpAddr: string;
  readonly grpcAddr: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** The master token (from the env or the token file). */
  readonly token: string;
  /** Everything the daemon printed so far, stdout and stderr. */
  output(): string;
  /** Sends a signal and waits for exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Options for startDaemon. */
export interface StartOptions {
  args?: string[];
  env?: Record<string, string | undefined>;
  dataDir?: string;
  /** Pass the token through SEED_DAEMON_AUTH_TOKEN instead of the token file. */
  envToken?: string;
}

function waitExit(proc: ChildProcess) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      r({ code: proc.exitCode, signal: proc.signalCode });
    } else proc.once("exit", (code, signal) => r({ code, signal }));
  });
}

/** Spawns bin/seed-daemon.js and resolves once it logged `daemon ready`. */
export async function startDaemon(opts: StartOptions = {}): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? join(tempDir(), "data");
  const args = [
    BIN,
    "--data-dir",
    dataDir,
    "--http-addr",
    "127.0.0.1:0",
    "--grpc-addr",
    "127.0.0.1:0",
    ...(opts.args ?? []),
  ];
  const env = cleanEnv({ SEED_DAEMON_AUTH_TOKEN: opts.envToken, ...(opts.env ?? {}) });
  const proc = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const ready = await new Promise<{ httpAddr: string; grpcAddr: string }>((res, rej) => {
    const timer = setTimeout(() => {
      // A daemon that never got ready must not outlive the test that started it.
      proc.kill("SIGKILL");
      rej(new Error(`daemon not ready in 20s:\n${out}`));
    }, 20_000);
    const onData = () => {
      for (const line of out.split("\n")) {
        if (!line.includes('"daemon ready"')) continue;
        const rec = JSON.parse(line) as { httpAddr: string; grpcAddr: string };
        clearTimeout(timer);
        clearInterval(poll);
        proc.stdout?.off("data", onData);
        res(rec);
        return;
      }
    };
    proc.stdout?.on("data", onData);
    // With --log-level above info there is no ready line: daemon.json is written at the same point.
    const poll = setInterval(() => {
      try {
        const info = JSON.parse(readFileSync(join(dataDir, "daemon.json"), "utf8"));
        if (info.pid !== proc.pid) return;
        clearInterval(poll);
        clearTimeout(timer);
        proc.stdout?.off("data", onData);
        res({ httpAddr: info.httpAddr, grpcAddr: info.grpcAddr });
      } catch {
        // not written yet
      }
    }, 50);
    proc.once("exit", () => clearInterval(poll));
    timer.unref();
    proc.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`daemon exited with ${code} before ready:\n${out}`));
    });
  });
  const tokenFile = join(dataDir, "auth.token");
  const token =
    opts.envToken ?? (existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : "");
  const port = (a: string) => Number(a.slice(a.lastIndexOf(":") + 1));
  return {
    proc,
    dataDir,
    httpAddr: ready.httpAddr,
    grpcAddr: ready.grpcAddr,
    httpPort: port(ready.httpAddr),
    grpcPort: port(ready.grpcAddr),
    token,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return waitExit(proc);
    },
  };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(
  args: string[],
  opts: {
    /** Added to {@link cleanEnv}'s environment. */
    env?: Record<string, string | undefined>;
    /** The child's whole environment instead (plus PATH): nothing of this process leaks in. */
    exactEnv?: Record<string, string>;
    input?: string | Uint8Array;
    timeoutMs?: number;
    cwd?: string;
  } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const env =
      opts.exactEnv === undefined
        ? cleanEnv(opts.env ?? {})
        : { PATH: process.env.PATH ?? "", ...opts.exactEnv };
    const proc = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    proc.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      rej(new Error(`CLI timed out: ${args.join(" ")}\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
    proc.stdin.end(opts.input ?? "");
  });
}

/** Removes a temp tree, ignoring errors. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
