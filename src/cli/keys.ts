/**
 * `seed-daemon keys …`: client subcommands for the daemon's signing keys.
 *
 * Secrets never come from argv (see `prompt.ts`): `register` reads the mnemonic and an optional
 * BIP-39 passphrase from stdin (first and second line) or prompts for them; `import` and
 * `export` read a password from stdin with `--password-stdin` or prompt on a terminal. Relative
 * file paths are resolved against the CLI's working directory before they are sent, because the
 * daemon only accepts absolute paths. `import-seed-keyring` reads Seed's OS keychain item and
 * imports its keys through ImportKey (see `import-seed-keyring.ts`).
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { NamedKey } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { generateMnemonic, MNEMONIC_WORD_COUNTS } from "../identity/mnemonic.js";
import {
  CliError,
  type CommonClientOptions,
  clientAction,
  output,
  table,
  withClientOptions,
} from "./client-command.js";
import { type ImportSeedKeyringOptions, importSeedKeyring } from "./import-seed-keyring.js";
import {
  promptNewSecret,
  promptSecret,
  readAllStdin,
  readSecretLine,
  readStdinLines,
  stdinIsTTY,
} from "./prompt.js";
import { registerRekeyCommand } from "./rekey.js";

/** Largest message `sign` reads from stdin or a file; the daemon's own limit is lower by default. */
const MAX_SIGN_INPUT_BYTES = 64 * 1024 * 1024;

interface GenMnemonicOptions extends CommonClientOptions {
  words?: number;
}

interface RegisterOptions extends CommonClientOptions {
  name?: string;
}

interface NewKeyOptions extends CommonClientOptions {
  name?: string;
  words?: number;
}

interface ImportOptions extends CommonClientOptions {
  name?: string;
  passwordStdin?: boolean;
}

interface ExportOptions extends CommonClientOptions {
  passwordStdin?: boolean;
}

interface DeleteAllOptions extends CommonClientOptions {
  yes?: boolean;
}

interface SignOptions extends CommonClientOptions {
  dataHex?: string;
  dataFile?: string;
}

function parseWordCount(value: string): number {
  if (!MNEMONIC_WORD_COUNTS.includes(Number(value)) || !/^\d+$/.test(value)) {
    throw new InvalidArgumentError("word count must be 12, 15, 18, 21 or 24");
  }
  return Number(value);
}

function keyJson(key: NamedKey) {
  return { name: key.name, publicKey: key.publicKey, accountId: key.accountId };
}

function keyHuman(verb: string, key: NamedKey): string {
  return `${verb} ${key.name}\npublic key: ${key.publicKey}\naccount:    ${key.accountId}`;
}

function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** The mnemonic and BIP-39 passphrase for `register`: prompted on a terminal, else stdin lines. */
async function readMnemonicAndPassphrase(): Promise<{ words: string[]; passphrase: string }> {
  let mnemonic: string;
  let passphrase: string;
  if (stdinIsTTY()) {
    mnemonic = await promptSecret("mnemonic (input hidden): ");
    passphrase = await promptNewSecret("BIP-39 passphrase (empty for none, input hidden): ");
  } else {
    [mnemonic = "", passphrase = ""] = await readStdinLines(2);
  }
  const words = mnemonic.split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) {
    throw new CliError(
      "no mnemonic: pipe it as the first line of stdin (a BIP-39 passphrase, if any, on the second)",
      2,
    );
  }
  return { words, passphrase };
}

