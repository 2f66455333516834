/**
 * The Dockerfile, checked without a Docker engine: static invariants of the parsed file, then a
 * replay of its build stage on the host (COPY and RUN steps taken from the Dockerfile itself, so
 * a broken command fails here), the runtime stage's COPY --from steps, and the daemon started the
 * way ENTRYPOINT starts it, probed with the HEALTHCHECK command and raw requests.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, posix, relative, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DOCKERFILE = readFileSync(join(REPO, "Dockerfile"), "utf8");
const DOCKERIGNORE = readFileSync(join(REPO, ".dockerignore"), "utf8");

// ---------------------------------------------------------------------------------------------
// Dockerfile parsing (the subset of the syntax this repository uses, strictly)
// ---------------------------------------------------------------------------------------------

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let buf = "";
  let start = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? "";
    const trimmed = raw.trim();
    // Comment and blank lines are dropped, also inside a continuation (as BuildKit does).
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    if (buf === "") start = i + 1;
    if (/\\\s*$/.test(raw)) {
      buf += raw.replace(/\\\s*$/, "");
      continue;
    }
    buf += raw;
    const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(buf);
    assert.ok(m, `Dockerfile line ${start}: cannot parse`);
    instructions.push({
      keyword: (m[1] ?? "").toUpperCase(),
      args: (m[2] ?? "").trim(),
      line: start,
    });
    buf = "";
  }
  assert.equal(buf, "", "Dockerfile ends inside a line continuation");

  const stages: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `Dockerfile line ${ins.line}: cannot parse FROM ${ins.args}`);
      stages.push({ image: m[1] ?? "", name: m[2]?.toLowerCase(), instructions: [] });
    } else {
      const current = stages.at(-1);
      if (current === undefined) {
        assert.ok(["ARG"].includes(ins.keyword), `line ${ins.line}: ${ins.keyword} before FROM`);
        continue;
      }
      current.instructions.push(ins);
    }
  }
  return stages;
}

/** Exec (JSON array) form of an instruction's arguments, or undefined for shell form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  assert.ok(
    Array.isArray(parsed) && parsed.every((a) => typeof a === "string"),
    `not a JSON string array: ${args}`,
  );
  return parsed as string[];
}

/** Splits leading `--flag=value` options from an instruction's arguments. */
function splitFlags(args: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = args;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/i.exec(rest);
    if (!m) break;
    flags.set((m[1] ?? "").toLowerCase(), m[2] ?? "");
    rest = rest.slice(m[0].length);
  }
  return { flags, rest: rest.trim() };
}

/** `ENV`/`ARG` pairs: `K=V K2="v 2"` or the legacy `K V`. ARG without default gives undefined. */
function parsePairs(args: string): Array<[string, string | undefined]> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(args);
    return m ? [[m[1] ?? "", m[2]]] : [];
  }
  const pairs: Array<[string, string | undefined]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const m of args.matchAll(re)) {
    let v = m[2] ?? "";
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, "$1");
    else if (v.startsWith("'")) v = v.slice(1, -1);
    pairs.push([m[1] ?? "", v]);
  }
  return pairs;
}

function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions) {
    if (ins.keyword !== "ENV" && ins.keyword !== "ARG") continue;
    for (const [k, v] of parsePairs(ins.args)) if (v !== undefined) env[k] = v;
  }
  return env;
}

function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

function last(stage: Stage, keyword: string): Instruction | undefined {
  return all(stage, keyword).at(-1);
}

/** The command a RUN executes: shell form as one string, exec form as argv. */
function runCommand(ins: Instruction): { shell: string } | { argv: string[] } {
  const { rest } = splitFlags(ins.args);
  const argv = execForm(rest);
  return argv === undefined ? { shell: rest } : { argv };
}

function runText(ins: Instruction): string {
  const c = runCommand(ins);
  return "shell" in c ? c.shell : c.argv.join(" ");
}

/** HEALTHCHECK's command as argv (exec form required, so no shell is needed in the image). */
function healthcheckArgv(ins: Instruction): string[] {
  const { rest } = splitFlags(ins.args);
  const m = /^CMD\s+([\s\S]*)$/i.exec(rest);
  assert.ok(m, `HEALTHCHECK must have a CMD: ${ins.args}`);
  const argv = execForm((m[1] ?? "").trim());
  assert.ok(argv, "HEALTHCHECK CMD must be in exec (JSON) form");
  return argv;
}

