/**
 * `seed-daemon service install|uninstall|status`: runs the daemon as the user's background
 * service, started at login and restarted when it fails.
 *
 * - Linux: a systemd user unit in `$XDG_CONFIG_HOME/systemd/user/` (default `~/.config/…`),
 *   enabled and started with `systemctl --user`. Only per-user services: the daemon keeps one
 *   user's keys, so it belongs in that user's service manager, and `--user` is required.
 * - macOS: a launchd agent in `~/Library/LaunchAgents/`, loaded with `launchctl bootstrap`.
 * - Windows: not installed; `install` prints a Scheduled Task command (docs/service.md).
 *
 * The files themselves come from the pure generators in `service-files.ts`. `SEED_DAEMON_SYSTEMCTL`
 * and `SEED_DAEMON_LAUNCHCTL` name another program to run instead of `systemctl` / `launchctl`;
 * set to the empty string, the CLI acts as if there were none (tests use both).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { request } from "node:http";
import { isIP } from "node:net";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { parseListenAddress } from "../config/address.js";
import { ConfigError } from "../config/errors.js";
import { defaultConfigDir, defaultDataDir } from "../config/paths.js";
import { ensurePrivateDir } from "../security/token-store.js";
import { isProcessAlive, readDaemonFile } from "../server/daemon-file.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { PACKAGE_ROOT } from "../version.js";
import { CliError, describeError, output } from "./client-command.js";
import {
  dataDirFromLaunchdPlist,
  dataDirFromSystemdUnit,
  LAUNCHD_LABEL,
  renderLaunchdPlist,
  renderScheduledTaskCommand,
  renderSystemdUnit,
  SCHEDULED_TASK_NAME,
  type ServiceSpec,
  SYSTEMD_UNIT_NAME,
  UnsafePathError,
} from "./service-files.js";

/** Program to run instead of `systemctl`; empty: behave as if there is no systemctl. */
export const SYSTEMCTL_ENV = "SEED_DAEMON_SYSTEMCTL";
/** Program to run instead of `launchctl`; empty: behave as if there is no launchctl. */
export const LAUNCHCTL_ENV = "SEED_DAEMON_LAUNCHCTL";

/** Longest a `systemctl` / `launchctl` call may take. */
const TOOL_TIMEOUT_MS = 60_000;
/** Longest the `/health` probe may take. */
const HEALTH_TIMEOUT_MS = 3_000;
/** Environment variables the CLI itself reads here; the rest of `SEED_DAEMON_*` is daemon config. */
const CLI_ONLY_ENV = new Set(["SEED_DAEMON_DATA_DIR", SYSTEMCTL_ENV, LAUNCHCTL_ENV]);

/** Platforms with a service story. */
type Platform = "linux" | "darwin" | "win32";

/** Flags of the `service` subcommands (each takes the ones it needs). */
interface ServiceOptions {
  user?: boolean;
  print?: boolean;
  /** False with `--no-start`. */
  start?: boolean;
  dataDir?: string;
  json?: boolean;
  /** Hidden, for tests: whose files to write, instead of `process.platform`. */
  platform?: string;
}

/** What one `systemctl` / `launchctl` call did. */
interface ToolRun {
  /** The command as the user would type it. */
  readonly command: string;
  readonly ok: boolean;
  /** Trimmed stdout. */
  readonly stdout: string;
  /** Why it failed: exit status and the first line of stderr. */
  readonly detail: string;
}

/** Everything an action needs, resolved once. */
interface Context {
  readonly env: NodeJS.ProcessEnv;
  readonly opts: ServiceOptions;
  readonly platform: Platform;
  readonly home: string;
}

function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** The user's home directory: `$HOME` when it is set and absolute, else the OS's answer. */
function homeOf(env: NodeJS.ProcessEnv): string {
  const home = env.HOME !== undefined && isAbsolute(env.HOME) ? env.HOME : homedir();
  if (!isAbsolute(home)) throw new CliError("cannot find the home directory: set HOME", 2);
  return home;
}

function platformOf(opts: ServiceOptions): Platform {
  const p = opts.platform ?? process.platform;
  if (p === "linux" || p === "darwin" || p === "win32") return p;
  throw new CliError(`service: not supported on ${p} (only Linux, macOS and Windows)`);
}

