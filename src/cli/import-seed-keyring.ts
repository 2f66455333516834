/**
 * `seed-daemon keys import-seed-keyring [--dev]`: brings the keys of Seed's legacy OS keyring
 * item into the running daemon, under their names.
 *
 * The item is only read ({@link OsKeyring.get}), never written. Each key travels to the daemon
 * through the existing ImportKey RPC, which reads a `.hmkey.json` file: the CLI writes one per
 * key into a fresh `0700` directory inside the daemon's data dir (the one place a sandboxed
 * daemon, e.g. the systemd unit with `PrivateTmp=yes`, is sure to read), sealed under a random
 * one-time password that goes to the daemon in the same authenticated call, and removes it right
 * after. So no seed is written to disk in the clear, not even for a moment.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { defaultDataDir } from "../config/paths.js";
import { codeName } from "../errors.js";
import { HmkeyEncoder, writeHmkeyFile } from "../identity/hmkey.js";
import type { Argon2idParams } from "../identity/kdf.js";
import { OsKeyringError, openOsKeyring } from "../identity/os-keyring.js";
import { principalToString } from "../identity/principal.js";
import {
  parseSeedKeyring,
  SEED_KEYRING_ACCOUNT,
  type SeedKeyringEntry,
  seedKeyringService,
} from "../identity/seed-keyring.js";
import { quoted } from "../util/text.js";
import { CliError, type CommonClientOptions, printable } from "./client-command.js";
import type { DaemonClients } from "./connect.js";

/** Options of `keys import-seed-keyring`. */
export interface ImportSeedKeyringOptions extends CommonClientOptions {
  /** Read Seed's development item (`seed-daemon-dev`) instead of `seed-daemon-main`. */
  dev?: boolean;
}

/**
 * Argon2id costs of the transfer files. Their password is 32 random bytes that exist only in
 * this process and in the ImportKey request, so stretching it adds nothing; the smallest costs
 * the daemon accepts keep an import of many keys instant on both sides.
 */
const TRANSFER_ARGON2ID: Argon2idParams = Object.freeze({ t: 1, m: 64, p: 1 });

interface Imported {
  name: string;
  publicKey: string;
  accountId: string;
}
interface Skipped {
  name: string;
  accountId: string;
  reason: string;
}
interface Failed {
  name: string;
  error: string;
}

/** A key name as the report shows it: quoted and cut like every echoed input, and printable. */
function shown(name: string): string {
  return printable(quoted(name));
}

