import type { Command } from "commander";

/** `seed-daemon origins …` client subcommands (issue 4). */
export function registerOriginCommands(_program: Command, _env: NodeJS.ProcessEnv): void {}