/** ENTRYPOINT followed by CMD, both in exec form (so node is PID 1 and gets SIGTERM). */
function startCommand(stage: Stage): string[] {
  const entry = last(stage, "ENTRYPOINT");
  assert.ok(entry, "final stage needs an ENTRYPOINT");
  const entryArgv = execForm(entry.args);
  assert.ok(entryArgv, "ENTRYPOINT must be in exec (JSON) form so signals reach node");
  const cmd = last(stage, "CMD");
  const cmdArgv = cmd === undefined ? [] : execForm(cmd.args);
  assert.ok(cmdArgv, "CMD must be in exec (JSON) form");
  return [...entryArgv, ...cmdArgv];
}

/** Value of `--flag value` or `--flag=value` in argv. */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === flag) value = argv[i + 1];
    else if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// .dockerignore matching (last matching pattern wins; a pattern matching a parent dir applies)
// ---------------------------------------------------------------------------------------------

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? "";
    if (c === "*" && glob[i + 1] === "*") {
      if (glob[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

function dockerignoreMatcher(text: string): (relPath: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, "");
      return { negate, re: globToRegExp(pattern) };
    });
  return (relPath) => {
    const parts = relPath.split("/");
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let ignored = false;
    for (const rule of rules) {
      if (candidates.some((c) => rule.re.test(c))) ignored = !rule.negate;
    }
    return ignored;
  };
}

// ---------------------------------------------------------------------------------------------
// Static invariants
// ---------------------------------------------------------------------------------------------

const STAGES = parseDockerfile(DOCKERFILE);
const FINAL = STAGES.at(-1) as Stage;
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSPHRASE|MNEMONIC|PRIVATE/i;

