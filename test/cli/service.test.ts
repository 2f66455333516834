import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import {
  dataDirFromLaunchdPlist,
  dataDirFromSystemdUnit,
  quoteSystemdWord,
  renderLaunchdPlist,
  renderScheduledTaskCommand,
  renderSystemdUnit,
  UnsafePathError,
  unquoteSystemdWord,
} from "../../src/cli/service-files.js";
import { BIN, removeDir, runCli, startDaemon, tempDir } from "../helpers/daemon.js";

const POSIX = process.platform !== "win32";
/** Every character the unit has to quote or escape, in one directory name. */
const AWKWARD_NAME = `data dir %h $HOME "q" 'a' back\\slash ü`;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A parsed unit: section name -> directive -> every value it was given, in order. */
type Unit = Map<string, Map<string, string[]>>;

/** Just enough of systemd's unit syntax to read back what `service install` writes. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[([A-Za-z]+)\]$/.exec(line);
    if (head?.[1] !== undefined) {
      assert.equal(unit.has(head[1]), false, `section ${head[1]} twice`);
      section = new Map();
      unit.set(head[1], section);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv?.[1] !== undefined && kv[2] !== undefined, `not key=value: ${line}`);
    assert.ok(section !== undefined, `directive outside a section: ${line}`);
    section.set(kv[1], [...(section.get(kv[1]) ?? []), kv[2]]);
  }
  return unit;
}

/** The one value of a directive. */
function one(unit: Unit, sectionName: string, key: string): string {
  const values = unit.get(sectionName)?.get(key);
  assert.equal(values?.length, 1, `${sectionName}.${key}: ${JSON.stringify(values)}`);
  return values?.[0] ?? "";
}

/**
 * systemd's word splitting for ExecStart= (systemd.syntax(7)), written independently of the
 * code under test: whitespace-separated words, double-quoted words with C escapes, `%%` and `$$`.
 */
function execWords(value: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    if (value[i] === " ") {
      i++;
      continue;
    }
    let word = "";
    if (value[i] === '"') {
      i++;
      while (value[i] !== '"') {
        assert.ok(i < value.length, `unterminated quote in ${value}`);
        if (value[i] === "\\") {
          const next = value[i + 1] ?? "";
          assert.ok(next === "\\" || next === '"', `unexpected escape \\${next}`);
          word += next;
          i += 2;
        } else {
          word += value[i];
          i++;
        }
      }
      i++;
      assert.ok(i >= value.length || value[i] === " ", "a closing quote must end the word");
    } else {
      while (i < value.length && value[i] !== " ") {
        assert.ok(!'"\\'.includes(value[i] ?? ""), `quote or backslash in a bare word: ${value}`);
        word += value[i];
        i++;
      }
    }
    // Specifiers and variables are expanded everywhere: each must be doubled to stay literal.
    assert.doesNotMatch(word.replace(/%%|\$\$/g, ""), /[%$]/, `unescaped % or $ in ${word}`);
    words.push(word.replace(/%%/g, "%").replace(/\$\$/g, "$"));
  }
  return words;
}

/** An element of the minimal XML tree below. */
interface XmlElement {
  name: string;
  children: (XmlElement | string)[];
}

/**
 * A small, strict XML reader for the plist: prolog, doctype and comments skipped, every tag
 * balanced, no attributes except on `<plist>`, and character data using only the five
 * predefined entities (decoded).
 */
