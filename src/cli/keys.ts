import type { Command } from "commander";

/** `seed-daemon keys …` client subcommands (issue 3). */
export function registerKeyCommands(_program: Command, _env: NodeJS.ProcessEnv): void {}
