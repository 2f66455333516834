/**
 * Runs the daemon as a child process of a desktop app (Node, or Electron's main process): a fresh
 * token that lives only in memory and in the child's environment, free ports reported on a
 * ready pipe, and a child that stops when the parent does, however the parent ends.
 *
 * Part of `seed-daemon/client`: imports only `src/wire.ts`, `src/gen/` and npm packages.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { fileURLToPath } from "node:url";
import type { Transport } from "@connectrpc/connect";
import { AUTH_TOKEN_ENV } from "../wire.js";
import {
  createDaemonClients,
  createDaemonTransport,
  type DaemonServiceClients,
  dialUrl,
} from "./transport.js";

/** Default {@link SpawnDaemonOptions.readyTimeoutMs}. */
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** Default {@link SpawnDaemonOptions.stopTimeoutMs}: the daemon's drain (≈6 s) plus room. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** The child's fd that carries the ready line. */
const READY_FD = 3;
/** Longest ready line accepted. */
const MAX_READY_BYTES = 4096;
/** Lines of the child's stderr kept for start-up errors. */
const STDERR_TAIL_LINES = 10;
/** Longest output line passed on whole; longer ones are split. */
const MAX_LINE_CHARS = 64 * 1024;
/** Flags the launcher sets itself. */
const RESERVED_FLAGS = ["--data-dir", "--ready-fd", "--exit-with-parent"];

/** The package's `bin/seed-daemon.js`: two levels above both `src/client/` and `dist/client/`. */
function defaultBinPath(): string {
  return fileURLToPath(new URL("../../bin/seed-daemon.js", import.meta.url));
}

/** Where the child's log lines (JSON on stdout) and error lines (stderr) go. */
export type SpawnDaemonOutput =
  /** Both streams to the parent's stdout and stderr (the default). */
  | "inherit"
  /** Dropped (the last stderr lines are still kept for start-up errors). */
  | "ignore"
  /** Each line, without its newline, to this function. */
  | ((line: string, stream: "stdout" | "stderr") => void);

/** Options of {@link spawnDaemon}. */
export interface SpawnDaemonOptions {
  /** The daemon's data dir (created `0700` if missing). One daemon per data dir. */
  readonly dataDir: string;
  /**
   * More daemon flags (`--cors-origin app://my-app`, `--log-level warn`, …). They come after the
   * launcher's, so `--http-addr` / `--grpc-addr` here replace the default `127.0.0.1:0`.
   * `--data-dir`, `--ready-fd` and `--exit-with-parent` are the launcher's own.
   */
  readonly args?: readonly string[];
  /**
   * The child's environment; default `process.env`. It is copied, never changed, and its
   * `SEED_DAEMON_AUTH_TOKEN` is replaced by the generated token.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** How long start-up may take, in milliseconds; default 30 000. */
  readonly readyTimeoutMs?: number;
  /** How long `stop()` waits after the polite request before it kills; default 10 000. */
  readonly stopTimeoutMs?: number;
  /** The daemon's entry script; default this package's `bin/seed-daemon.js`. */
  readonly binPath?: string;
  /**
   * The Node binary; default `process.execPath`. Under Electron that is Electron itself, run
   * with `ELECTRON_RUN_AS_NODE=1` (set for you when this option is left out).
   */
  readonly execPath?: string;
  /** Default `"inherit"`. */
  readonly output?: SpawnDaemonOutput;
}

/** A daemon started by {@link spawnDaemon}. */
export interface SpawnedDaemon {
  /** The HTTP/1.1 listener (Connect, gRPC-web), e.g. `http://127.0.0.1:41234`. */
  readonly httpUrl: string;
  /** The h2c listener (gRPC, and Connect / gRPC-web over HTTP/2). */
  readonly grpcUrl: string;
  /** The generated full token. It exists only in this process and the child's environment. */
  readonly token: string;
  /** Connect over HTTP/1.1 to {@link httpUrl}, with the token on every call. */
  readonly transport: Transport;
  /** Typed clients over {@link transport}. */
  readonly clients: DaemonServiceClients;
  readonly pid: number;
  readonly version: string;
  /** Settles when the child exits: its exit code, or `null` when a signal ended it. */
  readonly exited: Promise<number | null>;
  /**
   * Asks the daemon to stop (`SIGTERM`; on Windows, closing its parent pipe), waits while it
   * drains, and kills it after `stopTimeoutMs`. Resolves with the exit code (`0` after a clean
   * stop, `null` when it had to be killed). Calling it again returns the same promise.
   */
  stop(): Promise<number | null>;
}