function parseXml(text: string): XmlElement {
  const body = text
    .replace(/^<\?xml [^>]*\?>\n/, "")
    .replace(/^<!DOCTYPE [^>]*>\n/, "")
    .replace(/<!--(?:(?!--)[\s\S])*-->/g, "");
  const root: XmlElement = { name: "#root", children: [] };
  const stack: XmlElement[] = [root];
  const entities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  let consumed = 0;
  for (const m of body.matchAll(/<(\/?)([A-Za-z]+)((?: [a-z]+="[^"<&]*")*)(\/?)>|([^<]+)/g)) {
    consumed += m[0].length;
    const top = stack[stack.length - 1] as XmlElement;
    const [, close, name, attrs, selfClose, chars] = m;
    if (chars !== undefined) {
      assert.doesNotMatch(chars, /&(?!(?:amp|lt|gt|quot|apos);)/, `bad entity in ${chars}`);
      assert.doesNotMatch(chars, /[>"']/, `unescaped character in ${chars}`);
      const decoded = chars.replace(/&([a-z]+);/g, (_a, e: string) => entities[e] ?? "");
      if (decoded.trim() !== "") top.children.push(decoded);
      continue;
    }
    assert.ok(name !== undefined);
    if (attrs !== "") assert.equal(name, "plist", `attributes on <${name}>`);
    if (close === "/") {
      assert.equal(top.name, name, `</${name}> closes <${top.name}>`);
      stack.pop();
    } else {
      const el: XmlElement = { name, children: [] };
      top.children.push(el);
      if (selfClose !== "/") stack.push(el);
    }
  }
  assert.equal(stack.length, 1, "unclosed tags");
  // Every character was part of a tag or of character data: no stray "<".
  assert.equal(consumed, body.length, "text that is neither a tag nor character data");
  assert.equal(root.children.length, 1);
  return root.children[0] as XmlElement;
}

/** A plist value as plain JS. */
function plistValue(el: XmlElement): unknown {
  const text = () => el.children.filter((c) => typeof c === "string").join("");
  switch (el.name) {
    case "string":
      return text();
    case "integer":
      return Number(text());
    case "true":
      return true;
    case "false":
      return false;
    case "array":
      return el.children.map((c) => plistValue(c as XmlElement));
    case "dict": {
      const out: Record<string, unknown> = {};
      const kids = el.children as XmlElement[];
      for (let i = 0; i < kids.length; i += 2) {
        assert.equal(kids[i]?.name, "key");
        const key = kids[i]?.children[0] as string;
        assert.equal(key in out, false, `key ${key} twice`);
        out[key] = plistValue(kids[i + 1] as XmlElement);
      }
      return out;
    }
    default:
      throw new Error(`unexpected <${el.name}>`);
  }
}

/** Whether `systemd-analyze --user verify` works here; with the env it needs. */
function systemdAnalyze(work: string): { env: NodeJS.ProcessEnv } | undefined {
  const runtime = join(work, "runtime");
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? runtime };
  // A unit known to be good: if even this fails, the tool (not our unit) is unusable here.
  const probe = join(work, "probe.service");
  writeFileSync(probe, `[Service]\nExecStart=${process.execPath} --version\n`);
  const r = spawnSync("systemd-analyze", ["--user", "verify", probe], { env, encoding: "utf8" });
  return r.error === undefined && r.status === 0 ? { env } : undefined;
}

describe("seed-daemon service", () => {
  let dir: string;
  let home: string;
  let config: string;
  let counter = 0;

  /**
   * The env of every run: a temp HOME and XDG_CONFIG_HOME, and no systemctl/launchctl. No
   * SEED_DAEMON_KEYCHAIN either (cleanEnv sets it for daemons): these runs start none, and
   * `install` would name it among the variables the service does not inherit.
   */
  function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli(args, {
      env: {
        HOME: home,
        XDG_CONFIG_HOME: config,
        XDG_DATA_HOME: join(home, ".local", "share"),
        SEED_DAEMON_SYSTEMCTL: "",
        SEED_DAEMON_LAUNCHCTL: "",
        SEED_DAEMON_KEYCHAIN: undefined,
        ...env,
      },
    });
  }

  /** `systemd-analyze --user verify` accepts `text` without a word about it (where it runs). */
  function verifyUnit(t: TestContext, text: string): void {
    const analyze = systemdAnalyze(fresh("analyze"));
    if (analyze === undefined) {
      t.diagnostic("systemd-analyze --user verify unavailable here: skipped that check");
      return;
    }
    const file = join(fresh("verify"), "seed-daemon.service");
    writeFileSync(file, text);
    const v = spawnSync("systemd-analyze", ["--user", "verify", file], {
      env: analyze.env,
      encoding: "utf8",
    });
    assert.equal(v.status, 0, v.stderr);
    assert.doesNotMatch(v.stderr, /seed-daemon\.service/, v.stderr);
  }

  /** A fresh directory under the temp tree. */
  function fresh(name: string): string {
    const p = join(dir, `${name}-${++counter}`);
    mkdirSync(p, { recursive: true, mode: 0o700 });
    return realpathSync(p);
  }

  function assertOneLineFailure(r: CliResult, code: number, pattern: RegExp): void {
    assert.equal(r.code, code, r.stderr);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }

  const unitPath = () => join(config, "systemd", "user", "seed-daemon.service");

  before(() => {
    dir = realpathSync(tempDir("seed-service-"));
    home = join(dir, "home");
    config = join(home, "config");
    mkdirSync(home, { mode: 0o700 });
  });
  after(() => removeDir(dir));

  test("install --print --user: a complete, hardened unit that systemd-analyze accepts", async (t) => {
    const dataDir = fresh("data");
    const r = await cli(["service", "install", "--print", "--user", "--data-dir", dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(existsSync(unitPath()), false, "--print writes nothing");
    const unit = parseUnit(r.stdout);
    assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);

    const [node, script, flag, dd, ...rest] = execWords(one(unit, "Service", "ExecStart"));
    assert.equal(node, realpathSync(process.execPath));
    assert.equal(script, realpathSync(BIN));
    for (const p of [node, script]) {
      assert.ok(p?.startsWith("/") && existsSync(p), `${p} is absolute and exists`);
    }
    assert.deepEqual([flag, dd, rest], ["--data-dir", dataDir, []]);

    const expected: Record<string, string> = {
      Type: "exec",
      Restart: "on-failure",
      RestartPreventExitStatus: "2",
      NoNewPrivileges: "yes",
      PrivateUsers: "yes",
      ProtectSystem: "strict",
      ProtectHome: "read-only",
      PrivateTmp: "yes",
      RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6",
      LockPersonality: "yes",
      RestrictRealtime: "yes",
      SystemCallArchitectures: "native",
      SystemCallFilter: "@system-service",
      SystemCallErrorNumber: "EPERM",
      UMask: "0077",
      StandardOutput: "journal",
      StandardError: "journal",
    };
    for (const [key, value] of Object.entries(expected)) {
      assert.equal(one(unit, "Service", key), value, key);
    }
    // Writable: the data dir, and the config dir where a generated KEK file goes (`-`: the unit
    // still starts if it is gone).
    assert.deepEqual(unit.get("Service")?.get("ReadWritePaths"), [
      dataDir,
      `-${join(config, "seed-daemon")}`,
    ]);
    // Nothing that breaks Node (V8's JIT) or that a user manager cannot apply.
    for (const key of ["MemoryDenyWriteExecute", "User", "Group", "CapabilityBoundingSet"]) {
      assert.equal(unit.get("Service")?.has(key), false, key);
    }
    assert.equal(one(unit, "Install", "WantedBy"), "default.target");

    verifyUnit(t, r.stdout);
  });

  test("a data dir with spaces, %, $, quotes and backslashes is quoted so systemd reads it back", async (t) => {
    const dataDir = join(fresh("awkward"), AWKWARD_NAME);
    const r = await cli(["service", "install", "--print", "--user", "--data-dir", dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const unit = parseUnit(r.stdout);
    const exec = one(unit, "Service", "ExecStart");
    assert.deepEqual(execWords(exec).slice(2), ["--data-dir", dataDir]);
    assert.ok(exec.endsWith(`"${dataDir.replace(/[\\"]/g, "\\$&").replace(/[%$]/g, "$&$&")}"`));
    // ReadWritePaths= expands specifiers but not variables.
    const rw = unit.get("Service")?.get("ReadWritePaths")?.[0];
    assert.equal(rw, `"${dataDir.replace(/[\\"]/g, "\\$&").replace(/%/g, "%%")}"`);
    assert.equal(dataDirFromSystemdUnit(r.stdout), dataDir);

    verifyUnit(t, r.stdout);
  });

  test("paths a service file cannot express are refused, nothing is written", async () => {
    const base = fresh("bad");
    for (const name of ["a\nb", "a\rb", "tab\there", "del\u007f", "c1\u0085"]) {
      const bad = join(base, name);
      const r = await cli(["service", "install", "--user", "--no-start", "--data-dir", bad]);
      assertOneLineFailure(r, 2, /--data-dir: .* contains a control character/);
      assert.equal(existsSync(bad), false, "the data dir is not created");
      assert.equal(r.stdout, "");
      assert.equal(existsSync(unitPath()), false);
    }
    const printed = await cli(["service", "install", "--print", "--user", "--data-dir", "/a\nb"]);
    assertOneLineFailure(printed, 2, /control character/);
    assert.equal(printed.stdout, "");

    const spec = { nodePath: "/usr/bin/node", scriptPath: "/x/bin/seed-daemon.js", dataDir: "/d" };
    // A lone surrogate cannot even reach argv (it arrives as U+FFFD), so only here.
    for (const dataDir of [
      "/tmp/\ud800",
      "relative/dir",
      "/a/../b",
      "/a//b",
      "/a/",
      `/${"x".repeat(256)}`,
    ]) {
      assert.throws(() => renderSystemdUnit({ ...spec, dataDir }), UnsafePathError, dataDir);
    }
    assert.throws(
      () => renderLaunchdPlist({ ...spec, dataDir: "/a\nb", logPath: "/l" }),
      UnsafePathError,
    );
  });

  test("install without --user is refused on Linux: only per-user services", async () => {
    const r = await cli(["service", "install", "--platform", "linux", "--no-start"]);
    assertOneLineFailure(r, 2, /only per-user services are supported: pass --user/);
    assert.equal(existsSync(unitPath()), false);
    const u = await cli(["service", "uninstall", "--platform", "linux"]);
    assertOneLineFailure(u, 2, /pass --user/);
  });

  test("install --user --no-start writes the unit; status sees it; uninstall removes it", async () => {
    const dataDir = join(fresh("install"), "data dir");
    const before = await cli(["service", "status", "--platform", "linux", "--json"]);
    assert.equal(before.code, 0, before.stderr);
    const s0 = JSON.parse(before.stdout);
    assert.equal(s0.installed, false);
    assert.equal(s0.path, unitPath());
    assert.equal(s0.active, "unknown");
    assert.equal(s0.health.ok, false);

    const r = await cli(
      ["service", "install", "--user", "--no-start", "--data-dir", dataDir, "--json"],
      { SEED_DAEMON_LOG_LEVEL: "debug" },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.deepEqual(
      [res.path, res.state, res.dataDir, res.started, res.commands],
      [unitPath(), "created", dataDir, false, []],
    );
    // The service would not see this shell's daemon settings: the CLI says so (names only).
    assert.match(r.stderr, /does not get SEED_DAEMON_LOG_LEVEL/);
    assert.equal(statSync(unitPath()).mode & 0o777, 0o644);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, "the data dir is created 0700");
    const unit = parseUnit(readFileSync(unitPath(), "utf8"));
    assert.equal(execWords(one(unit, "Service", "ExecStart"))[3], dataDir);
    assert.equal(unit.get("Service")?.get("ReadWritePaths")?.[0], `"${dataDir}"`);
    const configDir = join(config, "seed-daemon");
    assert.equal(statSync(configDir).mode & 0o777, 0o700, "the config dir is created 0700");

    const again = await cli(["service", "install", "--user", "--no-start", "--data-dir", dataDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^unchanged: /);
    assert.match(again.stdout, /not started; start it with: systemctl --user daemon-reload && /);

    // status finds the data dir in the installed unit.
    const human = await cli(["service", "status", "--user"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`file: +${unitPath()} \\(installed\\)`));
    assert.match(human.stdout, /active: +unknown/);
    assert.ok(human.stdout.includes(`data dir: ${dataDir}\n`), human.stdout);
    assert.match(human.stdout, /health: +not answering: no daemon\.json/);

    const u = await cli(["service", "uninstall", "--user", "--json"]);
    assert.equal(u.code, 0, u.stderr);
    assert.deepEqual(JSON.parse(u.stdout).removed, true);
    assert.equal(existsSync(unitPath()), false);
    assert.equal(existsSync(dataDir), true, "uninstall keeps the data");
    const twice = await cli(["service", "uninstall", "--user"]);
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stdout, /^not installed: /);
    const after = await cli(["service", "status", "--platform", "linux", "--json"]);
    assert.equal(JSON.parse(after.stdout).installed, false);
  });

  test("with systemctl: daemon-reload and enable --now; is-active in status; disable --now on uninstall; failures are clear", {
    skip: !POSIX,
  }, async () => {
    const bin = fresh("bin");
    const log = join(bin, "calls.log");
    const fake = join(bin, "systemctl");
    writeFileSync(
      fake,
      [
        "#!/bin/sh",
        'printf "%s\\n" "$*" >> "$FAKE_SYSTEMCTL_LOG"',
        'case "$2" in is-active) echo active ;; is-enabled) echo enabled ;; esac',
        'if [ "$2" = "$FAKE_SYSTEMCTL_FAIL" ]; then',
        '  echo "Failed to connect to bus: No medium found" >&2',
        "  exit 1",
        "fi",
        "",
      ].join("\n"),
    );
    chmodSync(fake, 0o755);
    const env = { SEED_DAEMON_SYSTEMCTL: fake, FAKE_SYSTEMCTL_LOG: log, FAKE_SYSTEMCTL_FAIL: "-" };
    const calls = () =>
      existsSync(log)
        ? readFileSync(log, "utf8")
            .split("\n")
            .filter((l) => l !== "")
        : [];
    const dataDir = fresh("managed");

    const r = await cli(["service", "install", "--user", "--data-dir", dataDir], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(calls(), ["--user daemon-reload", "--user enable --now seed-daemon.service"]);
    assert.match(r.stdout, /ran: systemctl --user enable --now seed-daemon\.service/);
    assert.match(r.stdout, /started; check it with: seed-daemon service status/);

    const s = JSON.parse((await cli(["service", "status", "--user", "--json"], env)).stdout);
    assert.deepEqual([s.installed, s.enabled, s.active], [true, "enabled", "active"]);

    // A changed unit: a running daemon is restarted onto it.
    writeFileSync(log, "");
    const other = fresh("managed");
    const upd = await cli(["service", "install", "--user", "--data-dir", other], env);
    assert.equal(upd.code, 0, upd.stderr);
    assert.match(upd.stdout, /^updated: /);
    assert.deepEqual(calls().slice(-3), [
      "--user daemon-reload",
      "--user try-restart seed-daemon.service",
      "--user enable --now seed-daemon.service",
    ]);

    // --no-start runs nothing.
    writeFileSync(log, "");
    const quiet = await cli(
      ["service", "install", "--user", "--no-start", "--data-dir", other],
      env,
    );
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.deepEqual(calls(), []);

    // A failing systemctl: exit 1, one line naming the command and its error; the unit stays.
    const failed = await cli(["service", "install", "--user", "--data-dir", other], {
      ...env,
      FAKE_SYSTEMCTL_FAIL: "enable",
    });
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr.trimEnd().split("\n").pop() ?? "",
      /^seed-daemon: `systemctl --user enable --now seed-daemon\.service` failed \(exit 1: Failed to connect to bus: No medium found\); the service file is at /,
    );
    assert.equal(existsSync(unitPath()), true);

    writeFileSync(log, "");
    const u = await cli(["service", "uninstall", "--user"], env);
    assert.equal(u.code, 0, u.stderr);
    assert.deepEqual(calls(), ["--user disable --now seed-daemon.service", "--user daemon-reload"]);
    assert.equal(existsSync(unitPath()), false);

    // Stopping fails: the unit is removed all the same, and the exit code says something is off.
    await cli(["service", "install", "--user", "--no-start", "--data-dir", other], env);
    const uf = await cli(["service", "uninstall", "--user"], {
      ...env,
      FAKE_SYSTEMCTL_FAIL: "disable",
    });
    assert.equal(uf.code, 1);
    assert.match(uf.stderr, /disable --now seed-daemon\.service` failed .*may still be running/);
    assert.equal(existsSync(unitPath()), false);
  });

  test("status with a running daemon: /health answers (data dir from --data-dir or the unit)", async () => {
    const d = await startDaemon({ dataDir: join(fresh("running"), "data") });
    try {
      const r = await cli(["service", "status", "--user", "--data-dir", d.dataDir, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.dataDir, d.dataDir);
      assert.equal(s.daemon.pid, d.proc.pid);
      assert.equal(s.daemon.httpAddr, d.httpAddr);
      assert.deepEqual(s.health, { ok: true, url: `http://${d.httpAddr}/health` });

      const inst = await cli([
        "service",
        "install",
        "--user",
        "--no-start",
        "--data-dir",
        d.dataDir,
      ]);
      assert.equal(inst.code, 0, inst.stderr);
      const human = await cli(["service", "status", "--user"]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, new RegExp(`daemon: +pid ${d.proc.pid}, ${d.httpAddr}`));
      assert.match(human.stdout, /health: +ok \(http:\/\/127\.0\.0\.1:\d+\/health\)/);
    } finally {
      await d.stop();
      await cli(["service", "uninstall", "--user"]);
    }
    const gone = await cli(["service", "status", "--user", "--data-dir", d.dataDir, "--json"]);
    const s = JSON.parse(gone.stdout);
    assert.equal(s.health.ok, false);
    assert.equal(s.daemon, null);
  });

  test("launchd: a well-formed plist with the expected keys and escaped values", async () => {
    const dataDir = join(fresh("mac"), `x&y <z> "q" 'a'`);
    const r = await cli([
      "service",
      "install",
      "--print",
      "--platform",
      "darwin",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist /);
    const root = parseXml(r.stdout);
    assert.equal(root.name, "plist");
    assert.equal(root.children.length, 1);
    const plist = plistValue(root.children[0] as XmlElement) as Record<string, unknown>;
    const log = join(home, "Library", "Logs", "seed-daemon.log");
    assert.deepEqual(plist, {
      Label: "com.seed.daemon",
      ProgramArguments: [realpathSync(process.execPath), realpathSync(BIN), "--data-dir", dataDir],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ProcessType: "Background",
      Umask: 0o077,
      StandardOutPath: log,
      StandardErrorPath: log,
    });
    assert.ok(r.stdout.includes("x&amp;y &lt;z&gt; &quot;q&quot; &apos;a&apos;"));
    assert.equal(dataDirFromLaunchdPlist(r.stdout), dataDir);

    // The default data dir on macOS has a space in it ("Application Support").
    const def = await cli(["service", "install", "--print", "--platform", "darwin"]);
    const args = (
      plistValue(parseXml(def.stdout).children[0] as XmlElement) as {
        ProgramArguments: string[];
      }
    ).ProgramArguments;
    assert.equal(args[3], join(home, "Library", "Application Support", "seed-daemon"));
  });

  test("launchd: install --no-start writes the agent, uninstall removes it", async () => {
    const plist = join(home, "Library", "LaunchAgents", "com.seed.daemon.plist");
    const dataDir = fresh("mac-data");
    const r = await cli([
      "service",
      "install",
      "--platform",
      "darwin",
      "--no-start",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /not started; start it with: launchctl enable gui\/\d+\/com\.seed\.daemon && launchctl bootstrap gui\/\d+ \S+com\.seed\.daemon\.plist$/m,
    );
    assert.equal(dataDirFromLaunchdPlist(readFileSync(plist, "utf8")), dataDir);
    assert.equal(existsSync(join(home, "Library", "Logs")), true);
    const s = JSON.parse(
      (await cli(["service", "status", "--platform", "darwin", "--json"])).stdout,
    );
    assert.deepEqual(
      [s.manager, s.path, s.installed, s.dataDir],
      ["launchd", plist, true, dataDir],
    );
    const u = await cli(["service", "uninstall", "--platform", "darwin"]);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(existsSync(plist), false);
  });

  test("launchd with launchctl: enable and bootstrap on install, print and bootout on uninstall", {
    skip: !POSIX,
  }, async () => {
    const bin = fresh("bin");
    const log = join(bin, "calls.log");
    const fake = join(bin, "launchctl");
    writeFileSync(
      fake,
      [
        "#!/bin/sh",
        'printf "%s\\n" "$*" >> "$FAKE_LAUNCHCTL_LOG"',
        'case "$1" in',
        '  print) [ -n "$FAKE_LOADED" ] || { echo "Could not find service" >&2; exit 113; }',
        '    printf "gui/1/com.seed.daemon = {\\n\\tstate = running\\n}\\n" ;;',
        '  bootout) [ -n "$FAKE_LOADED" ] || { echo "Boot-out failed: 3: No such process" >&2; exit 3; } ;;',
        "esac",
        "",
      ].join("\n"),
    );
    chmodSync(fake, 0o755);
    const env = { SEED_DAEMON_LAUNCHCTL: fake, FAKE_LAUNCHCTL_LOG: log };
    const loaded = { ...env, FAKE_LOADED: "1" };
    const calls = () => {
      const lines = existsSync(log) ? readFileSync(log, "utf8").split("\n") : [];
      writeFileSync(log, "");
      return lines.filter((l) => l !== "").map((l) => l.replace(/gui\/\d+/, "gui/U"));
    };
    const plist = join(home, "Library", "LaunchAgents", "com.seed.daemon.plist");
    const platform = ["--platform", "darwin"];

    const r = await cli(["service", "install", ...platform, "--data-dir", fresh("mac")], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(calls(), [
      "bootout gui/U/com.seed.daemon",
      "enable gui/U/com.seed.daemon",
      `bootstrap gui/U ${plist}`,
    ]);
    // The expected failure of bootout (nothing was loaded) is neither shown nor fatal.
    assert.doesNotMatch(r.stdout + r.stderr, /bootout/);
    assert.match(r.stdout, /ran: launchctl bootstrap gui\/\d+ /);

    const s = JSON.parse((await cli(["service", "status", ...platform, "--json"], loaded)).stdout);
    assert.deepEqual([s.installed, s.enabled, s.active], [true, "loaded", "running"]);
    calls();
    const notLoaded = JSON.parse(
      (await cli(["service", "status", ...platform, "--json"], env)).stdout,
    );
    assert.deepEqual([notLoaded.enabled, notLoaded.active], ["not-loaded", "inactive"]);
    calls();

    const u = await cli(["service", "uninstall", ...platform], loaded);
    assert.equal(u.code, 0, u.stderr);
    assert.deepEqual(calls(), ["print gui/U/com.seed.daemon", "bootout gui/U/com.seed.daemon"]);
    assert.equal(existsSync(plist), false);
  });

  test("Windows: install prints a Scheduled Task recipe and says it is not implemented", async () => {
    const r = await cli(["service", "install", "--platform", "win32"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /schtasks \/Create \/SC ONLOGON \/TN seed-daemon /);
    assert.match(r.stderr, /not implemented on Windows/);
    const s = JSON.parse(
      (await cli(["service", "status", "--platform", "win32", "--json"])).stdout,
    );
    assert.deepEqual([s.manager, s.installed, s.active], ["schtasks", null, "unknown"]);

    const cmd = renderScheduledTaskCommand({
      nodePath: "C:\\Program Files\\nodejs\\node.exe",
      scriptPath: "C:\\seed\\bin\\seed-daemon.js",
      dataDir: "C:\\Users\\me\\AppData\\Local\\seed-daemon",
    });
    assert.equal(
      cmd,
      'schtasks /Create /SC ONLOGON /TN seed-daemon /RL LIMITED /F /TR "\\"C:\\Program Files\\nodejs\\node.exe\\" \\"C:\\seed\\bin\\seed-daemon.js\\" --data-dir \\"C:\\Users\\me\\AppData\\Local\\seed-daemon\\""',
    );
    assert.throws(
      () =>
        renderScheduledTaskCommand({ nodePath: "node.exe", scriptPath: "C:\\x", dataDir: "C:\\d" }),
      UnsafePathError,
    );
  });

  test("quoteSystemdWord / unquoteSystemdWord round-trip", () => {
    for (const word of ["/plain/path", "", "a b", `%h$HOME"\\'`, "ü", "/a;b", "-x"]) {
      for (const exec of [true, false]) {
        const quoted = quoteSystemdWord(word, exec);
        assert.equal(unquoteSystemdWord(quoted, exec), word, `${word} (${exec})`);
        if (exec) assert.deepEqual(execWords(quoted), [word]);
      }
    }
    assert.equal(quoteSystemdWord("/usr/bin/node", true), "/usr/bin/node");
    assert.equal(quoteSystemdWord("/a b/$x%y", true), '"/a b/$$x%%y"');
    assert.equal(quoteSystemdWord("/a b/$x%y", false), '"/a b/$x%%y"');
  });
});