/** Where the service file goes; undefined on Windows, where nothing is written. */
function serviceFilePath(ctx: Context): string | undefined {
  if (ctx.platform === "linux") {
    const xdg = ctx.env.XDG_CONFIG_HOME;
    const config = xdg !== undefined && isAbsolute(xdg) ? xdg : join(ctx.home, ".config");
    return join(config, "systemd", "user", SYSTEMD_UNIT_NAME);
  }
  if (ctx.platform === "darwin") {
    return join(ctx.home, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`);
  }
  return undefined;
}

/** The launchd agent's log file. */
function launchdLogPath(ctx: Context): string {
  return join(ctx.home, "Library", "Logs", "seed-daemon.log");
}

/** The manager that runs the service, by platform. */
function managerOf(platform: Platform): "systemd" | "launchd" | "schtasks" {
  return platform === "linux" ? "systemd" : platform === "darwin" ? "launchd" : "schtasks";
}

/** `path` with symlinks resolved when it exists, else as given. */
function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The data dir the service gets: `--data-dir`, else `SEED_DAEMON_DATA_DIR`, else the default. */
function requestedDataDir(ctx: Context): string {
  const raw = ctx.opts.dataDir ?? ctx.env.SEED_DAEMON_DATA_DIR;
  if (raw !== undefined && raw.trim() === "")
    throw new CliError("--data-dir: must not be empty", 2);
  return resolve(raw ?? defaultDataDir(ctx.env, ctx.platform));
}

/** The absolute node executable and `bin/seed-daemon.js` the service runs. */
function programPaths(): { nodePath: string; scriptPath: string } {
  const script = join(PACKAGE_ROOT, "bin", "seed-daemon.js");
  let scriptPath: string;
  try {
    scriptPath = realpathSync(script);
  } catch {
    throw new CliError(`cannot find the daemon's entry point at ${script}`);
  }
  return { nodePath: realOrSelf(process.execPath), scriptPath };
}

/** The file's text, or undefined when there is no regular file at `path`. */
function readIfFile(path: string): string | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return undefined;
  return readFileSync(path, "utf8");
}

/**
 * The program to run for `name`: the override in `envName` when set (empty: none), else the
 * first executable `name` in an absolute `$PATH` entry; undefined when there is none.
 */
