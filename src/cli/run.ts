import { type RawOptions, resolveConfig } from "../config/config.js";
import { createLogger } from "../logger.js";
import { startDaemon } from "../server/daemon.js";

/** How long the process may take to exit by itself once the daemon is closed. */
const EXIT_GRACE_MS = 1_000;

/**
 * Runs the daemon until SIGINT/SIGTERM, then drains (bounded) and exits 0; a second signal exits
 * at once, still removing daemon.json. Start-up problems are thrown
 * as ConfigError (the caller turns them into exit code 2).
 */
export async function runDaemon(raw: RawOptions, env: NodeJS.ProcessEnv): Promise<number> {
  const config = resolveConfig(raw, env);
  const logger = createLogger(config.logLevel);
  for (const w of config.warnings) logger.warn(w);

  // Handlers go in before start-up: daemon.json (which clients watch) is written before
  // startDaemon returns, and a signal in that window must still mean a clean stop.
  let signalled: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
    signalled = signal;
  };
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);

  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, logger, env);
  } catch (err) {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
    throw err;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    onSignal = (signal) => {
      if (stopping) {
        // The user asked twice: cut connections now, but still leave no daemon.json behind.
        logger.warn({ signal }, "second signal: exiting without draining");
        daemon.closeNow();
        process.exit(0);
      }
      stopping = true;
      logger.info({ signal }, "shutting down");
      daemon.close().then(
        () => {
          logger.info("stopped");
          process.off("SIGINT", handler);
          process.off("SIGTERM", handler);
          // Everything that matters is closed and flushed (the logger and the audit log write
          // synchronously); a handle some library still holds must not keep the process alive.
          setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err: String((err as Error)?.name) }, "shutdown failed");
          resolve(1);
        },
      );
    };
    if (signalled !== undefined) onSignal(signalled);
  });
}
