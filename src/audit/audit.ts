import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";
import type { Logger } from "pino";
import { ConfigError } from "../config/errors.js";

/**
 * Outcome of an audited operation: `ok`, `error` or `denied` for a call; `granted` or `denied`
 * for an access decision (a private read).
 */
export type AuditOutcome = "ok" | "error" | "denied" | "granted";

/** One audit record. Never put a secret in any field; caller input may go in as it is. */
export interface AuditEvent {
  /** Event name, e.g. `key.sign`, `origin.pair`, `document.read`. */
  event: string;
  /** RPC method name, e.g. `SignData`. */
  method: string;
  key_name?: string | undefined;
  remote_addr?: string | undefined;
  /** How the caller authenticated: `master` (full token), `web` or `origin` (paired). */
  credential?: string | undefined;
  /** Who acted: the caller's principal, if it has one. */
  principal?: string | undefined;
  /** Browser origin the operation is about (pairing), normalised. */
  origin?: string | undefined;
  /** Account (space) of the document or capability the operation is about. */
  account?: string | undefined;
  /** Document path inside `account`. */
  path?: string | undefined;
  /** CID of the capability involved (for a read: the one that granted it). */
  capability?: string | undefined;
  /** Principal a capability is delegated to. */
  delegate?: string | undefined;
  outcome: AuditOutcome;
  /** Short reason for a failure (a Connect code name or message without secrets). */
  reason?: string | undefined;
}

/**
 * What an audited operation is about. One shape per kind of thing, each mapped onto the
 * record's fields by {@link subjectFields}; fields a call learns late (ImportKey learns its
 * key's name after reading the file) may be filled in while it runs.
 */
export type AuditSubject =
  | {
      readonly kind: "key";
      /** Key name, as given or as learnt. */
      name?: string | undefined;
      /** File the key is read from or written to (ImportKey, ExportKey). */
      file?: string | undefined;
    }
  | { readonly kind: "origin"; origin: string }
  | {
      readonly kind: "document";
      account: string;
      path: string;
      /** CID of the capability that granted access, when one did. */
      capability?: string | undefined;
    }
  | {
      readonly kind: "capability";
      /** CID, once known. */
      capability?: string | undefined;
      account?: string | undefined;
      path?: string | undefined;
      delegate?: string | undefined;
    };

/** The record fields for a subject, and text to append to the record's reason. */
export function subjectFields(subject: AuditSubject): {
  fields: Partial<AuditEvent>;
  reasonSuffix?: string | undefined;
} {
  switch (subject.kind) {
    case "key":
      return {
        fields: { key_name: subject.name },
        // In the reason, as records always had it, so existing log queries keep working.
        reasonSuffix:
          subject.file === undefined ? undefined : `file ${JSON.stringify(subject.file)}`,
      };
    case "origin":
      return { fields: { origin: subject.origin } };
    case "document":
      return {
        fields: { account: subject.account, path: subject.path, capability: subject.capability },
      };
    case "capability":
      return {
        fields: {
          capability: subject.capability,
          account: subject.account,
          path: subject.path,
          delegate: subject.delegate,
        },
      };
  }
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
  #fd: number | undefined;

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
      credential: auditSafe(ev.credential),
      principal: auditSafe(ev.principal),
      origin: auditSafe(ev.origin),
      account: auditSafe(ev.account),
      path: auditSafe(ev.path),
      capability: auditSafe(ev.capability),
      delegate: auditSafe(ev.delegate),
      outcome: auditSafe(ev.outcome),
      reason: auditSafe(ev.reason),
    };
    // pino stamps its own `time`; the file line carries the same field itself.
    this.#log.info(rec, "audit");
    if (this.#fd !== undefined) {
      writeSync(this.#fd, `${JSON.stringify({ time: new Date().toISOString(), ...rec })}\n`);
    }
  }

  /**
   * Closes the audit file. A record made later (a call still running when shutdown's bound ran
   * out) reaches the log only: its descriptor number may already belong to another file.
   */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