function findTool(name: string, envName: string, env: NodeJS.ProcessEnv): string | undefined {
  const override = env[envName];
  if (override !== undefined) return override === "" ? undefined : override;
  for (const dir of (env.PATH ?? "").split(":")) {
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a service-manager command to completion; never throws. */
function runTool(
  program: string,
  display: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): ToolRun {
  const command = [display, ...args].join(" ");
  const r = spawnSync(program, args, {
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: TOOL_TIMEOUT_MS,
  });
  const stdout = (r.stdout ?? "").trim();
  if (r.error !== undefined) {
    const code = (r.error as NodeJS.ErrnoException).code ?? r.error.message;
    return { command, ok: false, stdout, detail: `could not run ${program} (${code})` };
  }
  if (r.status === 0) return { command, ok: true, stdout, detail: "" };
  const why = r.status === null ? `killed by ${r.signal ?? "a signal"}` : `exit ${r.status}`;
  const firstLine = (r.stderr ?? "")
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "");
  return { command, ok: false, stdout, detail: firstLine ? `${why}: ${firstLine}` : why };
}

/** Notes for what the service will not see: this shell's daemon env vars, paths under /tmp. */
function installNotes(ctx: Context, spec: ServiceSpec): void {
  const inherited = Object.keys(ctx.env)
    .filter((k) => k.startsWith("SEED_DAEMON_") && !CLI_ONLY_ENV.has(k))
    .sort();
  if (inherited.length > 0) {
    note(
      `note: the service does not get ${inherited.join(", ")} from this shell; ` +
        "set what it needs in the service definition (docs/service.md)",
    );
  }
  if (ctx.platform === "linux") {
    for (const p of [spec.nodePath, spec.scriptPath, spec.dataDir]) {
      if (/^\/(?:var\/)?tmp(?:\/|$)/.test(p)) {
        note(`note: ${p} is under /tmp, which the service cannot see (PrivateTmp=yes)`);
      }
    }
  }
}

// --- install -------------------------------------------------------------------------------

/** The outcome of `install`, as printed. */
interface InstallResult {
  platform: Platform;
  manager: string;
  path: string;
  /** Whether the file is new, replaced a different one, or was already the same. */
  state: "created" | "updated" | "unchanged";
  dataDir: string;
  commands: string[];
  started: boolean;
  error?: string;
}

function printInstall(opts: ServiceOptions, result: InstallResult, howToStart: string): void {
  const lines = [`${result.state}: ${result.path}`, `data dir: ${result.dataDir}`];
  for (const c of result.commands) lines.push(`ran: ${c}`);
  if (result.started) lines.push("started; check it with: seed-daemon service status");
  else if (result.error === undefined) lines.push(`not started; start it with: ${howToStart}`);
  output(opts, result, lines.join("\n"));
}

/**
 * Writes the service file (atomically, 0644, creating its directory) and, unless `--no-start`
 * or there is no service manager to call, enables and starts the service. A failing manager
 * command ends the run with exit code 1 and its message; the file stays written.
 */
function install(ctx: Context): void {
  if (ctx.platform === "win32") {
    windowsInstructions(ctx);
    return;
  }
  if (ctx.platform === "linux" && ctx.opts.user !== true) {
    throw new CliError(
      "only per-user services are supported: pass --user (the daemon keeps one user's keys, " +
        "so it runs in that user's systemd instance)",
      2,
    );
  }
  const path = serviceFilePath(ctx) as string;
  const { nodePath, scriptPath } = programPaths();
  let dataDir = requestedDataDir(ctx);
  const render = (spec: ServiceSpec) =>
    ctx.platform === "linux"
      ? renderSystemdUnit(spec)
      : renderLaunchdPlist({ ...spec, logPath: launchdLogPath(ctx) });

  // Where the daemon makes its KEK file when it finds no better source; the unit may write it.
  const configDir = ctx.platform === "linux" ? defaultConfigDir(ctx.env, ctx.platform) : undefined;
  if (ctx.opts.print === true) {
    process.stdout.write(
      render({
        nodePath,
        scriptPath,
        dataDir: realOrSelf(dataDir),
        ...(configDir && { configDir }),
      }),
    );
    return;
  }
  // Check before creating anything, then make the data dir: ReadWritePaths= must exist when the
  // unit starts, and the rest of the home directory is read-only for the service.
  render({ nodePath, scriptPath, dataDir, ...(configDir && { configDir }) });
  ensurePrivateDir(dataDir);
  dataDir = realpathSync(dataDir);
  // Made now (0700), so that the unit's sandbox can leave it writable.
  if (configDir !== undefined) ensurePrivateDir(configDir);
  const spec = { nodePath, scriptPath, dataDir, ...(configDir && { configDir }) };
  const text = render(spec);
  installNotes(ctx, spec);

  const previous = readIfFile(path);
  mkdirSync(dirname(path), { recursive: true });
  if (ctx.platform === "darwin") mkdirSync(dirname(launchdLogPath(ctx)), { recursive: true });
  writeFileAtomic(path, text, 0o644);
  const result: InstallResult = {
    platform: ctx.platform,
    manager: managerOf(ctx.platform),
    path,
    state: previous === undefined ? "created" : previous === text ? "unchanged" : "updated",
    dataDir,
    commands: [],
    started: false,
  };

  const steps = ctx.platform === "linux" ? systemdStartSteps(result) : launchdStartSteps(path);
  // The hint leaves out the steps allowed to fail: in an `&&` chain they would stop it.
  const howToStart = steps.commands
    .filter((_c, i) => !steps.mayFail.has(i))
    .map((c) => c.join(" "))
    .join(" && ");
  const tool = ctx.opts.start === false ? undefined : findTool(steps.tool, steps.envName, ctx.env);
  if (tool === undefined) {
    if (ctx.opts.start !== false) {
      note(`note: ${steps.tool} not found, so the service was not started`);
    }
    printInstall(ctx.opts, result, howToStart);
    return;
  }
  for (const [i, args] of steps.commands.entries()) {
    const run = runTool(tool, steps.tool, args.slice(1), ctx.env);
    if (run.ok) result.commands.push(run.command);
    // A step allowed to fail (`bootout` of an agent that was not loaded) is not reported.
    if (!run.ok && !steps.mayFail.has(i)) {
      result.error = `\`${run.command}\` failed (${run.detail}); the service file is at ${path}`;
      printInstall(ctx.opts, result, howToStart);
      throw new CliError(result.error);
    }
  }
  result.started = true;
  printInstall(ctx.opts, result, howToStart);
}

/** Manager commands for `install`, each as argv with the tool's name first. */
interface StartSteps {
  readonly tool: string;
  readonly envName: string;
  readonly commands: readonly (readonly string[])[];
  /** Indexes of commands whose failure is expected and ignored. */
  readonly mayFail: ReadonlySet<number>;
}

/**
 * `daemon-reload`, then (when an existing unit changed) `try-restart` so a running daemon picks
 * the change up, then `enable --now`.
 */
function systemdStartSteps(result: InstallResult): StartSteps {
  const commands: string[][] = [["systemctl", "--user", "daemon-reload"]];
  if (result.state === "updated") {
    commands.push(["systemctl", "--user", "try-restart", SYSTEMD_UNIT_NAME]);
  }
  commands.push(["systemctl", "--user", "enable", "--now", SYSTEMD_UNIT_NAME]);
  return { tool: "systemctl", envName: SYSTEMCTL_ENV, commands, mayFail: new Set() };
}

/** The user's launchd GUI domain, `gui/<uid>`. */
function launchdDomain(): string {
  return `gui/${typeof process.getuid === "function" ? process.getuid() : 0}`;
}

/**
 * `bootout` of an agent loaded from an earlier install (may fail: it was not loaded), `enable`
 * (clears an earlier `launchctl disable`), then `bootstrap`, which loads and, with RunAtLoad,
 * starts it.
 */
function launchdStartSteps(path: string): StartSteps {
  const domain = launchdDomain();
  return {
    tool: "launchctl",
    envName: LAUNCHCTL_ENV,
    commands: [
      ["launchctl", "bootout", `${domain}/${LAUNCHD_LABEL}`],
      ["launchctl", "enable", `${domain}/${LAUNCHD_LABEL}`],
      ["launchctl", "bootstrap", domain, path],
    ],
    mayFail: new Set([0]),
  };
}

/** Windows: nothing is installed; prints the Scheduled Task recipe (docs/service.md). */
function windowsInstructions(ctx: Context): void {
  let command: string | undefined;
  // With --platform win32 elsewhere there are no Windows paths to fill in: a template instead.
  if (process.platform === "win32") {
    try {
      command = renderScheduledTaskCommand({
        ...programPaths(),
        dataDir: realOrSelf(requestedDataDir(ctx)),
      });
    } catch (err) {
      if (!(err instanceof UnsafePathError)) throw err;
      note(`note: ${err.message}`);
    }
  }
  process.stdout.write(
    "To start the daemon at logon, create a Scheduled Task (see docs/service.md), e.g. in cmd.exe:\n" +
      `  ${command ?? `schtasks /Create /SC ONLOGON /TN ${SCHEDULED_TASK_NAME} /TR "<node> <bin\\seed-daemon.js> --data-dir <dir>"`}\n` +
      `To remove it: schtasks /Delete /TN ${SCHEDULED_TASK_NAME} /F\n`,
  );
  if (ctx.opts.print !== true) {
    throw new CliError("service install is not implemented on Windows; see the recipe above");
  }
}

// --- uninstall -----------------------------------------------------------------------------

/**
 * Stops and disables the service (when the manager is there), then removes the file. A missing
 * file is not an error. If stopping fails the file is removed all the same and the run ends
 * with exit code 1, since the daemon may still be running.
 */
function uninstall(ctx: Context): void {
  if (ctx.platform === "win32") {
    process.stdout.write(
      `To remove the Scheduled Task: schtasks /Delete /TN ${SCHEDULED_TASK_NAME} /F\n`,
    );
    throw new CliError("service uninstall is not implemented on Windows");
  }
  if (ctx.platform === "linux" && ctx.opts.user !== true) {
    throw new CliError("only per-user services are supported: pass --user", 2);
  }
  const path = serviceFilePath(ctx) as string;
  const base = { platform: ctx.platform, manager: managerOf(ctx.platform), path };
  if (readIfFile(path) === undefined) {
    output(ctx.opts, { ...base, removed: false, commands: [] }, `not installed: no ${path}`);
    return;
  }
  const commands: string[] = [];
  let failure: string | undefined;
  const linux = ctx.platform === "linux";
  const tool = linux
    ? findTool("systemctl", SYSTEMCTL_ENV, ctx.env)
    : findTool("launchctl", LAUNCHCTL_ENV, ctx.env);
  const run = (args: string[]) => {
    const r = runTool(tool as string, linux ? "systemctl" : "launchctl", args, ctx.env);
    if (r.ok) commands.push(r.command);
    return r;
  };
  if (tool !== undefined) {
    if (linux) {
      const stop = run(["--user", "disable", "--now", SYSTEMD_UNIT_NAME]);
      if (!stop.ok) failure = `\`${stop.command}\` failed (${stop.detail})`;
    } else {
      const target = `${launchdDomain()}/${LAUNCHD_LABEL}`;
      if (run(["print", target]).ok) {
        commands.pop();
        const stop = run(["bootout", target]);
        if (!stop.ok) failure = `\`${stop.command}\` failed (${stop.detail})`;
      }
    }
  }
  unlinkSync(path);
  if (linux && tool !== undefined) run(["--user", "daemon-reload"]);
  output(
    ctx.opts,
    { ...base, removed: true, commands },
    [`removed: ${path}`, ...commands.map((c) => `ran: ${c}`)].join("\n"),
  );
  if (failure !== undefined) {
    throw new CliError(`${failure}; the service may still be running`);
  }
}

// --- status --------------------------------------------------------------------------------

/** What `/health` said. */
interface Health {
  readonly ok: boolean;
  readonly url?: string;
  readonly error?: string;
}

/**
 * GETs `/health` from the daemon at `httpAddr` (from its daemon.json). A wildcard bind is probed
 * on loopback, and the `Host` header is always a loopback one, which the daemon's Host gate
 * accepts on every listener.
 */
function probeHealth(httpAddr: string): Promise<Health> {
  const addr = parseListenAddress(httpAddr);
  if (addr === undefined) {
    return Promise.resolve({ ok: false, error: `daemon.json has a bad httpAddr: ${httpAddr}` });
  }
  const v6 = isIP(addr.host) === 6;
  const host = addr.host === "0.0.0.0" ? "127.0.0.1" : addr.host === "::" ? "::1" : addr.host;
  const hostHeader = v6 ? `[::1]:${addr.port}` : `127.0.0.1:${addr.port}`;
  const url = `http://${v6 ? `[${host}]` : host}:${addr.port}/health`;
  return new Promise((res) => {
    const req = request(
      {
        host,
        port: addr.port,
        path: "/health",
        method: "GET",
        headers: { host: hostHeader, accept: "application/json" },
        timeout: HEALTH_TIMEOUT_MS,
        agent: false,
      },
      (r) => {
        let body = "";
        r.setEncoding("utf8");
        r.on("data", (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        r.on("end", () => {
          let status: unknown;
          try {
            status = (JSON.parse(body) as { status?: unknown }).status;
          } catch {
            // not JSON
          }
          res(
            r.statusCode === 200 && status === "ok"
              ? { ok: true, url }
              : { ok: false, url, error: `HTTP ${r.statusCode ?? "?"}` },
          );
        });
        r.on("error", (err) => res({ ok: false, url, error: err.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer in ${HEALTH_TIMEOUT_MS} ms`)));
    req.on("error", (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      res({ ok: false, url, error: code === "ECONNREFUSED" ? "connection refused" : err.message });
    });
    req.end();
  });
}

/** `{enabled, active}` as the service manager reports them, `"unknown"` when it cannot say. */
function managerState(ctx: Context): { enabled: string; active: string } {
  const unknown = { enabled: "unknown", active: "unknown" };
  if (ctx.platform === "linux") {
    const tool = findTool("systemctl", SYSTEMCTL_ENV, ctx.env);
    if (tool === undefined) return unknown;
    // Both exit non-zero for "disabled" / "inactive"; only an empty answer means "cannot say".
    const ask = (verb: string) =>
      runTool(tool, "systemctl", ["--user", verb, SYSTEMD_UNIT_NAME], ctx.env).stdout.split(
        "\n",
      )[0] || "unknown";
    return { enabled: ask("is-enabled"), active: ask("is-active") };
  }
  if (ctx.platform === "darwin") {
    const tool = findTool("launchctl", LAUNCHCTL_ENV, ctx.env);
    if (tool === undefined) return unknown;
    const r = runTool(tool, "launchctl", ["print", `${launchdDomain()}/${LAUNCHD_LABEL}`], ctx.env);
    if (!r.ok) return { enabled: "not-loaded", active: "inactive" };
    return { enabled: "loaded", active: /^\s*state = (\S+)/m.exec(r.stdout)?.[1] ?? "unknown" };
  }
  return unknown;
}

/**
 * Reports whether the service file is installed, what the manager says about the service, and
 * whether a daemon answers `/health` on the address in `<data-dir>/daemon.json`. The data dir is
 * `--data-dir`, else the installed file's, else `SEED_DAEMON_DATA_DIR`, else the default.
 * Exits 0 whatever the state: the report is the result.
 */
async function status(ctx: Context): Promise<void> {
  const path = serviceFilePath(ctx);
  const text = path === undefined ? undefined : readIfFile(path);
  const fromFile =
    text === undefined
      ? undefined
      : ctx.platform === "linux"
        ? dataDirFromSystemdUnit(text)
        : dataDirFromLaunchdPlist(text);
  const dataDir =
    ctx.opts.dataDir !== undefined || fromFile === undefined ? requestedDataDir(ctx) : fromFile;
  const state = managerState(ctx);

  const info = readDaemonFile(dataDir);
  let health: Health;
  let daemon: { pid: number; httpAddr: string; version: string } | null = null;
  if (info === undefined) {
    health = { ok: false, error: `no daemon.json in ${dataDir}` };
  } else {
    daemon = { pid: info.pid, httpAddr: info.httpAddr, version: info.version };
    health = isProcessAlive(info.pid)
      ? await probeHealth(info.httpAddr)
      : { ok: false, error: `daemon.json is stale (pid ${info.pid} is not running)` };
  }

  const json = {
    platform: ctx.platform,
    manager: managerOf(ctx.platform),
    path: path ?? null,
    installed: path === undefined ? null : text !== undefined,
    enabled: state.enabled,
    active: state.active,
    dataDir,
    daemon,
    health,
  };
  const installed =
    path === undefined
      ? "unknown (Windows: see docs/service.md)"
      : `${path} (${text === undefined ? "not installed" : "installed"})`;
  const healthLine = health.ok
    ? `ok (${health.url})`
    : `not answering: ${health.error}${health.url ? ` (${health.url})` : ""}`;
  output(
    ctx.opts,
    json,
    [
      `service:  ${json.manager}`,
      `file:     ${installed}`,
      `enabled:  ${state.enabled}`,
      `active:   ${state.active}`,
      `data dir: ${dataDir}`,
      `daemon:   ${daemon === null ? "none" : `pid ${daemon.pid}, ${daemon.httpAddr}, version ${daemon.version}`}`,
      `health:   ${healthLine}`,
    ].join("\n"),
  );
}

// --- registration --------------------------------------------------------------------------

/** Wraps an action: resolves the context and turns any failure into one line on stderr. */
function serviceAction(env: NodeJS.ProcessEnv, run: (ctx: Context) => void | Promise<void>) {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as ServiceOptions;
    try {
      await run({ env, opts, platform: platformOf(opts), home: homeOf(env) });
    } catch (err) {
      process.stderr.write(`seed-daemon: ${describeError(err, undefined)}\n`);
      process.exitCode =
        err instanceof CliError
          ? err.exitCode
          : err instanceof ConfigError || err instanceof UnsafePathError
            ? 2
            : 1;
    }
  };
}

/** Adds the flags every `service` subcommand shares. */
function withServiceOptions(cmd: Command): Command {
  return cmd
    .option("--user", "the per-user service (required on Linux: the only kind supported)")
    .option("--data-dir <dir>", "daemon data directory (env SEED_DAEMON_DATA_DIR)")
    .option("--json", "machine-readable JSON output")
    .addOption(
      new Option("--platform <platform>", "whose service files to use (tests)")
        .choices(["linux", "darwin", "win32"])
        .hideHelp(),
    );
}

/** Registers `seed-daemon service …`. */
export function registerServiceCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const service = program
    .command("service")
    .description(
      "run the daemon as a background service at login (systemd user unit, launchd agent)",
    );

  withServiceOptions(
    service
      .command("install")
      .description(
        "write the service file, then enable and start it (systemctl --user / launchctl)",
      )
      .option("--print", "print the service file instead of writing it")
      .option("--no-start", "write the file only; do not call systemctl / launchctl"),
  ).action(serviceAction(env, install));

  withServiceOptions(
    service.command("uninstall").description("stop and disable the service, remove its file"),
  ).action(serviceAction(env, uninstall));

  withServiceOptions(
    service
      .command("status")
      .description("is the service installed and running, and does the daemon answer /health"),
  ).action(serviceAction(env, status));
}
