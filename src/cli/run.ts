import { type RawOptions, resolveConfig } from "../config/config.js";
import { createLogger } from "../logger.js";
import { startDaemon } from "../server/daemon.js";

/**
 * Runs the daemon until SIGINT/SIGTERM, then drains and exits 0. Start-up problems are thrown
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
        logger.warn({ signal }, "second signal: exiting without draining");
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, "shutting down");
      daemon.close().then(
        () => {
          logger.info("stopped");
          process.off("SIGINT", handler);
          process.off("SIGTERM", handler);
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
