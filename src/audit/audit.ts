import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";
import type { Logger } from "pino";
import { ConfigError } from "../config/errors.js";

/** Outcome of an audited operation. */
export type AuditOutcome = "ok" | "error" | "denied";

/** One audit record. Never put a secret in any field; caller input may go in as it is. */
export interface AuditEvent {
  /** Event name, e.g. `key.sign`, `origin.pair`. */
  event: string;
  /** RPC method name, e.g. `SignData`. */
  method: string;
  key_name?: string | undefined;
  remote_addr?: string | undefined;
  principal?: string | undefined;
  /** Browser origin the operation is about (pairing), normalised. */
  origin?: string | undefined;
  outcome: AuditOutcome;
  /** Short reason for a failure (a Connect code name or message without secrets). */
  reason?: string | undefined;
}

/** Longest text an audit field keeps; callers may pass raw caller input. */
const MAX_AUDIT_FIELD = 512;

/**
 * Makes caller-supplied text safe for an audit line: everything outside printable ASCII is
 * escaped (line breaks, bidi controls or look-alike letters could forge a line or make one key
 * or origin read as another to whoever reviews the log) and the length is capped.
 */
export function auditSafe(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const capped = text.length > MAX_AUDIT_FIELD ? `${text.slice(0, MAX_AUDIT_FIELD)}...` : text;
  return capped.replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}

/**
 * The audit logger: a pino child (`audit: true`) and, when configured, a JSONL file opened
 * append-only with mode 0600.
 */
export class AuditLog {
  readonly #log: Logger;
  readonly #fd: number | undefined;

  constructor(logger: Logger, filePath?: string) {
    this.#log = logger.child({ audit: true });
    if (filePath !== undefined) {
      try {
        this.#fd = openSync(
          filePath,
          constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
          0o600,
        );
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new ConfigError(
          `--audit-log: cannot open ${filePath} (${code === "ELOOP" ? "it is a symlink" : code})`,
        );
      }
      const st = fstatSync(this.#fd);
      if (!st.isFile() || (st.mode & 0o077) !== 0) {
        closeSync(this.#fd);
        throw new ConfigError(
          `--audit-log: ${filePath} must be a regular file that only its owner can access`,
        );
      }
    }
  }

  /** Writes one record to the log and to the audit file. */
  record(ev: AuditEvent): void {
    // Every field is escaped here, so no caller can forget to for input it quotes.
    const rec = {
      event: auditSafe(ev.event),
      method: auditSafe(ev.method),
      key_name: auditSafe(ev.key_name),
      remote_addr: auditSafe(ev.remote_addr),
      principal: auditSafe(ev.principal),
      origin: auditSafe(ev.origin),
      outcome: ev.outcome,
      reason: auditSafe(ev.reason),
    };
    // pino stamps its own `time`; the file line carries the same field itself.
    this.#log.info(rec, "audit");
    if (this.#fd !== undefined) {
      writeSync(this.#fd, `${JSON.stringify({ time: new Date().toISOString(), ...rec })}\n`);
    }
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
  }
}
