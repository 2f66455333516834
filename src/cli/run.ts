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
  const daemon = await startDaemon(config, logger, env);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting without draining");
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, "shutting down");
      daemon.close().then(
        () => {
          logger.info("stopped");
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err: String((err as Error)?.name) }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