/** A daemon that did not start. */
export class SpawnDaemonError extends Error {
  override readonly name = "SpawnDaemonError";

  /**
   * @param message one line saying what happened, then the child's last stderr lines
   * @param exitCode the child's exit code, `null` if it did not exit by itself (or never started)
   * @param stderr the child's last stderr lines; they never hold the token
   */
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: readonly string[],
  ) {
    super(stderr.length === 0 ? message : `${message}:\n${stderr.join("\n")}`);
  }
}

/** Splits a byte stream into lines (UTF-8 safe); `flush` passes on an unterminated last line. */
function lineSplitter(onLine: (line: string) => void) {
  const decoder = new StringDecoder("utf8");
  let partial = "";
  const feed = (text: string) => {
    partial += text;
    for (;;) {
      const nl = partial.indexOf("\n");
      if (nl < 0) break;
      onLine(partial.slice(0, nl).replace(/\r$/, ""));
      partial = partial.slice(nl + 1);
    }
    while (partial.length > MAX_LINE_CHARS) {
      onLine(partial.slice(0, MAX_LINE_CHARS));
      partial = partial.slice(MAX_LINE_CHARS);
    }
  };
  return {
    push: (chunk: Buffer) => feed(decoder.write(chunk)),
    flush: () => {
      feed(decoder.end());
      if (partial !== "") onLine(partial);
      partial = "";
    },
  };
}

interface ReadyLine {
  readonly httpAddr: string;
  readonly grpcAddr: string;
  readonly pid: number;
  readonly version: string;
}

function parseReadyLine(text: string): ReadyLine | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (
    typeof v !== "object" ||
    v === null ||
    v.ready !== true ||
    typeof v.httpAddr !== "string" ||
    typeof v.grpcAddr !== "string" ||
    typeof v.pid !== "number" ||
    typeof v.version !== "string"
  ) {
    return undefined;
  }
  return { httpAddr: v.httpAddr, grpcAddr: v.grpcAddr, pid: v.pid, version: v.version };
}

function checkOptions(opts: SpawnDaemonOptions): void {
  if (typeof opts?.dataDir !== "string" || opts.dataDir.trim() === "") {
    throw new TypeError("spawnDaemon: dataDir must be the daemon's data directory");
  }
  for (const arg of opts.args ?? []) {
    if (typeof arg !== "string") throw new TypeError("spawnDaemon: args must be strings");
    const flag = arg.split("=", 1)[0] ?? "";
    if (RESERVED_FLAGS.includes(flag)) {
      throw new TypeError(`spawnDaemon: ${flag} is set by the launcher; use the option instead`);
    }
  }
  for (const [name, value] of [
    ["readyTimeoutMs", opts.readyTimeoutMs],
    ["stopTimeoutMs", opts.stopTimeoutMs],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new TypeError(`spawnDaemon: ${name} must be a positive number of milliseconds`);
    }
  }
}

/**
 * Starts the daemon as a child process and resolves once both listeners are bound.
 *
 * - A 32-byte token is generated (base64url) and given to the child only as
 *   `SEED_DAEMON_AUTH_TOKEN` in its own environment: never in argv, never in a file, never in
 *   this process's `process.env`.
 * - The daemon binds `127.0.0.1:0` twice and reports the real addresses on a pipe
 *   (`--ready-fd 3`); nothing polls files.
 * - The child watches a pipe from this process (`--exit-with-parent`, on its stdin): when this
 *   process ends in any way, SIGKILL and crashes included, the OS closes it and the daemon shuts
 *   down as on `SIGTERM`.
 *
 * @throws {TypeError} for bad options (before anything is started).
 * @throws {SpawnDaemonError} (as a rejection) when the child cannot be started, exits before it
 *   is ready or is not ready in time (it is killed then); the message carries the child's last
 *   stderr lines.
 */
