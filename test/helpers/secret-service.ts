/**
 * A real, private Secret Service for the keychain tests: a D-Bus session bus of its own
 * (`dbus-daemon` with a config that activates nothing) and Debian's `gnome-keyring-daemon` on it,
 * its "login" keyring created and unlocked with a throwaway password, everything under a temp
 * HOME. Nothing of the machine's own session (bus, keyrings, HOME) is touched.
 *
 * Missing tools skip the tests that need them, with a reason, unless `CI` or
 * `SEED_TEST_REQUIRE_SECRET_SERVICE=1` is set: then they fail (as the browser tests do).
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { removeDir } from "./daemon.js";

/** The programs the helper and the tests run, and the Debian package of each. */
const TOOLS: readonly (readonly [program: string, pkg: string])[] = [
  ["dbus-daemon", "dbus-daemon"],
  ["dbus-send", "dbus-bin"],
  ["gnome-keyring-daemon", "gnome-keyring"],
  ["secret-tool", "libsecret-tools"],
];

const HOW_TO = "install them (Debian: apt-get install dbus gnome-keyring libsecret-tools)";

function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** The tools that are not on PATH, as `program (package)`. */
function missingTools(env: NodeJS.ProcessEnv): string[] {
  return TOOLS.filter(([p]) => !onPath(p, env)).map(([p, pkg]) => `${p} (${pkg})`);
}

/** Whether a missing Secret Service must fail the run (CI, or asked for) rather than skip it. */
export function secretServiceRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return (
    (env.CI !== undefined && env.CI !== "" && env.CI !== "false") ||
    env.SEED_TEST_REQUIRE_SECRET_SERVICE === "1"
  );
}

/**
 * The `skip` option of a suite that needs a real Secret Service: a reason when its tools are
 * missing and it is not required, else false (the suite runs, and fails in
 * {@link startSecretService} if they are missing).
 */
export function secretServiceSkip(env: NodeJS.ProcessEnv = process.env): string | false {
  if (process.platform !== "linux" && !secretServiceRequired(env)) {
    return `the Secret Service tests run on Linux only (this is ${process.platform})`;
  }
  const missing = missingTools(env);
  if (missing.length === 0 || secretServiceRequired(env)) return false;
  return `no Secret Service to test against: missing ${missing.join(", ")}; ${HOW_TO}`;
}

/** A running private Secret Service. */
export interface SecretService {
  /**
   * Environment for children that should use it: `DBUS_SESSION_BUS_ADDRESS`, and the temp
   * `HOME` and `XDG_*` dirs the keyring lives in.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Stores an item with `secret-tool store` (the way Seed's CLI writes its keyring item). */
  store(label: string, attributes: Record<string, string>, secret: string): Promise<void>;
  /** `secret-tool lookup`: the item's secret, or null when there is none. */
  lookup(attributes: Record<string, string>): Promise<string | null>;
  /** Locks the "login" keyring, as a screen lock or a user would; items then need a prompt. */
  lock(): Promise<void>;
  /** Kills the keyring daemon and the bus and removes the temp dirs. */
  stop(): Promise<void>;
}

function run(
  program: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = execFile(
      program,
      args,
      { env, timeout: 10_000, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        res({ code, stdout, stderr });
      },
    );
    // A program that does not read stdin may exit before the write lands: that EPIPE is fine.
    child.stdin?.on("error", () => {});
    child.stdin?.end(input ?? "");
  });
}

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const timer = setTimeout(() => res(false), ms);
    proc.once("exit", () => {
      clearTimeout(timer);
      res(true);
    });
  });
}

async function kill(proc: ChildProcess | undefined): Promise<void> {
  if (proc === undefined || proc.pid === undefined) return;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  if (!(await waitExit(proc, 3_000))) {
    proc.kill("SIGKILL");
    await waitExit(proc, 3_000);
  }
}

