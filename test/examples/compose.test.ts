/**
 * examples/docker-compose.yml and examples/web/Dockerfile, checked without a Docker engine: the
 * compose file parsed as YAML, the web Dockerfile's instructions, and the build context the root
 * .dockerignore leaves. site.test.ts runs the web healthcheck command against the real site.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { basename, dirname, join, posix, resolve } from "node:path";
import { describe, test } from "node:test";
import { ROOT, randomToken, removeDir, tempDir } from "../helpers/daemon.js";
import {
  COMPOSE_FILE,
  type ComposeService,
  freePort,
  readCompose,
  runSiteToExit,
  sessionSecret,
} from "./helpers.js";

const compose = readCompose();
const services = compose.services ?? {};
const daemon = services["seed-daemon"] ?? {};
const web = services["seed-web"] ?? {};

/** The one variable `${NAME}`, `${NAME:?msg}` or `${NAME:-x}` a value consists of. */
function variableOf(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  return /^\$\{([A-Z_][A-Z0-9_]*)(?::?[?-][^}]*)?\}$/.exec(value)?.[1];
}

function networksOf(s: ComposeService): string[] {
  const n = s.networks ?? [];
  return Array.isArray(n) ? n : Object.keys(n);
}

function flagValue(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** `user:` as a uid, which must be a fixed number (a name could be root in some image). */
function uidOf(user: string | undefined): number | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(user ?? "");
  return m === null ? undefined : Number(m[1]);
}

/** Docker's .dockerignore: later rules win, and a rule on a directory covers what is inside. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negated = l.startsWith("!");
      const pattern = (negated ? l.slice(1) : l).trim().replace(/^\/+|\/+$/g, "");
      let re = "";
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i] as string;
        if (pattern.startsWith("**/", i)) {
          re += "(?:.*/)?";
          i += 2;
        } else if (pattern.startsWith("**", i)) {
          re += ".*";
          i += 1;
        } else if (c === "*") re += "[^/]*";
        else if (c === "?") re += "[^/]";
        else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
      }
      return { negated, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(path)) ignored = !r.negated;
    return ignored;
  };
}

/** The last stage of a Dockerfile, as `[keyword, args]` (continuations joined, comments dropped). */
function finalStage(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let buf = "";
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      buf += `${line.slice(0, -1)} `;
      continue;
    }
    const full = buf + line;
    buf = "";
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m === null) continue;
    const keyword = (m[1] ?? "").toUpperCase();
    if (keyword === "FROM") out.length = 0;
    out.push([keyword, m[2] ?? ""]);
  }
  return out;
}

