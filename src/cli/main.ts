import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "../config/errors.js";
import { defaultDataDir } from "../config/paths.js";
import { VERSION } from "../version.js";
import { DEFAULT_GRPC_ADDR, DEFAULT_HTTP_ADDR } from "../wire.js";
import { registerCapabilityCommands } from "./caps.js";
import { registerDocCommands } from "./docs.js";
import { registerInfoCommand } from "./info.js";
import { registerKeyCommands } from "./keys.js";
import { registerOriginCommands } from "./origins.js";
import { runDaemon } from "./run.js";
import { registerServiceCommands } from "./service.js";
import { registerTokenCommands } from "./token.js";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Exit code for bad flags, bad env values and unusable data dirs. */
export const EXIT_USAGE = 2;

/** Builds the commander program. Client subcommands register themselves here. */
export function buildProgram(env: NodeJS.ProcessEnv): Command {
  const program = new Command("seed-daemon")
    .description("Hardened daemon that keeps Ed25519 signing keys and documents")
    .version(VERSION)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .option(
      "--data-dir <dir>",
      `data directory (env SEED_DAEMON_DATA_DIR; default ${defaultDataDir(env)})`,
    )
    .option(
      "--http-addr <host:port>",
      `HTTP/1.1 listener: Connect, gRPC-web, /health (env SEED_DAEMON_HTTP_ADDR; default ${DEFAULT_HTTP_ADDR})`,
    )
    .option(
      "--grpc-addr <host:port>",
      `h2c listener: gRPC (env SEED_DAEMON_GRPC_ADDR; default ${DEFAULT_GRPC_ADDR})`,
    )
    .addOption(new Option("--http-port <port>", "deprecated: --http-addr 127.0.0.1:PORT"))
    .addOption(new Option("--grpc-port <port>", "deprecated: --grpc-addr 127.0.0.1:PORT"))
    .option(
      "--allowed-host <host>",
      "extra accepted Host header, repeatable (env SEED_DAEMON_ALLOWED_HOSTS, comma list)",
      collect,
    )
    .option(
      "--cors-origin <origin>",
      "extra allowed browser origin, repeatable (env SEED_DAEMON_CORS_ORIGINS, comma list; null and app://seed are always allowed)",
      collect,
    )
    .option("--public-only", "serve public data only (env SEED_DAEMON_PUBLIC_ONLY)")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace|silent (default info)")
    .option("--audit-log <file>", "append audit records as JSONL to this file (0600)")
    .option("--auth-token-path <file>", "token file (default <data-dir>/auth.token)")
    .option(
      "--web-token-path <file>",
      "web token file for a web server: read RPCs only (created 0600 if missing; env SEED_DAEMON_WEB_TOKEN wins)",
    )
    .option("--max-request-bytes <n>", "largest request body (default 4 MiB)")
    .option(
      "--max-connections <n>",
      "most connections per listener at once; more are dropped (env SEED_DAEMON_MAX_CONNECTIONS; default 512)",
    )
    .addOption(new Option("--h2-idle-timeout-ms <ms>").hideHelp())
    .option(
      "--ready-fd <fd>",
      'for launchers: once both listeners are bound, write one JSON line {"ready":true,"httpAddr","grpcAddr","pid","version"} to this file descriptor (closed after, unless it is 1 or 2)',
    )
    .option(
      "--exit-with-parent",
      "for launchers: stdin is a pipe from the parent; when it ends (the parent exited, even by SIGKILL), shut down as on SIGTERM",
    )
    .action(async (opts) => {
      process.exitCode = await runDaemon(opts, env);
    });
  registerInfoCommand(program, env);
  registerKeyCommands(program, env);
  registerOriginCommands(program, env);
  registerDocCommands(program, env);
  registerCapabilityCommands(program, env);
  registerServiceCommands(program, env);
  registerTokenCommands(program, env);
  return program;
}

/**
 * CLI entry. Returns the exit code: 0 ok, 1 runtime failure, 2 bad usage or configuration.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`seed-daemon: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}