describe("Dockerfile invariants", () => {
  it("is multi-stage, every base image pinned by tag, final one a Node LTS slim image", () => {
    assert.ok(STAGES.length >= 2, "expected a build stage and a runtime stage");
    const names = new Set(STAGES.map((s) => s.name).filter((n) => n !== undefined));
    for (const s of STAGES) {
      if (names.has(s.image.toLowerCase())) continue;
      assert.match(s.image, /^[^:@]+(?::[^:@]+)?(?:@sha256:[0-9a-f]{64})?$/, s.image);
      assert.match(s.image, /:(?!latest\b)[\w.-]+/, `${s.image} must be pinned by tag`);
    }
    const m =
      /^(?:docker\.io\/(?:library\/)?)?node:(\d+)(?:\.\d+)*-(bookworm|trixie)-slim(?:@sha256:[0-9a-f]{64})?$/.exec(
        FINAL.image,
      );
    assert.ok(m, `final image ${FINAL.image} is not node:<LTS>-<debian>-slim`);
    const major = Number(m[1]);
    assert.ok(major >= 20 && major % 2 === 0, `node ${major} is not an LTS line`);
  });

  it("runs as a fixed non-root user in the final stage", () => {
    const user = last(FINAL, "USER");
    assert.ok(user, "final stage has no USER");
    const [name = "", group] = user.args.split(":");
    for (const v of [name, group]) {
      if (v === undefined) continue;
      assert.ok(!["root", "0"].includes(v.toLowerCase()), `USER ${user.args} is root`);
    }
    const uid = /^\d+$/.test(name) ? Number(name) : ownerUidOf(name);
    assert.ok(uid !== undefined && uid >= 1000, `USER ${user.args}: expected a fixed uid >= 1000`);
  });

  it("creates /data as a 0700 volume owned by that user and points the daemon at it", () => {
    assert.equal(stageEnv(FINAL).SEED_DAEMON_DATA_DIR, "/data");
    const volume = last(FINAL, "VOLUME");
    assert.ok(volume, "no VOLUME");
    const vols = execForm(volume.args) ?? volume.args.split(/\s+/);
    assert.ok(vols.includes("/data"), `VOLUME ${volume.args}`);

    const user = (last(FINAL, "USER")?.args ?? "").split(":")[0] ?? "";
    const owners = new Set([user]);
    const uid = /^\d+$/.test(user) ? Number(user) : ownerUidOf(user);
    for (const [n, u] of usersCreated()) if (u === uid) owners.add(n);
    if (uid !== undefined) owners.add(String(uid));

    const segments = all(FINAL, "RUN").flatMap((r) =>
      runText(r)
        .split(/&&|;/)
        .map((s) => s.trim()),
    );
    const onData = segments.filter((s) => /(^|\s)\/data\/?$/.test(s));
    const mode700 = onData.some(
      (s) => /^install\s.*-d\b.*-m\s*0?700\b/.test(s) || /^chmod\s+(-\S+\s+)*0?700\s/.test(s),
    );
    assert.ok(mode700, "no RUN creates /data with mode 0700");
    const owned = onData.some((s) => {
      const m = /^install\s.*-o\s*(\S+)/.exec(s) ?? /^chown\s+(?:-\S+\s+)*([^:\s]+)/.exec(s);
      return m !== null && owners.has(m[1] ?? "");
    });
    assert.ok(owned, `no RUN makes /data owned by ${[...owners].join(" / ")}`);
  });

  it("reads the KEK from a secret outside the /data volume, and bakes in no KEK", () => {
    const env = stageEnv(FINAL);
    assert.equal(env.SEED_DAEMON_KEK_FILE, "/run/secrets/seed-daemon-kek");
    // A KEK in the volume would travel with every copy of the keys it protects.
    assert.ok(
      !posix.resolve(env.SEED_DAEMON_KEK_FILE ?? "").startsWith(`${env.SEED_DAEMON_DATA_DIR}/`),
    );
    for (const k of ["SEED_DAEMON_KEK", "SEED_DAEMON_KEYSTORE_PASSPHRASE"]) {
      assert.equal(env[k], undefined, `${k} is set in the image`);
    }
  });

  it("exposes both ports and binds 0.0.0.0 on them", () => {
    const exposed = all(FINAL, "EXPOSE").flatMap((e) =>
      e.args.split(/\s+/).map((p) => p.replace(/\/tcp$/i, "")),
    );
    assert.ok(exposed.includes("55001") && exposed.includes("55002"), `EXPOSE ${exposed}`);
    const argv = startCommand(FINAL);
    assert.equal(argv[0], "node");
    assert.equal(argv[1], "/app/bin/seed-daemon.js");
    assert.equal(flagValue(argv, "--http-addr"), "0.0.0.0:55001");
    assert.equal(flagValue(argv, "--grpc-addr"), "0.0.0.0:55002");
    assert.equal(last(FINAL, "STOPSIGNAL")?.args, "SIGTERM");
  });

  it("has a HEALTHCHECK on /health with an explicit loopback Host for the HTTP port", () => {
    const hc = last(FINAL, "HEALTHCHECK");
    assert.ok(hc, "no HEALTHCHECK");
    const script = healthcheckArgv(hc).join(" ");
    const port = flagValue(startCommand(FINAL), "--http-addr")?.split(":").at(-1);
    assert.match(script, /['"]\/health['"]/);
    const host = /\bHost['"]?\s*:\s*['"](localhost|127\.0\.0\.1|\[::1\]):(\d+)['"]/.exec(script);
    assert.ok(host, "HEALTHCHECK sends no explicit Host header");
    assert.equal(host[2], port, "HEALTHCHECK Host port differs from --http-addr");
    assert.match(script, new RegExp(`\\b${port}\\b`));
  });

  it("bakes in no secret and installs with npm ci", () => {
    for (const stage of STAGES) {
      for (const ins of stage.instructions) {
        if (ins.keyword === "ENV" || ins.keyword === "ARG") {
          for (const [k, v] of parsePairs(ins.args)) {
            assert.ok(
              !SECRET_NAME.test(k) || v === undefined || v === "",
              `line ${ins.line}: ${ins.keyword} ${k} carries a value`,
            );
          }
        }
        if (ins.keyword === "COPY" || ins.keyword === "ADD") {
          assert.doesNotMatch(ins.args, /auth\.token|\.env\b|hmkey|\.npmrc/, `line ${ins.line}`);
        }
      }
    }
    const runs = STAGES.flatMap((s) => all(s, "RUN").map(runText));
    assert.ok(
      runs.some((r) => /\bnpm ci\b/.test(r)),
      "no npm ci",
    );
    for (const r of runs) assert.doesNotMatch(r, /\bnpm (install|i|add)\b/, r);
  });

  it(".dockerignore keeps local state and secrets out of the build context", () => {
    const ignored = dockerignoreMatcher(DOCKERIGNORE);
    for (const p of [
      "node_modules",
      "node_modules/x/index.js",
      "dist/cli/main.js",
      ".git/HEAD",
      "src/node_modules/x.js",
      "auth.token",
      ".env",
      "test/docker/dockerfile.test.ts",
      "some.log",
    ]) {
      assert.ok(ignored(p), `${p} should be ignored`);
    }
    for (const p of [
      "package.json",
      "package-lock.json",
      "src/cli/main.ts",
      "bin/seed-daemon.js",
    ]) {
      assert.ok(!ignored(p), `${p} should be in the build context`);
    }
  });
});

/** `[name, uid]` of every `useradd --uid N name` in the final stage. */
function usersCreated(): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const r of all(FINAL, "RUN")) {
    for (const seg of runText(r).split(/&&|;/)) {
      const tokens = seg.trim().split(/\s+/);
      if (tokens[0] !== "useradd") continue;
      const i = tokens.findIndex((t) => t === "--uid" || t === "-u");
      const inline = tokens.find((t) => t.startsWith("--uid="));
      const uid = inline !== undefined ? inline.slice(6) : i >= 0 ? tokens[i + 1] : undefined;
      if (uid !== undefined && /^\d+$/.test(uid)) out.push([tokens.at(-1) ?? "", Number(uid)]);
    }
  }
  return out;
}