/** A bus that only routes: no `<servicedir>`, so nothing is ever started by D-Bus activation. */
function busConfig(socket: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`;
}

/** Starts `dbus-daemon` and resolves with its address once it listens. */
async function startBus(
  root: string,
  env: NodeJS.ProcessEnv,
): Promise<{ proc: ChildProcess; address: string }> {
  const config = join(root, "bus.conf");
  writeFileSync(config, busConfig(join(root, "bus")), { mode: 0o600 });
  const proc = spawn("dbus-daemon", [`--config-file=${config}`, "--nofork", "--print-address=1"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const address = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`dbus-daemon not ready in 10s: ${err}`)), 10_000);
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const end = out.indexOf("\n");
      if (end > 0 && out.startsWith("unix:")) {
        clearTimeout(timer);
        res(out.slice(0, end).trim());
      }
    });
    proc.once("error", (e) => {
      clearTimeout(timer);
      rej(e);
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`dbus-daemon exited with ${code}: ${err}`));
    });
  });
  return { proc, address };
}

async function secretsOwned(env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await run(
    "dbus-send",
    [
      "--session",
      "--print-reply",
      "--dest=org.freedesktop.DBus",
      "/org/freedesktop/DBus",
      "org.freedesktop.DBus.NameHasOwner",
      "string:org.freedesktop.secrets",
    ],
    env,
  );
  return r.code === 0 && /boolean true/.test(r.stdout);
}

function attributeArgs(attributes: Record<string, string>): string[] {
  return Object.entries(attributes).flat();
}

/** Options of {@link startSecretService}. */
export interface StartSecretServiceOptions {
  /** Start only the bus, without gnome-keyring: a session bus on which no Secret Service answers. */
  busOnly?: boolean;
}

/**
 * Starts a private bus and gnome-keyring on it and waits until `org.freedesktop.secrets` is
 * owned. Call {@link SecretService.stop} when done (also on failure of the test).
 *
 * @throws when a tool is missing (only reached when the suite is required) or does not start.
 */
export async function startSecretService(
  opts: StartSecretServiceOptions = {},
): Promise<SecretService> {
  const missing = missingTools(process.env);
  if (missing.length > 0) {
    throw new Error(
      `the Secret Service tests are required here (CI or SEED_TEST_REQUIRE_SECRET_SERVICE=1) but tools are missing: ${missing.join(", ")}; ${HOW_TO}`,
    );
  }
  const root = mkdtempSync(join(tmpdir(), "seed-ss-"));
  const dirs = {
    HOME: join(root, "home"),
    XDG_RUNTIME_DIR: join(root, "run"),
    XDG_DATA_HOME: join(root, "data"),
    XDG_CONFIG_HOME: join(root, "config"),
    XDG_CACHE_HOME: join(root, "cache"),
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { mode: 0o700 });
  // PATH and the like from the parent; nothing that points at the machine's own session.
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(DBUS_|XDG_|GNOME_KEYRING|SSH_AUTH_SOCK$|HOME$|DISPLAY$|WAYLAND_)/.test(k)) base[k] = v;
  }
  Object.assign(base, dirs);

  let bus: ChildProcess | undefined;
  let keyring: ChildProcess | undefined;
  const stop = async () => {
    await kill(keyring);
    await kill(bus);
    removeDir(root);
  };
  try {
    const started = await startBus(root, base);
    bus = started.proc;
    const env = { ...dirs, DBUS_SESSION_BUS_ADDRESS: started.address };
    const childEnv = { ...base, ...env };
    if (opts.busOnly !== true) {
      let err = "";
      keyring = spawn(
        "gnome-keyring-daemon",
        ["--unlock", "--components=secrets", "--foreground"],
        { env: childEnv, stdio: ["pipe", "ignore", "pipe"] },
      );
      keyring.stderr?.on("data", (d: Buffer) => {
        err += d.toString();
      });
      // --unlock reads the password from stdin and creates the "login" keyring with it (or
      // unlocks it); that keyring becomes the default collection new items go to.
      keyring.stdin?.on("error", () => {});
      keyring.stdin?.end(randomBytes(18).toString("base64url"));
      const deadline = Date.now() + 15_000;
      while (!(await secretsOwned(childEnv))) {
        if (keyring.exitCode !== null || keyring.signalCode !== null) {
          throw new Error(`gnome-keyring-daemon exited before it served secrets: ${err}`);
        }
        if (Date.now() > deadline) {
          throw new Error(
            `gnome-keyring-daemon did not own org.freedesktop.secrets in 15s: ${err}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const service: SecretService = {
      env,
      async store(label, attributes, secret) {
        const r = await run(
          "secret-tool",
          ["store", "--label", label, ...attributeArgs(attributes)],
          childEnv,
          secret,
        );
        if (r.code !== 0) throw new Error(`secret-tool store failed (${r.code}): ${r.stderr}`);
      },
      async lookup(attributes) {
        const r = await run("secret-tool", ["lookup", ...attributeArgs(attributes)], childEnv);
        if (r.code === 1 && r.stdout === "") return null;
        if (r.code !== 0) throw new Error(`secret-tool lookup failed (${r.code}): ${r.stderr}`);
        return r.stdout;
      },
      async lock() {
        const r = await run(
          "dbus-send",
          [
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
          ],
          childEnv,
        );
        if (r.code !== 0) throw new Error(`locking the login keyring failed: ${r.stderr}`);
      },
      stop,
    };
    return service;
  } catch (err) {
    await stop();
    throw err;
  }
}
