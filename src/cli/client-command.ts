import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { ConfigError } from "../config/errors.js";
import { codeName } from "../errors.js";
import { connectToDaemon, type DaemonClients } from "./connect.js";

/** Options every client subcommand accepts. */
export interface CommonClientOptions {
  dataDir?: string;
  httpAddr?: string;
  authTokenPath?: string;
  json?: boolean;
}

/** Adds the options every client subcommand shares. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "daemon data directory (env SEED_DAEMON_DATA_DIR)")
    .option("--http-addr <host:port>", "daemon HTTP address (default: from daemon.json)")
    .option("--auth-token-path <file>", "token file (default <data-dir>/auth.token)")
    .option("--json", "machine-readable JSON output");
}

/** Thrown by a command for a clear one-line failure with a chosen exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** One line for a failed call: never a stack, never a secret. */
export function describeError(err: unknown, baseUrl: string | undefined): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unavailable || err.code === Code.Unknown) {
      return `cannot reach the daemon at ${baseUrl ?? "its address"}: is it running?`;
    }
    if (err.code === Code.Unauthenticated) {
      return "the daemon refused the token (unauthenticated): check SEED_DAEMON_AUTH_TOKEN or the token file";
    }
    return `${codeName(err.code)}: ${err.rawMessage}`;
  }
  if (err instanceof ConfigError || err instanceof CliError) return err.message;
  return (err as Error)?.message ?? String(err);
}

/**
 * Wraps a client action: connects, runs it, and turns any failure into one line on stderr
 * and a non-zero exit code.
 */
export function clientAction<A extends unknown[]>(
  env: NodeJS.ProcessEnv,
  run: (clients: DaemonClients, opts: CommonClientOptions, ...args: A) => Promise<void>,
) {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as CommonClientOptions;
    const args = all.slice(0, -2) as A;
    let clients: DaemonClients | undefined;
    try {
      clients = connectToDaemon(opts, env);
      await run(clients, opts, ...args);
    } catch (err) {
      process.stderr.write(`seed-daemon: ${describeError(err, clients?.baseUrl)}\n`);
      process.exitCode =
        err instanceof CliError ? err.exitCode : err instanceof ConfigError ? 2 : 1;
    }
  };
}

/** Prints a result: JSON with --json, else the human text. */
export function output(opts: CommonClientOptions, json: unknown, human: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
}

/** Left-aligned columns separated by two spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * Text that came from elsewhere (a synced document, a stored capability) as a terminal may show
 * it: control, line-separator and bidi-override characters become `\u…` escapes, so a title or
 * label cannot move the cursor, recolour the screen or reorder what follows it.
 */
export function printable(text: string): string {
  return text.replace(
    /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu,
    (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Every item of a paginated list RPC: calls `page` with `""`, then with each `nextPageToken`
 * until one is empty. A token the daemon already returned ends the walk with an error instead
 * of looping forever.
 */
export async function allPages<R extends { nextPageToken: string }, T>(
  page: (pageToken: string) => Promise<R>,
  items: (res: R) => readonly T[],
): Promise<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  let token = "";
  for (;;) {
    const res = await page(token);
    out.push(...items(res));
    token = res.nextPageToken;
    if (token === "") return out;
    if (seen.has(token)) throw new CliError("the daemon returned the same page token twice");
    seen.add(token);
  }
}
