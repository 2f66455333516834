import type { Logger } from "pino";
import { pino } from "pino";

/**
 * Paths pino blanks out wherever they appear in a log object. The token and key material are
 * never logged on purpose; this is the net under that rule.
 */
export const REDACT_PATHS: readonly string[] = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "*.headers.authorization",
  "token",
  "*.token",
  "mnemonic",
  "*.mnemonic",
  "passphrase",
  "*.passphrase",
  "password",
  "*.password",
  "seed",
  "*.seed",
  "privateKey",
  "*.privateKey",
];

/** The daemon's one logger: JSON lines to stdout, written synchronously so none are lost at exit. */
export function createLogger(level: string, dest: number = 1): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: [...REDACT_PATHS], censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest, sync: true }),
  );
}

export type { Logger };
