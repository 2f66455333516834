/**
 * `seed-daemon keys rekey`: wraps the keystore's data key under a new key-encryption key (KEK).
 *
 * Offline, on the data dir, with the daemon stopped: the running daemon holds the unwrapped data
 * key and needs no KEK until its next start, and a command that needs no RPC needs no change to
 * the wire contract. It reads the same environment as the daemon (the current KEK must open the
 * keystore), then:
 *
 * 1. takes the new KEK: `--new-kek-file` (the user's, for the file and variable sources), or a
 *    fresh one for `--to keychain` / `--to generated-file` (default: the source in use), stored
 *    under a new keychain account or file name, durably, before anything else; or, for
 *    `--to passphrase`, a new passphrase from stdin or the terminal;
 * 2. wraps the data key under it in one `seed.db` transaction (the sealed seeds are not touched),
 *    with `secure_delete` and a WAL checkpoint so the old wrapped key leaves the disk;
 * 3. only then retires the old KEK if the daemon made it (removes the generated file, empties
 *    the keychain item).
 *
 * A crash before 2 commits leaves the keystore on the old KEK (and an unused new secret); after
 * it, on the new one (and an old secret that opens nothing current). Each attempt leaves one
 * `key.rekey` audit record.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { AuditLog, type AuditOutcome } from "../audit/audit.js";
import { resolveConfig } from "../config/config.js";
import { ConfigError } from "../config/errors.js";
import { isIdentityError } from "../identity/errors.js";
import {
  describeKekSource,
  KEK_ENV,
  KEK_FILE_ENV,
  type KekDescriptor,
  PASSPHRASE_ENV,
  type RekeyTarget,
} from "../identity/kek.js";
import { createLogger } from "../logger.js";
import { isProcessAlive, readDaemonFile } from "../server/daemon-file.js";
import { DATABASE_FILE_NAME } from "../store/db.js";
import { type OpenedKeystore, openKeystore } from "../store/open-keystore.js";
import { CliError, output } from "./client-command.js";
import { promptNewSecret, readSecretLine, stdinIsTTY } from "./prompt.js";

/** Audit event of a rekey. */
export const REKEY_EVENT = "key.rekey";

/** Where `--to` may point. */
const TARGETS = ["keychain", "generated-file", "passphrase"] as const;

interface RekeyOptions {
  dataDir?: string;
  to?: (typeof TARGETS)[number];
  newKekFile?: string;
  auditLog?: string;
  logLevel?: string;
  json?: boolean;
}

/** The new passphrase: prompted twice on a terminal, else the first line of stdin. */
async function readNewPassphrase(): Promise<string> {
  const passphrase = stdinIsTTY()
    ? await promptNewSecret("new keystore passphrase (input hidden): ")
    : await readSecretLine("");
  if (passphrase === "") {
    throw new CliError(
      "no new passphrase: type it at the prompt, or pipe it as the first line of stdin",
      2,
    );
  }
  return passphrase;
}

/** What to run after a rekey so that the next start finds the new KEK. */
function nextStep(env: NodeJS.ProcessEnv, next: KekDescriptor): string | undefined {
  const explicit = [KEK_FILE_ENV, KEK_ENV].filter((k) => (env[k] ?? "") !== "");
  if (next.source === "file") {
    return `start the daemon with ${KEK_FILE_ENV}=${next.path}${explicit.includes(KEK_ENV) ? ` and without ${KEK_ENV}` : ""} (or put this file's contents where its secret is now)`;
  }
  if (next.source === "passphrase") {
    return `set ${PASSPHRASE_ENV} to the new passphrase before the daemon's next start${explicit.length > 0 ? `, and unset ${explicit.join(" and ")}` : ""}`;
  }
  if (explicit.length > 0) {
    return `unset ${explicit.join(" and ")} before the daemon's next start: it wins over ${describeKekSource(next)}`;
  }
  return undefined;
}

async function target(opts: RekeyOptions, current: KekDescriptor): Promise<RekeyTarget> {
  if (opts.newKekFile !== undefined) return { to: "file", path: resolve(opts.newKekFile) };
  const to = opts.to ?? current.source;
  if (to === "file" || to === "env") {
    throw new ConfigError(
      `the KEK comes from ${describeKekSource(current)}: give the new one with --new-kek-file PATH (make it with: openssl rand -base64 32), or pick --to keychain, generated-file or passphrase`,
    );
  }
  if (to === "passphrase") return { to, passphrase: await readNewPassphrase() };
  return { to };
}

/**
 * Runs `keys rekey`. Prints one line and returns the exit code: 0, 1 for a failure, 2 for bad
 * usage or configuration (a wrong or missing KEK included).
 */