export function spawnDaemon(opts: SpawnDaemonOptions): Promise<SpawnedDaemon> {
  try {
    checkOptions(opts);
  } catch (err) {
    return Promise.reject(err);
  }
  const token = randomBytes(32).toString("base64url");
  const electron = opts.execPath === undefined && process.versions.electron !== undefined;
  const env: NodeJS.ProcessEnv = {
    ...(opts.env ?? process.env),
    ...(electron ? { ELECTRON_RUN_AS_NODE: "1" } : {}),
    [AUTH_TOKEN_ENV]: token,
  };
  const args = [
    opts.binPath ?? defaultBinPath(),
    "--data-dir",
    opts.dataDir,
    "--http-addr",
    "127.0.0.1:0",
    "--grpc-addr",
    "127.0.0.1:0",
    "--ready-fd",
    String(READY_FD),
    "--exit-with-parent",
    ...(opts.args ?? []),
  ];
  const output = opts.output ?? "inherit";
  const emit =
    typeof output === "function"
      ? (line: string, stream: "stdout" | "stderr") => {
          try {
            output(line, stream);
          } catch {
            // The caller's logger failing must not take the launcher down.
          }
        }
      : undefined;
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(opts.execPath ?? process.execPath, args, {
      env,
      // stdin is the parent pipe the child watches; fd 3 carries the ready line.
      stdio: [
        "pipe",
        output === "inherit" ? "inherit" : output === "ignore" ? "ignore" : "pipe",
        "pipe",
        "pipe",
      ],
      windowsHide: true,
    });
  } catch (err) {
    // Refused synchronously (an env value that is not a string, …).
    return Promise.reject(err);
  }
  // Failures to spawn are handled below; a later one (a failed kill) is nothing to throw about.
  child.on("error", () => {});
  // Nothing is ever written to the child's stdin; a broken pipe there is not our error.
  child.stdin?.on("error", () => {});

  const redact = (line: string) => line.split(token).join("[redacted]");
  const tail: string[] = [];
  const stderr = lineSplitter((line) => {
    tail.push(redact(line));
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
    emit?.(line, "stderr");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr.push(chunk);
    if (output === "inherit") process.stderr.write(chunk);
  });
  child.stderr?.on("end", () => stderr.flush());
  if (emit !== undefined && child.stdout) {
    const stdout = lineSplitter((line) => emit(line, "stdout"));
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stdout.on("end", () => stdout.flush());
  }

  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      exitCode = code;
      resolve(code);
    });
    // Never spawned (bad execPath): there will be no exit event.
    child.once("error", () => {
      if (child.pid === undefined) {
        exitCode = null;
        resolve(null);
      }
    });
  });

  let stopping: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    stopping ??= (async () => {
      if (exitCode !== undefined) return exitCode;
      if (process.platform === "win32") child.stdin?.end();
      else child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve();
        }, opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      return exited;
    })();
    return stopping;
  };

  return new Promise<SpawnedDaemon>((resolve, reject) => {
    let settled = false;
    const readyPipe = child.stdio[READY_FD] as Readable | null | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(
        `seed-daemon was not ready within ${opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS} ms`,
      );
    }, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);

    function fail(message: string, code: number | null = null) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      readyPipe?.destroy();
      if (exitCode === undefined) child.kill("SIGKILL");
      reject(new SpawnDaemonError(message, code, [...tail]));
    }

    child.once("error", (err) => {
      if (child.pid === undefined) fail(`cannot start seed-daemon: ${err.message}`);
    });
    // After exit, wait for stderr to be read to its end (bounded), so the error shows why.
    child.once("exit", (code, signal) => {
      if (settled) return;
      const why =
        signal !== null
          ? `seed-daemon was killed by ${signal} before it was ready`
          : `seed-daemon exited with code ${code} before it was ready`;
      const done = () => fail(why, code);
      const grace = setTimeout(done, 1_000);
      child.once("close", () => {
        clearTimeout(grace);
        done();
      });
    });

    let buffered = "";
    readyPipe?.setEncoding("utf8");
    readyPipe?.on("error", () => {});
    readyPipe?.on("data", (text: string) => {
      if (settled) return;
      buffered += text;
      const nl = buffered.indexOf("\n");
      if (nl < 0) {
        if (buffered.length > MAX_READY_BYTES) fail("seed-daemon sent an invalid ready line");
        return;
      }
      const ready = parseReadyLine(buffered.slice(0, nl));
      const httpUrl = ready && dialUrl(ready.httpAddr);
      const grpcUrl = ready && dialUrl(ready.grpcAddr);
      if (ready === undefined || httpUrl === undefined || grpcUrl === undefined) {
        fail("seed-daemon sent an invalid ready line");
        return;
      }
      if (ready.pid !== child.pid) {
        fail(`the ready line names pid ${ready.pid}, not the child's ${child.pid}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      readyPipe?.destroy();
      const transport = createDaemonTransport({ baseUrl: httpUrl, token });
      resolve({
        httpUrl,
        grpcUrl,
        token,
        transport,
        clients: createDaemonClients(transport),
        pid: ready.pid,
        version: ready.version,
        exited,
        stop,
      });
    });
  });
}