/** Where the transfer files go: inside the data dir when it is here, else the temp dir. */
async function transferBase(opts: CommonClientOptions, env: NodeJS.ProcessEnv): Promise<string> {
  const dataDir = resolve(opts.dataDir ?? env.SEED_DAEMON_DATA_DIR ?? defaultDataDir(env));
  const isDir = await stat(dataDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  return isDir ? dataDir : tmpdir();
}

/** Reads and decodes Seed's item; every failure is one clear line without a secret. */
function readSeedItem(env: NodeJS.ProcessEnv, service: string): SeedKeyringEntry[] {
  const where = `service ${service}, account ${SEED_KEYRING_ACCOUNT}`;
  const opened = openOsKeyring(env);
  if (opened.keyring === null) {
    throw new CliError(`cannot read Seed's keys (${where}): ${opened.reason}`);
  }
  let secret: string | null;
  try {
    secret = opened.keyring.get(service, SEED_KEYRING_ACCOUNT);
  } catch (err) {
    if (err instanceof OsKeyringError) {
      throw new CliError(`cannot read Seed's keys (${where}): ${err.message}`);
    }
    throw new CliError(`cannot read Seed's keys (${where}): the OS keychain failed`);
  }
  if (secret === null) {
    const hint = service === seedKeyringService(false) ? " (Seed's development keys: --dev)" : "";
    throw new CliError(`no Seed keys here: the OS keychain has no item for ${where}${hint}`);
  }
  return parseSeedKeyring(secret);
}

/** Daemon answers that concern one key (its name, or the key itself); the rest stop the run. */
function isPerKeyRefusal(err: unknown): err is ConnectError {
  return (
    err instanceof ConnectError &&
    (err.code === Code.InvalidArgument || err.code === Code.AlreadyExists)
  );
}

/**
 * Runs the import against a connected daemon and prints the per-key report.
 *
 * @throws {CliError} when the keychain or its item cannot be read, or (after the report) when
 *   any key could not be imported.
 */
export async function importSeedKeyring(
  clients: DaemonClients,
  opts: ImportSeedKeyringOptions,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const service = seedKeyringService(opts.dev === true);
  const entries = readSeedItem(env, service);
  const imported: Imported[] = [];
  const skipped: Skipped[] = [];
  const failed: Failed[] = [];
  const say = (line: string) => {
    if (opts.json !== true) process.stdout.write(`${line}\n`);
  };
  const fail = (name: string, error: string) => {
    failed.push({ name, error });
    say(`failed:   ${shown(name)}: ${error}`);
  };
  const skip = (name: string, accountId: string, reason: string) => {
    skipped.push({ name, accountId, reason });
    say(`skipped:  ${shown(name)} (${accountId}): ${reason}`);
  };

  let dir: string | undefined;
  let encoder: HmkeyEncoder | undefined;
  try {
    const existing = (await clients.daemon.listKeys({})).keys;
    const byName = new Map(existing.map((k) => [k.name, k.publicKey]));
    const byKey = new Map(existing.map((k) => [k.publicKey, k.name]));
    const password = randomBytes(32).toString("base64url");
    for (const entry of entries) {
      if (!entry.ok) {
        fail(entry.name, entry.problem);
        continue;
      }
      if (entry.name === "") {
        // ImportKey would name it after its public key; an empty name is not what Seed meant.
        fail(entry.name, "the key name is empty");
        continue;
      }
      const accountId = principalToString(entry.publicKey);
      const taken = byName.get(entry.name);
      if (taken === accountId) {
        skip(entry.name, accountId, "already in the daemon under this name");
        continue;
      }
      if (taken !== undefined) {
        skip(
          entry.name,
          accountId,
          `the daemon has a different key (${taken}) under this name; rename that one ` +
            "(seed-daemon keys rename) and run this again to bring Seed's in",
        );
        continue;
      }
      const other = byKey.get(accountId);
      if (other !== undefined) {
        skip(entry.name, accountId, `already in the daemon as ${shown(other)}`);
        continue;
      }
      dir ??= await mkdtemp(join(await transferBase(opts, env), ".seed-import-"));
      encoder ??= await HmkeyEncoder.create(password, { argon2: TRANSFER_ARGON2ID });
      const filePath = join(dir, `${imported.length + skipped.length + failed.length}.hmkey.json`);
      try {
        await writeHmkeyFile(filePath, encoder.encode(entry.seed));
        const key = await clients.daemon.importKey({ filePath, password, name: entry.name });
        if (key.publicKey !== accountId) {
          fail(entry.name, "the daemon reported a different public key than Seed's item holds");
          continue;
        }
        imported.push({ name: key.name, publicKey: key.publicKey, accountId: key.accountId });
        byName.set(key.name, key.publicKey);
        byKey.set(key.publicKey, key.name);
        say(`imported: ${shown(key.name)} (${key.accountId})`);
      } catch (err) {
        if (!isPerKeyRefusal(err)) throw err;
        if (err.code === Code.AlreadyExists) skip(entry.name, accountId, err.rawMessage);
        else fail(entry.name, `${codeName(err.code)}: ${err.rawMessage}`);
      } finally {
        await rm(filePath, { force: true });
      }
    }
  } finally {
    encoder?.dispose();
    for (const entry of entries) if (entry.ok) entry.seed.fill(0);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  const item = `service ${service}, account ${SEED_KEYRING_ACCOUNT}`;
  if (opts.json === true) {
    process.stdout.write(
      `${JSON.stringify({ service, account: SEED_KEYRING_ACCOUNT, imported, skipped, failed }, null, 2)}\n`,
    );
  } else {
    say(
      entries.length === 0
        ? `Seed's keychain item (${item}) holds no keys; nothing to import`
        : `${imported.length} imported, ${skipped.length} skipped, ${failed.length} failed ` +
            `from Seed's keychain item (${item}), which was left unchanged`,
    );
  }
  if (failed.length > 0) {
    throw new CliError(
      `${failed.length} of ${entries.length} keys in Seed's keychain item could not be imported`,
    );
  }
}