describe("examples/docker-compose.yml", () => {
  test("has the two services, each built from this repository", () => {
    assert.deepEqual(Object.keys(services).sort(), ["seed-daemon", "seed-web"]);
    for (const [s, dockerfile] of [
      [daemon, "Dockerfile"],
      [web, "examples/web/Dockerfile"],
    ] as const) {
      assert.equal(resolve(join(COMPOSE_FILE, ".."), s.build?.context ?? ""), ROOT);
      assert.equal(s.build?.dockerfile, dockerfile);
      assert.ok(existsSync(join(ROOT, dockerfile)));
      assert.equal(s.privileged, undefined);
      assert.equal(s.network_mode, undefined, "no host networking");
    }
  });

  test("publishes no daemon port, and exactly the site's port, on loopback", () => {
    assert.equal(daemon.ports, undefined, "the daemon publishes a port");
    assert.equal(web.ports?.length, 1);
    const m = /^(?:(127\.0\.0\.1):)?(\d+):(\d+)$/.exec(String(web.ports?.[0]));
    assert.ok(m, `seed-web ports: ${JSON.stringify(web.ports)}`);
    assert.equal(m[1], "127.0.0.1", "published on the host's loopback only");
    assert.equal(m[3], web.environment?.PORT, "the published container port is the site's PORT");
    assert.equal(web.environment?.HOST, "0.0.0.0");
  });

  test("one variable feeds both ends of the web token; the full token is nowhere", () => {
    const daemonSide = variableOf(daemon.environment?.SEED_DAEMON_WEB_TOKEN);
    const siteSide = variableOf(web.environment?.DAEMON_AUTH_TOKEN);
    assert.equal(daemonSide, "SEED_WEB_TOKEN");
    assert.equal(siteSide, daemonSide);
    for (const s of [daemon, web]) {
      for (const k of ["SEED_DAEMON_AUTH_TOKEN", "SEED_DAEMON_AUTH_TOKEN_PATH"]) {
        assert.equal(s.environment?.[k], undefined, `${k} is set`);
      }
    }
    // The full token lives in the daemon's volume, which the site does not mount.
    assert.equal(web.volumes, undefined, "seed-web mounts a volume");
    assert.equal(variableOf(web.environment?.SEED_WEB_SESSION_SECRET), "SEED_WEB_SESSION_SECRET");
  });

  test("the daemon lets the site's Host in and accepts proofs for the site's origin", () => {
    const argv = daemon.command ?? [];
    assert.equal(daemon.entrypoint, undefined, "the image's ENTRYPOINT (0.0.0.0 binds) is kept");
    const url = new URL(web.environment?.DAEMON_URL ?? "");
    assert.equal(url.protocol, "http:");
    assert.equal(flagValue(argv, "--allowed-host"), url.host);
    assert.equal(url.host, "seed-daemon:55001");
    const origin = variableOf(flagValue(argv, "--cors-origin"));
    assert.equal(origin, "SEED_WEB_ORIGIN");
    assert.equal(variableOf(web.environment?.SEED_WEB_ORIGIN), origin);
  });

  test("both have healthchecks, and the site waits for a healthy daemon", () => {
    // The daemon's check is its image's HEALTHCHECK; compose may tune it but not replace it.
    assert.notEqual(daemon.healthcheck?.disable, true);
    assert.equal(daemon.healthcheck?.test, undefined);
    const image = finalStage(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
    assert.match(image.filter(([k]) => k === "HEALTHCHECK").at(-1)?.[1] ?? "", /'\/health'/);
    const check = web.healthcheck?.test ?? [];
    assert.deepEqual(check.slice(0, 3), ["CMD", "node", "-e"], "node does the request, no curl");
    assert.match(check[3] ?? "", /port:\s*8080\b/);
    assert.match(check[3] ?? "", /'\/health'/);
    assert.equal(web.depends_on?.["seed-daemon"]?.condition, "service_healthy");
  });

  test("both run as a fixed non-root uid", () => {
    for (const s of [daemon, web]) {
      const uid = uidOf(s.user);
      assert.ok(uid !== undefined && uid >= 1000, `user: ${s.user}`);
    }
    // The daemon's volume is made for the image's user.
    assert.equal(daemon.user, "10001:10001");
    const image = finalStage(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
    assert.equal(image.filter(([k]) => k === "USER").at(-1)?.[1], "10001:10001");
  });

  test("the daemon is only on one private (internal) network, which the site shares", () => {
    const nets = compose.networks ?? {};
    const [only, ...rest] = networksOf(daemon);
    assert.ok(only !== undefined && rest.length === 0, `daemon networks: ${networksOf(daemon)}`);
    assert.equal(nets[only]?.internal, true, `${only} is not internal`);
    assert.ok(networksOf(web).includes(only), "the site cannot reach the daemon");
    for (const n of networksOf(web)) assert.ok(n in nets, `undeclared network ${n}`);
    // A port is published only through a network that is not internal.
    assert.ok(networksOf(web).some((n) => nets[n]?.internal !== true));
  });

  test("the daemon's data is a named volume on /data", () => {
    assert.deepEqual(daemon.volumes, ["seed-data:/data"]);
    assert.ok(compose.volumes !== undefined && "seed-data" in compose.volumes);
  });

  test("examples/.env.example documents every variable the file uses", () => {
    const text = readFileSync(COMPOSE_FILE, "utf8");
    const used = new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] ?? ""));
    // Secrets made from Compose's environment name their variable without ${}.
    for (const s of Object.values(compose.secrets ?? {})) {
      if (s.environment !== undefined) used.add(s.environment);
    }
    assert.deepEqual([...used].sort(), [
      "SEED_KEK",
      "SEED_WEB_ORIGIN",
      "SEED_WEB_SESSION_SECRET",
      "SEED_WEB_TOKEN",
    ]);
    const example = readFileSync(join(ROOT, "examples", ".env.example"), "utf8");
    for (const v of used) assert.match(example, new RegExp(`^${v}=`, "m"), v);
    assert.equal((example.match(/openssl rand -base64 32/g) ?? []).length, 3);
    assert.match(example, /never leaves/);
    // Secrets are left empty in the example: nobody runs with a published value.
    assert.match(example, /^SEED_WEB_TOKEN=$/m);
    assert.match(example, /^SEED_WEB_SESSION_SECRET=$/m);
    assert.match(example, /^SEED_KEK=$/m);
  });

  test("the daemon gets its KEK as a secret at the image's SEED_DAEMON_KEK_FILE, readable by its user alone", () => {
    const image = finalStage(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
    const envLine = image
      .filter(([k]) => k === "ENV")
      .map(([, a]) => a)
      .join(" ");
    const kekFile = /\bSEED_DAEMON_KEK_FILE=(\S+)/.exec(envLine)?.[1];
    assert.equal(kekFile, "/run/secrets/seed-daemon-kek");
    const mounts = (daemon.secrets ?? []).map((s) => (typeof s === "string" ? { source: s } : s));
    assert.equal(mounts.length, 1, JSON.stringify(daemon.secrets));
    const [mount] = mounts;
    const target = posix.resolve("/run/secrets", mount?.target ?? mount?.source ?? "");
    assert.equal(target, kekFile, "mounted where the image reads it");
    assert.equal(mount?.uid, String(uidOf(daemon.user)), "owned by the daemon's uid");
    assert.equal(mount?.gid, daemon.user?.split(":")[1]);
    assert.ok(mount?.mode === 0o400 || mount?.mode === 0o600, `mode ${mount?.mode?.toString(8)}`);
    // A file secret is bind-mounted with the host file's owner and mode; one made from the
    // environment is written with the uid, gid and mode above.
    const secret = compose.secrets?.[mount?.source ?? ""];
    assert.deepEqual(secret, { environment: "SEED_KEK" });
    // Not through the container's environment, not in the volume, not to the site.
    for (const k of [
      "SEED_DAEMON_KEK",
      "SEED_DAEMON_KEK_FILE",
      "SEED_DAEMON_KEYSTORE_PASSPHRASE",
    ]) {
      assert.equal(daemon.environment?.[k], undefined, `${k} is set`);
    }
    for (const v of daemon.volumes ?? []) {
      assert.ok(!String(v).includes("/run/secrets"), `a volume over the secrets: ${v}`);
    }
    assert.equal(web.secrets, undefined, "the site gets the KEK");
    assert.equal(JSON.stringify(web.environment).includes("SEED_KEK"), false);
  });
});

