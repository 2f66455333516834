import { closeSync, fstatSync, writeSync } from "node:fs";
import { type RawOptions, resolveConfig } from "../config/config.js";
import { ConfigError } from "../config/errors.js";
import { createLogger } from "../logger.js";
import { startDaemon } from "../server/daemon.js";
import { VERSION } from "../version.js";
import { AUTH_TOKEN_ENV } from "../wire.js";

/** How long the process may take to exit by itself once the daemon is closed. */
const EXIT_GRACE_MS = 1_000;

/** The run command's flags: the daemon's configuration plus how it talks to a launcher. */
export interface RunOptions extends RawOptions {
  /** `--ready-fd`: the descriptor that gets one JSON line once both listeners are bound. */
  readyFd?: string;
  /** `--exit-with-parent`: stop, as on SIGTERM, when stdin reaches end-of-file. */
  exitWithParent?: boolean;
}

/** The ready line written to `--ready-fd`. */
export interface ReadyLine {
  readonly ready: true;
  readonly httpAddr: string;
  readonly grpcAddr: string;
  readonly pid: number;
  readonly version: string;
}

/** What asked the daemon to stop. */
type StopCause =
  | { readonly kind: "signal"; readonly signal: NodeJS.Signals }
  | { readonly kind: "parent" }
  | { readonly kind: "ready-failed" };

/** Checks `--ready-fd` before start-up, so a bad one stops the daemon before it binds. */
function parseReadyFd(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new ConfigError("--ready-fd: expected a file descriptor number, 1 or more (e.g. 3)");
  }
  const fd = Number(value);
  try {
    fstatSync(fd);
  } catch {
    throw new ConfigError(`--ready-fd: ${fd} is not an open file descriptor`);
  }
  return fd;
}

/** Writes the whole line, then closes the descriptor unless it is one of stdin/stdout/stderr. */
function writeReadyLine(fd: number, line: ReadyLine): void {
  const buf = Buffer.from(`${JSON.stringify(line)}\n`, "utf8");
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
  if (fd > 2) closeSync(fd);
}

/**
 * `--exit-with-parent`: stdin must be a pipe (or socket) whose other end the parent holds. The
 * OS closes that end whenever the parent exits, crash and SIGKILL included, which the daemon reads
 * as end-of-file. A terminal or /dev/null would mean "stop at once" or "never", so both are
 * refused (on Windows the handle type is not checked).
 */
function checkParentPipe(): void {
  if (process.platform === "win32") return;
  let ok = false;
  try {
    const st = fstatSync(0);
    ok = st.isFIFO() || st.isSocket();
  } catch {
    // stdin is closed
  }
  if (!ok) {
    throw new ConfigError("--exit-with-parent: stdin must be a pipe from the parent process");
  }
}

/** Reads (and drops) stdin until it ends or fails, then calls `onGone`; returns the undo. */
function watchParent(onGone: () => void): () => void {
  const stdin = process.stdin;
  const drop = () => {};
  stdin.on("data", drop);
  stdin.on("end", onGone);
  stdin.on("error", onGone);
  stdin.resume();
  return () => {
    stdin.off("data", drop);
    stdin.off("end", onGone);
    stdin.off("error", onGone);
    // A stdin still being read would keep the process alive after the daemon closed.
    stdin.destroy();
  };
}

/**
 * Runs the daemon until SIGINT/SIGTERM (or, with `--exit-with-parent`, until stdin ends), then
 * drains (bounded) and exits 0; a second signal exits at once, still removing daemon.json.
 * SIGHUP rotates the full token (`RunningDaemon.rotateToken`) and the daemon keeps running. With
 * `--ready-fd`, writes one {@link ReadyLine} there once both listeners are bound (failing to
 * write it stops the daemon with exit code 1). Start-up problems are thrown as ConfigError (the
 * caller turns them into exit code 2).
 */
/**
 * The one human line a daemon started at a terminal prints once it is ready: where it
 * listens, its data dir and where the token is. Never the token.
 */