/** The data `sign` signs: `--data-hex`, `--data-file`, or all of stdin. */
async function readSignData(opts: SignOptions): Promise<Uint8Array> {
  if (opts.dataHex !== undefined) {
    const hex = opts.dataHex;
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      throw new CliError("--data-hex: not hex (expected an even number of hex digits)", 2);
    }
    return Buffer.from(hex, "hex");
  }
  if (opts.dataFile !== undefined) {
    try {
      return await readFile(resolve(opts.dataFile));
    } catch (err) {
      throw new CliError(
        `--data-file: cannot read ${opts.dataFile} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        2,
      );
    }
  }
  if (stdinIsTTY()) {
    throw new CliError("no data: pass --data-hex, --data-file or pipe the data on stdin", 2);
  }
  return readAllStdin(MAX_SIGN_INPUT_BYTES, "data").then((b) => new Uint8Array(b));
}

/** True for the daemon's "this key file needs a password" answer. */
function isPasswordRequired(err: unknown): boolean {
  return (
    err instanceof ConnectError &&
    err.code === Code.InvalidArgument &&
    err.rawMessage.startsWith("password required")
  );
}

/** Registers `seed-daemon keys …`. */
export function registerKeyCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const keys = program
    .command("keys")
    .description(
      "signing keys: new, gen-mnemonic, register, list, rename, delete, delete-all, import, " +
        "import-seed-keyring, export, sign, rekey",
    );
  // Offline (no daemon, no RPC): it works on the data dir of a stopped daemon.
  registerRekeyCommand(keys, env);

  // Needs no daemon: the words are made here and stored nowhere.
  // The client options are accepted (and unused) so that scripts passing them keep working.
  withClientOptions(
    keys
      .command("gen-mnemonic")
      .description("generate BIP-39 mnemonic words (nothing is stored; no daemon needed)")
      .option("--words <n>", "12, 15, 18, 21 or 24", parseWordCount, 12),
  ).action((opts: GenMnemonicOptions) => {
    const mnemonic = generateMnemonic(opts.words ?? 12);
    output(opts, { mnemonic }, mnemonic.join(" "));
    if (process.stderr.isTTY) {
      note("keep these words secret and offline: anyone who has them controls the key");
    }
  });

  withClientOptions(
    keys
      .command("new")
      .description(
        "create a key in one step: generate mnemonic words, show them once to write down, register them",
      )
      .requiredOption("--name <name>", "unique name for the key")
      .option("--words <n>", "12, 15, 18, 21 or 24", parseWordCount, 12),
  ).action(
    clientAction(env, async (clients, opts: NewKeyOptions) => {
      const words = generateMnemonic(opts.words ?? 12);
      if (stdinIsTTY() && process.stderr.isTTY && opts.json !== true) {
        note(
          `\n  ${words.join(" ")}\n\nWrite these ${words.length} words down and keep them offline: ` +
            "they are the only backup of the key, and anyone who has them controls it.",
        );
        await promptNewSecret("press Enter once they are written down (input hidden): ");
        const key = await clients.daemon.registerKey({ mnemonic: words, name: opts.name ?? "" });
        output(opts, keyJson(key), keyHuman("registered:", key));
        return;
      }
      // Not on a terminal: the words go to stdout once, with the key, for the caller to keep.
      const key = await clients.daemon.registerKey({ mnemonic: words, name: opts.name ?? "" });
      output(
        opts,
        { ...keyJson(key), mnemonic: words },
        `${keyHuman("registered:", key)}\nmnemonic:   ${words.join(" ")}`,
      );
    }),
  );

  withClientOptions(
    keys
      .command("register")
      .description(
        "derive a key from a mnemonic and store it; reads the mnemonic from stdin's first line " +
          "(a BIP-39 passphrase, if any, from the second) or prompts for it",
      )
      .requiredOption("--name <name>", "unique name for the key"),
  ).action(
    clientAction(env, async (clients, opts: RegisterOptions) => {
      const { words, passphrase } = await readMnemonicAndPassphrase();
      const key = await clients.daemon.registerKey({
        mnemonic: words,
        passphrase,
        name: opts.name ?? "",
      });
      output(opts, keyJson(key), keyHuman("registered:", key));
    }),
  );

  withClientOptions(keys.command("list").description("list the keys (public parts only)")).action(
    clientAction(env, async (clients, opts) => {
      const res = await clients.daemon.listKeys({});
      const list = res.keys.map(keyJson);
      const human =
        list.length === 0
          ? "no keys"
          : table(
              ["NAME", "PUBLIC KEY"],
              list.map((k) => [k.name, k.publicKey]),
            );
      output(opts, { keys: list }, human);
    }),
  );

  withClientOptions(
    keys.command("rename <current-name> <new-name>").description("rename a key"),
  ).action(
    clientAction(env, async (clients, opts, currentName: string, newName: string) => {
      const key = await clients.daemon.updateKey({ currentName, newName });
      output(
        opts,
        { previousName: currentName, ...keyJson(key) },
        `renamed: ${currentName} -> ${key.name}\npublic key: ${key.publicKey}`,
      );
    }),
  );

  withClientOptions(
    keys.command("delete <name>").description("delete a key (export it first to keep it)"),
  ).action(
    clientAction(env, async (clients, opts, name: string) => {
      await clients.daemon.deleteKey({ name });
      output(opts, { name, deleted: true }, `deleted: ${name}`);
    }),
  );

  withClientOptions(
    keys
      .command("delete-all")
      .description("delete every key")
      .option("--yes", "do not ask for confirmation (required when stdin is not a terminal)"),
  ).action(
    clientAction(env, async (clients, opts: DeleteAllOptions) => {
      if (opts.yes !== true) {
        if (!stdinIsTTY()) {
          throw new CliError("refusing to delete every key without --yes", 2);
        }
        const answer = await promptSecret('type "delete all" to delete every key: ');
        if (answer.trim() !== "delete all") throw new CliError("not confirmed; nothing deleted");
      }
      await clients.daemon.deleteAllKeys({});
      output(opts, { deletedAll: true }, "deleted all keys");
    }),
  );

  withClientOptions(
    keys
      .command("import <file>")
      .description("import a key from a .hmkey.json file (read by the daemon)")
      .option(
        "--name <name>",
        "name for the key (default: the name in the file, else its public key)",
      )
      .option("--password-stdin", "read the file's password from stdin's first line"),
  ).action(
    clientAction(env, async (clients, opts: ImportOptions, file: string) => {
      const filePath = resolve(file);
      const name = opts.name ?? "";
      let password = "";
      if (opts.passwordStdin === true) {
        password = await readSecretLine("key file password (input hidden): ");
      }
      let key: NamedKey;
      try {
        key = await clients.daemon.importKey({ filePath, password, name });
      } catch (err) {
        // Without --password-stdin on a terminal: ask only once the daemon says it is needed.
        if (!(isPasswordRequired(err) && password === "" && stdinIsTTY())) throw err;
        password = await promptSecret("key file password (input hidden): ");
        key = await clients.daemon.importKey({ filePath, password, name });
      }
      output(opts, keyJson(key), keyHuman("imported:", key));
    }),
  );

  withClientOptions(
    keys
      .command("import-seed-keyring")
      .description(
        "import the keys of Seed's OS keychain item (service seed-daemon-main, account " +
          "parentCollection) under their names, skipping names that exist; Seed's item is " +
          "only read, never changed",
      )
      .option("--dev", "read Seed's development item (service seed-daemon-dev) instead"),
  ).action(
    clientAction(env, (clients, opts: ImportSeedKeyringOptions) =>
      importSeedKeyring(clients, opts, env),
    ),
  );

  withClientOptions(
    keys
      .command("export <name> <file>")
      .description(
        "export a key to a new .hmkey.json file (written by the daemon, mode 0600, never " +
          "overwritten); on a terminal, prompts for an optional password",
      )
      .option("--password-stdin", "encrypt with a password read from stdin's first line"),
  ).action(
    clientAction(env, async (clients, opts: ExportOptions, name: string, file: string) => {
      const filePath = resolve(file);
      let password = "";
      if (opts.passwordStdin === true) {
        password = await readSecretLine("password for the key file (input hidden): ");
        if (password === "") throw new CliError("--password-stdin: the password is empty", 2);
      } else if (stdinIsTTY()) {
        password = await promptNewSecret(
          "password for the key file (empty for none, input hidden): ",
        );
      }
      const res = await clients.daemon.exportKey({ name, filePath, password });
      const encrypted = password !== "";
      if (!encrypted && !opts.json) {
        note("note: the key file is not encrypted; anyone who can read it controls the key");
      }
      output(
        opts,
        { name, filePath: res.filePath, publicKey: res.publicKey, encrypted },
        `exported: ${name} -> ${res.filePath}\npublic key: ${res.publicKey}\nencrypted:  ${encrypted}`,
      );
    }),
  );

  withClientOptions(
    keys
      .command("sign <name>")
      .description("sign data with a key (Ed25519); data from --data-hex, --data-file or stdin")
      .addOption(new Option("--data-hex <hex>", "the data, hex-encoded").conflicts("dataFile"))
      .addOption(new Option("--data-file <file>", "read the data from this file")),
  ).action(
    clientAction(env, async (clients, opts: SignOptions, name: string) => {
      const data = await readSignData(opts);
      const res = await clients.daemon.signData({ signingKeyName: name, data });
      const hex = Buffer.from(res.signature).toString("hex");
      output(
        opts,
        {
          name,
          signature: hex,
          signatureBase64: Buffer.from(res.signature).toString("base64"),
        },
        hex,
      );
    }),
  );
}
