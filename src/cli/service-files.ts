/**
 * The files `seed-daemon service` installs, as pure functions of their inputs: a systemd user
 * unit (Linux), a launchd agent plist (macOS) and a Scheduled Task command line (Windows, printed
 * only). Nothing here touches the filesystem or the platform, so every generator can be tested on
 * any OS.
 *
 * Paths go into these files verbatim, so each one is checked first ({@link checkServicePath}): a
 * path that the target format cannot carry unchanged (a newline, any other control character, a
 * lone surrogate) is refused with {@link UnsafePathError} rather than written in a mangled form.
 *
 * @module
 */

import { posix, win32 } from "node:path";

/** The systemd unit's file name (in `~/.config/systemd/user/`). */
export const SYSTEMD_UNIT_NAME = "seed-daemon.service";
/** The launchd job label, also the plist's base name (in `~/Library/LaunchAgents/`). */
export const LAUNCHD_LABEL = "com.seed.daemon";
/** The Scheduled Task name on Windows. */
export const SCHEDULED_TASK_NAME = "seed-daemon";

/** Exit status the daemon uses for bad flags and unusable data dirs; restarting cannot help. */
const EXIT_USAGE_STATUS = 2;
/** Longest path accepted (Linux PATH_MAX, counting the terminating NUL). */
const MAX_PATH_BYTES = 4095;
/** Longest path component accepted (NAME_MAX). */
const MAX_NAME_BYTES = 255;

/** What the service runs: `<nodePath> <scriptPath> --data-dir <dataDir>`, all absolute. */
export interface ServiceSpec {
  /** The Node executable (usually `process.execPath`). */
  readonly nodePath: string;
  /** The package's `bin/seed-daemon.js`. */
  readonly scriptPath: string;
  /** The daemon's data directory; with {@link configDir}, the only paths the unit may write. */
  readonly dataDir: string;
  /**
   * The per-user config dir where the daemon generates its KEK file when it has no better
   * source (docs/keys.md). The systemd unit may write there too, if it exists.
   */
  readonly configDir?: string;
}

/** A {@link ServiceSpec} plus where launchd sends the daemon's output. */
export interface LaunchdSpec extends ServiceSpec {
  /** The log file for stdout and stderr (the daemon logs JSON lines to stdout). */
  readonly logPath: string;
}

/** A path that the service file cannot carry unchanged; the message names it and says why. */
export class UnsafePathError extends Error {
  override readonly name = "UnsafePathError";
}

/**
 * Refuses a path that a service file cannot express exactly: not absolute (POSIX rules, or
 * Windows rules with `style: "win32"`), not normalised (`.`/`..` segments, doubled or trailing
 * separators), with a control character (C0, DEL or C1, newline included), a lone UTF-16
 * surrogate, a component longer than 255 bytes or a total longer than 4095 bytes. On Windows a
 * double quote is refused too (it cannot be quoted on a `schtasks /TR` command line, and no
 * Windows file name contains one).
 *
 * @param what - What the path is, for the message (`"--data-dir"`, `"node executable"`).
 * @param path - The path to check.
 * @param style - Whose path rules apply.
 * @throws {@link UnsafePathError} naming `what` and the problem.
 */
export function checkServicePath(
  what: string,
  path: string,
  style: "posix" | "win32" = "posix",
): void {
  const fail = (why: string): never => {
    throw new UnsafePathError(`${what}: ${JSON.stringify(path)} ${why}`);
  };
  if (/[\p{Cc}\ufffe\uffff]/u.test(path)) {
    fail("contains a control character (a newline?), which a service file cannot express");
  }
  if (/\p{Cs}/u.test(path)) fail("is not valid Unicode (lone surrogate)");
  if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) fail("is too long");
  if (style === "win32") {
    if (!win32.isAbsolute(path) || !/^(?:[A-Za-z]:\\|\\\\)/.test(path)) {
      fail("is not an absolute path");
    }
    if (path.includes('"')) fail('contains a double quote (")');
    return;
  }
  if (!path.startsWith("/")) fail("is not an absolute path");
  if (path.length > 1 && path.endsWith("/")) fail("ends with a slash");
  if (posix.normalize(path) !== path) fail("is not normalised (`.`, `..` or `//`)");
  for (const part of path.split("/")) {
    if (Buffer.byteLength(part, "utf8") > MAX_NAME_BYTES) fail("has a component over 255 bytes");
  }
}

// --- systemd -------------------------------------------------------------------------------

/** Characters that need no quoting anywhere in a systemd value (no `%`, `$`, `\`, quote, space). */
const SYSTEMD_BARE = /^[A-Za-z0-9_/.,:@+=-]+$/;