export function readyBanner(o: {
  httpAddr: string;
  grpcAddr: string;
  dataDir: string;
  tokenPath: string;
  tokenFromEnv: boolean;
}): string {
  const token = o.tokenFromEnv
    ? `the token comes from ${AUTH_TOKEN_ENV}`
    : `token in ${o.tokenPath}`;
  return (
    `seed-daemon ready: http://${o.httpAddr} (Connect, gRPC-web), ${o.grpcAddr} (gRPC); ` +
    `data in ${o.dataDir}; ${token}`
  );
}

export async function runDaemon(raw: RunOptions, env: NodeJS.ProcessEnv): Promise<number> {
  const config = resolveConfig(raw, env);
  const readyFd = parseReadyFd(raw.readyFd);
  if (raw.exitWithParent === true) checkParentPipe();
  const logger = createLogger(config.logLevel);
  for (const w of config.warnings) logger.warn(w);

  // Handlers go in before start-up: daemon.json (which clients watch) is written before
  // startDaemon returns, and a signal (or the parent leaving) in that window must still mean a
  // clean stop.
  let pending: StopCause | undefined;
  let onStop: (cause: StopCause) => void = (cause) => {
    pending ??= cause;
  };
  const handler = (signal: NodeJS.Signals) => onStop({ kind: "signal", signal });
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  // SIGHUP rotates the full token. Its handler also goes in early: without one, SIGHUP would
  // kill the process. Windows sends it when the console closes, which is no request to rotate.
  let onHangup = () => logger.warn("SIGHUP before the daemon was ready: the token was not rotated");
  const hangup = () => onHangup();
  const watchesHangup = process.platform !== "win32";
  if (watchesHangup) process.on("SIGHUP", hangup);
  const unwatch =
    raw.exitWithParent === true ? watchParent(() => onStop({ kind: "parent" })) : () => {};
  const detach = () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
    if (watchesHangup) process.off("SIGHUP", hangup);
    unwatch();
  };

  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, logger, env);
  } catch (err) {
    detach();
    throw err;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    onHangup = () => daemon.rotateToken();
    onStop = (cause) => {
      if (stopping) {
        // The parent leaving during the drain changes nothing; only a second signal cuts it short.
        if (cause.kind !== "signal") return;
        // The user asked twice: cut connections now, but still leave no daemon.json behind.
        logger.warn({ signal: cause.signal }, "second signal: exiting without draining");
        daemon.closeNow();
        process.exit(0);
      }
      stopping = true;
      const exitCode = cause.kind === "ready-failed" ? 1 : 0;
      logger.info(
        cause.kind === "signal" ? { signal: cause.signal } : { reason: cause.kind },
        "shutting down",
      );
      daemon.close().then(
        () => {
          logger.info("stopped");
          detach();
          // Everything that matters is closed and flushed (the logger and the audit log write
          // synchronously); a handle some library still holds must not keep the process alive.
          setTimeout(() => process.exit(exitCode), EXIT_GRACE_MS).unref();
          resolve(exitCode);
        },
        (err: unknown) => {
          logger.error({ err: String((err as Error)?.name) }, "shutdown failed");
          detach();
          resolve(1);
        },
      );
    };
    // A person at a terminal gets one readable line; the JSON log lines stay as they are.
    if (process.stderr.isTTY) {
      process.stderr.write(
        `${readyBanner({
          httpAddr: daemon.httpAddr,
          grpcAddr: daemon.grpcAddr,
          dataDir: config.dataDir,
          tokenPath: config.authTokenPath,
          tokenFromEnv: env[AUTH_TOKEN_ENV] !== undefined && env[AUTH_TOKEN_ENV] !== "",
        })}\n`,
      );
    }
    if (readyFd !== undefined) {
      try {
        writeReadyLine(readyFd, {
          ready: true,
          httpAddr: daemon.httpAddr,
          grpcAddr: daemon.grpcAddr,
          pid: process.pid,
          version: VERSION,
        });
      } catch (err) {
        // Nobody learns where we listen (the launcher is gone, or the fd is not writable).
        logger.error(
          { code: (err as NodeJS.ErrnoException)?.code ?? "unknown" },
          "cannot write the ready line to --ready-fd",
        );
        pending ??= { kind: "ready-failed" };
      }
    }
    if (pending !== undefined) onStop(pending);
  });
}