export async function runRekey(opts: RekeyOptions, env: NodeJS.ProcessEnv): Promise<number> {
  let audit: AuditLog | undefined;
  let opened: OpenedKeystore | undefined;
  let from: KekDescriptor | undefined;
  const record = (outcome: AuditOutcome, reason: string) =>
    audit?.record({ event: REKEY_EVENT, method: "keys rekey", outcome, reason });
  try {
    const config = resolveConfig(
      { dataDir: opts.dataDir, auditLog: opts.auditLog, logLevel: opts.logLevel },
      env,
    );
    const dataDir = config.dataDir;
    // The audit record goes to the log (stderr here) and, when configured, the audit file.
    const logger = createLogger(config.logLevel, 2);
    audit = new AuditLog(logger, config.auditLogPath);
    if (!existsSync(join(dataDir, DATABASE_FILE_NAME))) {
      throw new ConfigError(`no keystore in ${dataDir}: there is no ${DATABASE_FILE_NAME}`);
    }
    const other = readDaemonFile(dataDir);
    if (other !== undefined && other.pid !== process.pid && isProcessAlive(other.pid)) {
      throw new ConfigError(
        `a seed-daemon (pid ${other.pid}) is using ${dataDir}; stop it first (rekey works on a stopped daemon's data dir)`,
      );
    }
    opened = await openKeystore({ dataDir, env });
    for (const notice of opened.notices) logger.warn(notice);
    const { keystore, resolver } = opened;
    from = keystore.kekDescriptor;
    const next = await resolver.replacement(await target(opts, from));
    let previous: KekDescriptor;
    try {
      previous = keystore.rekey(next.kek);
    } catch (err) {
      next.discard();
      throw err;
    } finally {
      next.kek.dispose();
    }
    const to = next.kek.descriptor;
    const retired = resolver.retire(previous);
    record("ok", `KEK ${previous.source} -> ${to.source}`);
    const step = nextStep(env, to);
    output(
      opts,
      { dataDir, from: previous.source, to: to.source, retired, next: step ?? null },
      [
        `rekeyed: the data key of ${join(dataDir, DATABASE_FILE_NAME)} is now wrapped by a KEK from ${describeKekSource(to)}; the sealed keys were not touched`,
        `the KEK from ${describeKekSource(previous)} no longer opens it; ${retired}`,
        ...(step === undefined ? [] : [`next: ${step}`]),
      ].join("\n"),
    );
    return 0;
  } catch (err) {
    const usage =
      err instanceof ConfigError ||
      (err instanceof CliError && err.exitCode === 2) ||
      isIdentityError(err, "failed_precondition");
    const message =
      err instanceof ConfigError || err instanceof CliError || isIdentityError(err)
        ? err.message
        : `rekey failed (${(err as NodeJS.ErrnoException)?.code ?? (err as Error)?.name ?? "error"}); nothing was changed`;
    record("error", from === undefined ? message : `KEK ${from.source}: ${message}`);
    process.stderr.write(`seed-daemon: ${message}\n`);
    return err instanceof CliError ? err.exitCode : usage ? 2 : 1;
  } finally {
    opened?.keystore.dispose();
    opened?.db.close();
    audit?.close();
  }
}

/** Registers `seed-daemon keys rekey` on the `keys` command. */
export function registerRekeyCommand(keys: Command, env: NodeJS.ProcessEnv): void {
  keys
    .command("rekey")
    .description(
      "wrap the keystore's data key under a new key-encryption key (KEK); the sealed keys are not " +
        "touched. Offline: stop the daemon first, and run it with the daemon's environment",
    )
    .option("--data-dir <dir>", "daemon data directory (env SEED_DAEMON_DATA_DIR)")
    .addOption(
      new Option(
        "--to <source>",
        "where the new KEK comes from (default: the source in use): keychain and generated-file " +
          "make a new random one, passphrase reads a new passphrase from stdin or the terminal",
      )
        .choices(TARGETS)
        .conflicts("newKekFile"),
    )
    .option(
      "--new-kek-file <file>",
      "wrap under the KEK in this file (32 bytes base64, mode 0600 or 0400, yours); start the " +
        `daemon with ${KEK_FILE_ENV} pointing at it afterwards`,
    )
    .option(
      "--audit-log <file>",
      "also append the audit record to this JSONL file (env SEED_DAEMON_AUDIT_LOG)",
    )
    .option("--json", "machine-readable JSON output")
    .action(async (_opts: RekeyOptions, cmd: Command) => {
      process.exitCode = await runRekey(cmd.optsWithGlobals() as RekeyOptions, env);
    });
}