/**
 * One word of a systemd setting that splits its value into words (systemd.syntax(7), "Quoting"),
 * written so systemd reads back exactly `word`: bare when it has only safe characters, else in
 * double quotes with `\` and `"` backslash-escaped. `%` is doubled everywhere (specifiers are
 * expanded inside quotes too), and with `exec` so is `$` (Exec lines expand `$VAR` even inside
 * quotes).
 *
 * @param word - The word; check paths with {@link checkServicePath} first (control characters
 *   would be read back differently).
 * @param exec - True for `ExecStart=` and the other `Exec*=` settings.
 */
export function quoteSystemdWord(word: string, exec: boolean): string {
  if (word !== "" && SYSTEMD_BARE.test(word)) return word;
  let inner = word.replace(/[\\"]/g, "\\$&").replace(/%/g, "%%");
  if (exec) inner = inner.replace(/\$/g, "$$$$");
  return `"${inner}"`;
}

/**
 * Reads back one word written by {@link quoteSystemdWord}; undefined for anything else. Only
 * meant for values this module wrote, not a general systemd parser.
 */
export function unquoteSystemdWord(text: string, exec: boolean): string | undefined {
  if (SYSTEMD_BARE.test(text)) return text;
  const quoted = exec ? /^"((?:[^"\\%$]|\\[\\"]|%%|\$\$)*)"$/ : /^"((?:[^"\\%]|\\[\\"]|%%)*)"$/;
  const inner = quoted.exec(text)?.[1];
  if (inner === undefined) return undefined;
  const escapes = exec ? /\\([\\"])|%%|\$\$/g : /\\([\\"])|%%/g;
  return inner.replace(escapes, (all, esc: string | undefined) => esc ?? all[0] ?? "");
}

/**
 * The systemd user unit (`seed-daemon.service`) that runs the daemon.
 *
 * Runs `<node> <script> --data-dir <dir>` with `Type=exec` (start fails when the executable
 * cannot be run), restarts it on failure but not after exit status 2 (bad configuration, which a
 * restart cannot fix), and logs to the journal: the daemon writes JSON lines to stdout, and a
 * journal stream is never a TTY. The sandbox makes the whole filesystem read-only except the data
 * dir and the config dir, where a generated KEK file goes (`ProtectSystem=strict`,
 * `ProtectHome=read-only`, `ReadWritePaths=`), gives the service its
 * own `/tmp` and user namespace, allows only Unix and IP sockets and filters system calls.
 * `PrivateUsers=yes` is explicit because systemd before 253 ignores the mount sandbox in user
 * units without it (newer versions turn it on implicitly). `MemoryDenyWriteExecute=` is left out
 * on purpose: V8's JIT needs writable-then-executable memory.
 *
 * @param spec - Absolute paths; each is checked with {@link checkServicePath}.
 * @returns The unit text (UTF-8, LF line ends).
 * @throws {@link UnsafePathError} for a path the unit cannot express.
 */
export function renderSystemdUnit(spec: ServiceSpec): string {
  checkServicePath("node executable", spec.nodePath);
  checkServicePath("daemon script", spec.scriptPath);
  checkServicePath("--data-dir", spec.dataDir);
  if (spec.configDir !== undefined) checkServicePath("config dir", spec.configDir);
  const exec = [spec.nodePath, spec.scriptPath, "--data-dir", spec.dataDir]
    .map((w) => quoteSystemdWord(w, true))
    .join(" ");
  return [
    "# Written by `seed-daemon service install --user`; remove it with",
    "# `seed-daemon service uninstall --user`. Local changes belong in a drop-in",
    "# (`systemctl --user edit seed-daemon.service`): a reinstall overwrites this file.",
    "[Unit]",
    "Description=seed-daemon: Ed25519 keys and documents served on loopback",
    "",
    "[Service]",
    "Type=exec",
    `ExecStart=${exec}`,
    "Restart=on-failure",
    "RestartSec=2",
    `RestartPreventExitStatus=${EXIT_USAGE_STATUS}`,
    "SyslogIdentifier=seed-daemon",
    "StandardOutput=journal",
    "StandardError=journal",
    "UMask=0077",
    "NoNewPrivileges=yes",
    "PrivateUsers=yes",
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    `ReadWritePaths=${quoteSystemdWord(spec.dataDir, false)}`,
    // `-`: a config dir removed later does not stop the unit from starting.
    ...(spec.configDir === undefined
      ? []
      : [`ReadWritePaths=${quoteSystemdWord(`-${spec.configDir}`, false)}`]),
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
    "",
    "[Install]",
    "WantedBy=default.target",
    "",
  ].join("\n");
}

/**
 * The data dir a unit written by {@link renderSystemdUnit} gives the daemon (from its
 * `ReadWritePaths=` line); undefined when the text is not such a unit.
 */
export function dataDirFromSystemdUnit(text: string): string | undefined {
  const m = /^ReadWritePaths=(.*)$/m.exec(text);
  return m?.[1] === undefined ? undefined : unquoteSystemdWord(m[1], false);
}

// --- launchd -------------------------------------------------------------------------------

/** The five predefined XML entities, by character. */
const XML_ENTITIES: Readonly<Record<string, string>> = {
  "&": "amp",
  "<": "lt",
  ">": "gt",
  '"': "quot",
  "'": "apos",
};

/** Text as XML character data or an attribute value: `&`, `<`, `>`, `"` and `'` escaped. */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${XML_ENTITIES[c]};`);
}

/**
 * The launchd agent (`com.seed.daemon.plist`) that runs the daemon at login.
 *
 * `RunAtLoad` starts it when the agent is loaded (at login, or by `launchctl bootstrap`);
 * `KeepAlive` with `SuccessfulExit=false` restarts it only after a failed exit (launchd waits
 * 10 s between starts). Its stdout (the JSON log) and stderr go to `logPath`, appended. The
 * umask is 077, as in the systemd unit.
 *
 * @param spec - Absolute paths; each is checked with {@link checkServicePath}.
 * @returns The plist XML (UTF-8).
 * @throws {@link UnsafePathError} for a path XML cannot carry.
 */
export function renderLaunchdPlist(spec: LaunchdSpec): string {
  checkServicePath("node executable", spec.nodePath);
  checkServicePath("daemon script", spec.scriptPath);
  checkServicePath("--data-dir", spec.dataDir);
  checkServicePath("log file", spec.logPath);
  const str = (s: string) => `<string>${xmlEscape(s)}</string>`;
  const args = [spec.nodePath, spec.scriptPath, "--data-dir", spec.dataDir];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    "<!-- Written by `seed-daemon service install`; remove it with `seed-daemon service uninstall`. -->",
    '<plist version="1.0">',
    "<dict>",
    "  <key>Label</key>",
    `  ${str(LAUNCHD_LABEL)}`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...args.map((a) => `    ${str(a)}`),
    "  </array>",
    "  <key>RunAtLoad</key>",
    "  <true/>",
    "  <key>KeepAlive</key>",
    "  <dict>",
    "    <key>SuccessfulExit</key>",
    "    <false/>",
    "  </dict>",
    "  <key>ProcessType</key>",
    `  ${str("Background")}`,
    "  <key>Umask</key>",
    `  <integer>${0o077}</integer>`,
    "  <key>StandardOutPath</key>",
    `  ${str(spec.logPath)}`,
    "  <key>StandardErrorPath</key>",
    `  ${str(spec.logPath)}`,
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}

/**
 * The data dir a plist written by {@link renderLaunchdPlist} gives the daemon (the argument after
 * `--data-dir`); undefined when the text is not such a plist.
 */
export function dataDirFromLaunchdPlist(text: string): string | undefined {
  const m = /<string>--data-dir<\/string>\s*<string>([^<]*)<\/string>/.exec(text);
  if (m?.[1] === undefined) return undefined;
  const chars = Object.fromEntries(Object.entries(XML_ENTITIES).map(([c, name]) => [name, c]));
  return m[1].replace(/&(amp|lt|gt|quot|apos);/g, (_all, name: string) => chars[name] ?? "");
}

// --- Windows -------------------------------------------------------------------------------

/**
 * A `schtasks` command line that starts the daemon at logon (printed, never run: the CLI does
 * not install Windows services). The task's program line (`/TR`) quotes each path with `\"`.
 *
 * @param spec - Absolute Windows paths; each is checked with {@link checkServicePath}.
 * @throws {@link UnsafePathError} for a path the command line cannot carry.
 */
export function renderScheduledTaskCommand(spec: ServiceSpec): string {
  checkServicePath("node executable", spec.nodePath, "win32");
  checkServicePath("daemon script", spec.scriptPath, "win32");
  checkServicePath("--data-dir", spec.dataDir, "win32");
  const q = (s: string) => `\\"${s}\\"`;
  const tr = `${q(spec.nodePath)} ${q(spec.scriptPath)} --data-dir ${q(spec.dataDir)}`;
  return `schtasks /Create /SC ONLOGON /TN ${SCHEDULED_TASK_NAME} /RL LIMITED /F /TR "${tr}"`;
}