function ownerUidOf(name: string): number | undefined {
  return usersCreated().find(([n]) => n === name)?.[1];
}

// ---------------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function run(
  file: string,
  args: readonly string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const append = (b: Buffer) => {
      output = (output + b.toString("utf8")).slice(-20_000);
    };
    child.stdout.on("data", append);
    child.stderr.on("data", append);
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, output });
    });
  });
}

/**
 * The host environment without anything an enclosing npm or test runner put there: inherited
 * npm_config_* (local_prefix in particular) would point the replayed npm at this repository.
 */
function hostEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || ["INIT_CWD", "NODE_OPTIONS", "NODE_ENV"].includes(k)) continue;
    env[k] = v;
  }
  // The replayed addon build must use this runtime's headers, not whatever `nodedir` a user or
  // machine npmrc names (a Node 20 one would give an addon that Node 24 cannot load).
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, "include", "node", "node_version.h"))) {
    env.npm_config_nodedir = prefix;
  }
  // The replayed npm and node-gyp must run on this runtime too.
  env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH ?? ""}`;
  return env;
}

/** Maps a container path to the host directory standing in for a stage's filesystem root. */
function inRoot(root: string, workdir: string, p: string): string {
  return join(root, posix.isAbsolute(p) ? p : posix.join(workdir, p));
}

/** Docker COPY semantics for one source: a directory's contents go into dest; a file to dest. */
function copyInto(src: string, dest: string, destIsDir: boolean, filter?: (s: string) => boolean) {
  assert.ok(existsSync(src), `COPY source ${src} does not exist`);
  if (statSync(src).isDirectory()) {
    mkdirSync(dest, { recursive: true });
    for (const entry of readdirSync(src)) {
      const from = join(src, entry);
      if (filter && !filter(from)) continue;
      cpSync(from, join(dest, entry), {
        recursive: true,
        verbatimSymlinks: true,
        ...(filter ? { filter } : {}),
      });
    }
  } else {
    const target = destIsDir ? join(dest, basename(src)) : dest;
    mkdirSync(dirname(target), { recursive: true });
    cpSync(src, target);
  }
}

interface Replay {
  tmp: string;
  runtimeRoot: string;
  runtimeWorkdir: string;
  runtimeEnv: Record<string, string>;
  timings: Array<[string, number]>;
}

async function replayBuild(): Promise<Replay> {
  const tmp = mkdtempSync(join(tmpdir(), "seed-daemon-docker-"));
  const roots = new Map<string, string>();
  const timings: Array<[string, number]> = [];
  const ignored = dockerignoreMatcher(DOCKERIGNORE);
  const contextFilter = (hostPath: string) => {
    const rel = relative(REPO, hostPath).split("\\").join("/");
    return rel === "" || !ignored(rel);
  };

  let runtimeWorkdir = "/";
  let runtimeEnv: Record<string, string> = {};
  for (const [index, stage] of STAGES.entries()) {
    const root = join(tmp, `stage${index}`);
    mkdirSync(root);
    roots.set(String(index), root);
    if (stage.name !== undefined) roots.set(stage.name, root);
    const isFinal = stage === FINAL;
    let workdir = "/";
    const env: Record<string, string> = {};

    for (const ins of stage.instructions) {
      if (ins.keyword === "WORKDIR") {
        workdir = posix.resolve(workdir, ins.args);
        mkdirSync(inRoot(root, "/", workdir), { recursive: true });
      } else if (ins.keyword === "ENV" || ins.keyword === "ARG") {
        for (const [k, v] of parsePairs(ins.args)) if (v !== undefined) env[k] = v;
      } else if (ins.keyword === "COPY") {
        const { flags, rest } = splitFlags(ins.args);
        const parts = execForm(rest) ?? rest.split(/\s+/);
        const dest = parts.at(-1) ?? "";
        const sources = parts.slice(0, -1);
        const from = flags.get("from");
        const destIsDir = dest.endsWith("/") || dest === "." || sources.length > 1;
        for (const s of sources) {
          if (from !== undefined) {
            const srcRoot = roots.get(from.toLowerCase());
            assert.ok(srcRoot, `line ${ins.line}: unknown stage ${from}`);
            copyInto(inRoot(srcRoot, "/", s), inRoot(root, workdir, dest), destIsDir);
          } else {
            assert.ok(!posix.isAbsolute(s) && !s.includes("*"), `line ${ins.line}: source ${s}`);
            const src = join(REPO, s);
            assert.ok(contextFilter(src), `line ${ins.line}: ${s} is excluded by .dockerignore`);
            copyInto(src, inRoot(root, workdir, dest), destIsDir, contextFilter);
          }
        }
      } else if (ins.keyword === "RUN" && !isFinal) {
        const text = runText(ins);
        // System packages are the image's business; the host has its own toolchain.
        if (/\bapt-get\b/.test(text)) continue;
        const c = runCommand(ins);
        const [file, args] =
          "shell" in c ? ["/bin/sh", ["-c", c.shell]] : [c.argv[0], c.argv.slice(1)];
        const t0 = performance.now();
        const res = await run(file ?? "", args, {
          cwd: inRoot(root, "/", workdir),
          env: { ...hostEnv(), ...env },
          timeoutMs: 480_000,
        });
        timings.push([text.replace(/\s+/g, " ").slice(0, 60), performance.now() - t0]);
        assert.equal(
          res.code,
          0,
          `Dockerfile line ${ins.line} failed (${res.code ?? res.signal}): ${text}\n${res.output}`,
        );
      }
    }
    if (isFinal) {
      runtimeWorkdir = workdir;
      runtimeEnv = env;
    }
  }
  const runtimeRoot = roots.get(String(STAGES.length - 1)) ?? "";
  return { tmp, runtimeRoot, runtimeWorkdir, runtimeEnv, timings };
}

function httpCall(
  port: number,
  opts: { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: opts.method, path: opts.path, headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

function portOf(addr: string): number {
  const port = Number(addr.split(":").at(-1));
  assert.ok(Number.isInteger(port) && port > 0, `bad address ${addr}`);
  return port;
}

describe("Dockerfile replay: build stage, runtime copy, daemon as ENTRYPOINT starts it", {
  timeout: 600_000,
}, () => {
  const token = randomBytes(32).toString("base64url");
  const kek = randomBytes(32).toString("base64");
  let kekPath: string;
  let daemonFile: string | undefined;
  let daemonArgs: string[];
  let replay: Replay;
  let daemon: ChildProcess | undefined;
  let daemonExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let daemonOutput = "";
  let dataDir: string;
  let httpPort: number;
  let grpcPort: number;
  let imageHttpPort: string;
  let appDir: string;

  const healthcheck = (): Promise<RunResult> => {
    const hc = last(FINAL, "HEALTHCHECK");
    assert.ok(hc);
    const argv = healthcheckArgv(hc).map((a) =>
      a.replace(new RegExp(`\\b${imageHttpPort}\\b`, "g"), String(httpPort)),
    );
    const [file, ...args] = argv;
    return run(file === "node" ? process.execPath : (file ?? ""), args, {
      cwd: appDir,
      env: { PATH: process.env.PATH ?? "", ...replay.runtimeEnv },
      timeoutMs: 15_000,
    });
  };

  before(
    async () => {
      const t0 = performance.now();
      replay = await replayBuild();
      replay.timings.push(["whole replay (copy + RUN steps)", performance.now() - t0]);
      appDir = inRoot(replay.runtimeRoot, "/", replay.runtimeWorkdir);

      dataDir = join(replay.tmp, "data");
      mkdirSync(dataDir, { mode: 0o700 });
      const argv = startCommand(FINAL);
      imageHttpPort = flagValue(argv, "--http-addr")?.split(":").at(-1) ?? "";
      // Port 0 instead of the image's fixed ports; container paths mapped into the runtime root.
      const mapped = argv.map((a, i) => {
        if (i === 0 && a === "node") return process.execPath;
        if (/^0\.0\.0\.0:\d+$/.test(a)) return "0.0.0.0:0";
        if (posix.isAbsolute(a)) return inRoot(replay.runtimeRoot, "/", a);
        return a;
      });
      [daemonFile, ...daemonArgs] = mapped;
      // The Docker secret the image expects, as compose provides it: 32 random bytes in base64,
      // mode 0400, owned by the daemon's user, at the image's path inside the runtime root.
      kekPath = inRoot(replay.runtimeRoot, "/", replay.runtimeEnv.SEED_DAEMON_KEK_FILE ?? "");
      mkdirSync(dirname(kekPath), { recursive: true, mode: 0o700 });
      writeFileSync(kekPath, `${kek}\n`, { mode: 0o400 });
      const child = spawn(daemonFile ?? "", daemonArgs, {
        cwd: appDir,
        env: {
          PATH: process.env.PATH ?? "",
          ...replay.runtimeEnv,
          SEED_DAEMON_KEK_FILE: kekPath,
          SEED_DAEMON_DATA_DIR: dataDir,
          SEED_DAEMON_AUTH_TOKEN: token,
          SEED_DAEMON_ALLOWED_HOSTS: "daemon.internal",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      daemon = child;
      const collect = (b: Buffer) => {
        daemonOutput = (daemonOutput + b.toString("utf8")).slice(-20_000);
      };
      child.stdout?.on("data", collect);
      child.stderr?.on("data", collect);
      daemonExit = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));

      const deadline = Date.now() + 30_000;
      const daemonJson = join(dataDir, "daemon.json");
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          assert.fail(`daemon exited during start-up:\n${daemonOutput}`);
        }
        if (existsSync(daemonJson)) {
          const info = JSON.parse(readFileSync(daemonJson, "utf8")) as Record<string, string>;
          httpPort = portOf(info.httpAddr ?? "");
          grpcPort = portOf(info.grpcAddr ?? "");
          assert.match(info.httpAddr ?? "", /^0\.0\.0\.0:/);
          assert.match(info.grpcAddr ?? "", /^0\.0\.0\.0:/);
          break;
        }
        assert.ok(Date.now() < deadline, `daemon did not write daemon.json:\n${daemonOutput}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    { timeout: 600_000 },
  );

  after(() => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGKILL");
    if (replay) rmSync(replay.tmp, { recursive: true, force: true });
  });

  it("reports the replay timings", (t) => {
    for (const [step, ms] of replay.timings) t.diagnostic(`${(ms / 1000).toFixed(1)}s  ${step}`);
  });

  it("runtime stage holds the built daemon, no dev dependencies and a working better-sqlite3", async () => {
    assert.ok(existsSync(join(appDir, "dist/seed-daemon.js")), "the bundled executable");
    // The daemon's user cannot write it, so the image has to ship it.
    const cache = join(appDir, "dist/.compile-cache");
    assert.ok(
      existsSync(cache) && readdirSync(cache).some((f) => f.endsWith(".v8")),
      "V8's code cache of the bundle",
    );
    assert.ok(!existsSync(join(appDir, "src")), "sources copied into the runtime stage");
    for (const dev of ["typescript", "tsx", "@biomejs/biome", "@types/node"]) {
      assert.ok(!existsSync(join(appDir, "node_modules", dev)), `${dev} in the runtime stage`);
    }
    const res = await run(
      process.execPath,
      ["-e", "const D=require('better-sqlite3');new D(':memory:').prepare('select 1').get()"],
      { cwd: appDir, env: { PATH: process.env.PATH ?? "" }, timeoutMs: 30_000 },
    );
    assert.equal(res.code, 0, res.output);
  });

  it("HEALTHCHECK command exits 0 against the running daemon", async () => {
    const res = await healthcheck();
    assert.equal(res.code, 0, `healthcheck failed: ${res.output}\n${daemonOutput}`);
  });

  it("GetInfo with an allowed Host and the token: 200", async () => {
    const res = await httpCall(httpPort, {
      method: "POST",
      path: "/com.seed.daemon.v1alpha.Daemon/GetInfo",
      headers: {
        host: `daemon.internal:${httpPort}`,
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
      },
      body: "{}",
    });
    assert.equal(res.status, 200, res.body);
    const info = JSON.parse(res.body) as { version?: string; kekSource?: string };
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    assert.equal(info.version, pkg.version);
    assert.equal(info.kekSource, "file", "the KEK comes from the secret");
  });

  it("without the secret, the daemon exits 2 at once and writes no keystore", async () => {
    const bare = join(replay.tmp, "data-without-secret");
    mkdirSync(bare, { mode: 0o700 });
    const absent = inRoot(
      join(replay.tmp, "no-secrets"),
      "/",
      replay.runtimeEnv.SEED_DAEMON_KEK_FILE ?? "",
    );
    const res = await run(daemonFile ?? "", daemonArgs, {
      cwd: appDir,
      env: {
        PATH: process.env.PATH ?? "",
        ...replay.runtimeEnv,
        SEED_DAEMON_KEK_FILE: absent,
        SEED_DAEMON_DATA_DIR: bare,
        SEED_DAEMON_AUTH_TOKEN: token,
      },
      timeoutMs: 30_000,
    });
    assert.equal(res.code, 2, res.output);
    assert.match(
      res.output,
      /SEED_DAEMON_KEK_FILE .*seed-daemon-kek does not exist; it is configured, so no new KEK is generated/,
    );
    assert.ok(!existsSync(join(bare, "seed.db")), "no keystore written");
    assert.ok(!res.output.includes(kek));
  });

  it("a foreign Host is refused with 403, even with the token", async () => {
    const res = await httpCall(httpPort, {
      method: "POST",
      path: "/com.seed.daemon.v1alpha.Daemon/GetInfo",
      headers: {
        host: `evil.example:${httpPort}`,
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
      },
      body: "{}",
    });
    assert.equal(res.status, 403, res.body);
  });

  it("no token: 401 with WWW-Authenticate: Bearer", async () => {
    const res = await httpCall(httpPort, {
      method: "POST",
      path: "/com.seed.daemon.v1alpha.Daemon/GetInfo",
      headers: { host: `daemon.internal:${httpPort}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 401, res.body);
    assert.match(String(res.headers["www-authenticate"]), /^Bearer\b/);
    assert.ok(!res.body.includes(token));
  });

  it("the gRPC listener is up behind the same Host gate", async () => {
    const session = connect(`http://127.0.0.1:${grpcPort}`);
    try {
      const status = (authority: string) =>
        new Promise<number>((resolvePromise, reject) => {
          const req = session.request({
            ":method": "GET",
            ":path": "/health",
            ":authority": authority,
          });
          req.on("response", (h) => resolvePromise(Number(h[":status"])));
          req.on("error", reject);
          req.resume();
          req.end();
        });
      assert.equal(await status(`daemon.internal:${grpcPort}`), 200);
      assert.equal(await status(`evil.example:${grpcPort}`), 403);
    } finally {
      session.close();
    }
  });

  it("SIGTERM: exits 0, removes daemon.json, and the healthcheck then fails", async () => {
    daemon?.kill("SIGTERM");
    const exit = await daemonExit;
    assert.deepEqual(exit, { code: 0, signal: null }, daemonOutput);
    assert.ok(!existsSync(join(dataDir, "daemon.json")));
    assert.ok(!daemonOutput.includes(token), "the token reached the daemon's output");
    assert.ok(!daemonOutput.includes(kek), "the KEK reached the daemon's output");
    const res = await healthcheck();
    assert.notEqual(res.code, 0, "healthcheck passes with the daemon stopped");
  });
});
