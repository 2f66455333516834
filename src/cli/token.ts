/**
 * `seed-daemon token …`: client subcommands for the running daemon's full token.
 *
 * The token is never printed: `rotate` says which file holds the new one, and every later
 * command reads that file again (unless `SEED_DAEMON_AUTH_TOKEN` is set in its environment).
 *
 * @module
 */

import type { Command } from "commander";
import { clientAction, output, withClientOptions } from "./client-command.js";

/** Registers `seed-daemon token …`. */
export function registerTokenCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const token = program.command("token").description("manage the daemon's full token");

  withClientOptions(
    token
      .command("rotate")
      .description(
        "replace the full token in its file with a new random one (as SIGHUP does); the old " +
          "token is refused at once, running streams keep running; paired-origin and web tokens " +
          "do not change. Not possible when the daemon's token comes from SEED_DAEMON_AUTH_TOKEN",
      ),
  ).action(
    clientAction(env, async (clients, opts) => {
      const res = await clients.daemon.rotateToken({});
      output(
        opts,
        { rotated: true, tokenPath: res.tokenPath },
        `rotated: the new token is in ${res.tokenPath}\n` +
          "the old token no longer works; give the new one to every client that used it",
      );
    }),
  );
}