describe("examples/web/Dockerfile", () => {
  const stage = finalStage(readFileSync(join(ROOT, "examples", "web", "Dockerfile"), "utf8"));
  const last = (k: string) => stage.filter(([kw]) => kw === k).at(-1)?.[1];

  test("runs the site with node as PID 1, as a fixed non-root uid", () => {
    assert.deepEqual(JSON.parse(last("ENTRYPOINT") ?? "null"), [
      "node",
      "/app/examples/web/server.js",
    ]);
    const uid = uidOf(last("USER"));
    assert.ok(uid !== undefined && uid >= 1000, `USER ${last("USER")}`);
    assert.equal(last("STOPSIGNAL"), "SIGTERM");
    assert.match(last("FROM") ?? "", /^node:\d+-bookworm-slim\b/);
  });

  test("every file it copies from the build context is in it (and no secret is)", () => {
    const ignored = dockerignore(readFileSync(join(ROOT, ".dockerignore"), "utf8"));
    const text = readFileSync(join(ROOT, "examples", "web", "Dockerfile"), "utf8");
    const sources = [...text.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) =>
      (m[1] ?? "").trim().split(/\s+/).slice(0, -1),
    );
    assert.ok(sources.includes("examples/web/server.js"));
    for (const s of sources) {
      assert.ok(existsSync(join(ROOT, s)), `${s} does not exist`);
      assert.ok(!ignored(s), `${s} is left out of the build context by .dockerignore`);
    }
    for (const p of ["examples/.env", "examples/web/.env", "examples/docker-compose.yml"]) {
      assert.ok(ignored(p), `${p} would enter the build context`);
    }
  });

  test("the files the runtime stage copies are enough to start the site", async (t) => {
    // The runtime stage's COPY steps, on the host: `--from=build /app/X` is this repository's
    // built X (dist/, node_modules/, package.json), directories linked rather than copied.
    const workdir = last("WORKDIR") ?? "/";
    const app = tempDir("seed-web-image-");
    t.after(() => removeDir(app));
    const inApp = (p: string) => join(app, posix.relative(workdir, posix.resolve(workdir, p)));
    for (const [keyword, args] of stage) {
      if (keyword !== "COPY") continue;
      const fromBuild = /^--from=\S+\s+/.test(args);
      const parts = args.replace(/^(--\S+\s+)+/, "").split(/\s+/);
      const dest = parts.at(-1) ?? "";
      for (const src of parts.slice(0, -1)) {
        const host = fromBuild ? join(ROOT, posix.relative(workdir, src)) : join(ROOT, src);
        const target = dest.endsWith("/") ? join(inApp(dest), basename(src)) : inApp(dest);
        mkdirSync(dirname(target), { recursive: true });
        if (statSync(host).isDirectory()) symlinkSync(host, target);
        else copyFileSync(host, target);
      }
    }
    const [node, entry] = JSON.parse(last("ENTRYPOINT") ?? "[]") as string[];
    assert.equal(node, "node");
    // The site reads login.js and resolves the browser module before it calls the daemon, so
    // "cannot reach" means every import and file was found in the copied layout.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const exit = await runSiteToExit(
      {
        DAEMON_URL: closed,
        DAEMON_AUTH_TOKEN: randomToken(),
        SEED_WEB_SESSION_SECRET: sessionSecret(),
        SEED_WEB_ORIGIN: "http://localhost:8080",
        PORT: "0",
      },
      10_000,
      inApp(entry ?? ""),
    );
    assert.equal(exit.code, 1, exit.stderr);
    assert.match(exit.stderr, /^seed-web: cannot reach the daemon at /);
  });
});
