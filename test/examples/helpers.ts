import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { parse } from "yaml";
import {
  type DocumentChange,
  DocumentChangeSchema,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { ROOT } from "../helpers/daemon.js";

/** The reference site's entry point, run as the compose file's image runs it: plain node. */
export const SITE = join(ROOT, "examples", "web", "server.js");
/** The compose file of the example deployment. */
export const COMPOSE_FILE = join(ROOT, "examples", "docker-compose.yml");

/** The compose file, parsed. */
export function readCompose(): ComposeFile {
  return parse(readFileSync(COMPOSE_FILE, "utf8")) as ComposeFile;
}

/** The parts of a compose file the tests read (the YAML is not trusted to have them). */
export interface ComposeFile {
  services?: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string; environment?: string; external?: boolean }>;
  networks?: Record<string, { internal?: boolean } | null>;
}
export interface ComposeService {
  build?: { context?: string; dockerfile?: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  user?: string;
  ports?: unknown[];
  expose?: unknown[];
  volumes?: unknown[];
  networks?: string[] | Record<string, unknown>;
  network_mode?: string;
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: {
    test?: string[];
    disable?: boolean;
    interval?: string;
    timeout?: string;
    retries?: number;
    start_period?: string;
  };
  privileged?: boolean;
  secrets?: Array<
    string | { source?: string; target?: string; uid?: string; gid?: string; mode?: number }
  >;
}

/** A free loopback port: bound on port 0, then closed so the caller can use the number. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

/** A random session secret, as `openssl rand -base64 32` makes one. */
export function sessionSecret(): string {
  return randomBytes(32).toString("base64");
}

/** The parent's environment without anything that would configure the site or the daemon. */
function siteEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DAEMON_|SEED_)/.test(k) || k === "PORT" || k === "HOST") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A site child process that printed its listening line. */
export interface RunningSite {
  readonly proc: ChildProcess;
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How a site child process that exited on its own ended. */
export interface SiteExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From spawn to exit, in milliseconds. */
  readonly ms: number;
}

function spawnSite(env: Record<string, string>, script = SITE) {
  const proc = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: siteEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  proc.stdout.on("data", (b: Buffer) => {
    out.stdout += b.toString("utf8");
  });
  proc.stderr.on("data", (b: Buffer) => {
    out.stderr += b.toString("utf8");
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once("exit", (code, signal) => r({ code, signal })),
  );
  return { proc, out, exited };
}

/** Runs the site (or a copy of it at `script`) and waits for it to exit (killed after `timeoutMs`). */
export async function runSiteToExit(
  env: Record<string, string>,
  timeoutMs = 10_000,
  script = SITE,
): Promise<SiteExit> {
  const t0 = performance.now();
  const { proc, out, exited } = spawnSite(env, script);
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const { code, signal } = await exited;
  clearTimeout(timer);
  return { code, signal, stdout: out.stdout, stderr: out.stderr, ms: performance.now() - t0 };
}

/** Starts the site and resolves once it printed `listening on http://127.0.0.1:<port>`. */
export async function startSite(env: Record<string, string>): Promise<RunningSite> {
  const { proc, out, exited } = spawnSite(env);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`site not listening in 10 s:\n${out.stdout}\n${out.stderr}`));
    }, 10_000);
    const onData = () => {
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(out.stdout);
      if (m === null) return;
      clearTimeout(timer);
      proc.stdout.off("data", onData);
      resolve(Number(m[1]));
    };
    proc.stdout.on("data", onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`site exited (${code ?? signal}) before listening:\n${out.stderr}`));
    });
  });
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      return exited;
    },
  };
}

/** `set_metadata title`. */
export const title = (text: string): DocumentChange =>
  create(DocumentChangeSchema, {
    op: { case: "setMetadata", value: { key: "title", value: text } },
  });

/** A block placed under `parent` after `after` and given its content. */
export function block(
  id: string,
  type: string,
  text: string,
  place: { parent?: string; after?: string; attributes?: Record<string, string> } = {},
): DocumentChange[] {
  return [
    create(DocumentChangeSchema, {
      op: {
        case: "moveBlock",
        value: { blockId: id, parent: place.parent ?? "", leftSibling: place.after ?? "" },
      },
    }),
    create(DocumentChangeSchema, {
      op: {
        case: "replaceBlock",
        value: { id, type, text, attributes: place.attributes ?? {} },
      },
    }),
  ];
}
