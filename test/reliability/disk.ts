/**
 * Disk full and read-only data dir: writes (RegisterKey, CreateDocumentChange, PairOrigin) while
 * the data dir has no space left, then while it is read-only. The daemon must stay up and keep
 * serving reads, answer failed writes with a clear code (`resource_exhausted`, `unavailable` or
 * `failed_precondition`; what it actually answers is reported), take writes again once the
 * condition is gone, and lose nothing: the data written before, and every write it acknowledged
 * meanwhile, is there after a restart, and `PRAGMA integrity_check` is `ok`.
 *
 * Disk full is a size-limited tmpfs mounted as the data dir's parent, filled with a file (needs
 * root). Read-only is a read-only bind mount of the data dir over itself (root), or, without
 * root, the data dir and seed.db chmod 0500/0400 after start (which root would ignore). Either
 * way files the daemon already holds open stay writable, as they would on a real system. Before
 * the writes, the scenario checks that the condition holds: a file it writes into the data dir
 * itself must fail.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { generateMnemonic } from "../../src/identity/mnemonic.js";
import { randomToken, type TestDaemon } from "../helpers/daemon.js";
import { type Check, check, healthy, type RunOptions, type ScenarioResult } from "./lib.js";
import { type Scope, withScope } from "./scope.js";
import {
  ACCOUNT,
  type Acked,
  addAcks,
  blockIds,
  clientsOf,
  errorOf,
  integrityCheck,
  missingWrites,
  noAcks,
  paragraph,
  WORDS,
} from "./state.js";

/** Codes that tell a caller the write failed for a reason on the daemon's side it can act on. */
const CLEAR = new Set(["resource_exhausted", "unavailable", "failed_precondition"]);
/** Size of the tmpfs of the disk-full half. */
const TMPFS_SIZE = "24m";
/** Writes of each kind per condition. */
const WRITES = 8;
/** Text of each document write: big enough to grow the WAL. */
const PARAGRAPH = "x".repeat(48 * 1024);
/** A write slower than this is answered `deadline_exceeded` by the client. */
const WRITE_TIMEOUT_MS = 15_000;

type Kind = "RegisterKey" | "CreateDocumentChange" | "PairOrigin";

/** What a burst of writes got, by kind and code (with the first message of each code). */
type Tally = Map<Kind, Map<string, { n: number; message: string }>>;

/** One write of each kind, `n` times; every outcome is tallied, every success acknowledged. */
async function burst(d: TestDaemon, label: string, n: number, acked: Acked): Promise<Tally> {
  const { admin, docs } = clientsOf(d);
  const tally: Tally = new Map();
  const opts = { timeoutMs: WRITE_TIMEOUT_MS };
  const write = async (kind: Kind, call: () => Promise<void>) => {
    let outcome = { code: "ok", message: "" };
    try {
      await call();
    } catch (err) {
      outcome = errorOf(err);
    }
    const byCode = tally.get(kind) ?? new Map<string, { n: number; message: string }>();
    const e = byCode.get(outcome.code) ?? { n: 0, message: outcome.message };
    e.n++;
    byCode.set(outcome.code, e);
    tally.set(kind, byCode);
  };
  for (let i = 0; i < n; i++) {
    const name = `${label}-${i}`;
    await write("RegisterKey", async () => {
      const k = await admin.registerKey({ name, mnemonic: generateMnemonic(12) }, opts);
      acked.keys.set(name, k.publicKey);
    });
    const path = `/${label}/${i}`;
    await write("CreateDocumentChange", async () => {
      const doc = await docs.createDocumentChange(
        {
          account: ACCOUNT,
          path,
          signingKeyName: "main",
          changes: paragraph("b", PARAGRAPH, "", path),
        },
        opts,
      );
      acked.docs.push({ path, version: doc.version, blocks: blockIds(doc.content) });
    });
    const origin = `https://${label}-${i}.example`;
    await write("PairOrigin", async () => {
      acked.origins.add((await admin.pairOrigin({ origin, label }, opts)).origin);
    });
  }
  return tally;
}

function describeTally(t: Tally): string {
  return [...t]
    .map(
      ([kind, byCode]) =>
        `${kind}: ${[...byCode].map(([code, e]) => `${code} ×${e.n}${e.message === "" ? "" : ` ("${e.message}")`}`).join(", ")}`,
    )
    .join("; ");
}

/** The answers of a tally that are neither a success nor a clear code. */
function unclear(t: Tally): string[] {
  return [...t].flatMap(([kind, byCode]) =>
    [...byCode]
      .filter(([code]) => code !== "ok" && !CLEAR.has(code))
      .map(([code, e]) => `${kind} → ${code} "${e.message}" ×${e.n}`),
  );
}

/**
 * The distinct "unexpected error in handler" records of a daemon's log: method, error name and
 * the first stack frame, which say where an `internal` answer came from.
 */
function unexpectedErrors(log: string): string[] {
  const seen = new Set<string>();
  for (const line of log.split("\n")) {
    if (!line.includes("unexpected error in handler")) continue;
    try {
      const rec = JSON.parse(line) as { method?: string; err?: { name?: string; stack?: string } };
      const frame = rec.err?.stack?.split("\n")[0]?.trim() ?? "";
      seen.add(`${rec.method ?? "?"}: ${rec.err?.name ?? "?"} ${frame}`);
    } catch {
      // not a JSON line
    }
  }
  return [...seen];
}

/** Reads that must keep working under either condition; returns what failed. */
async function reads(d: TestDaemon): Promise<string[]> {
  const problems: string[] = [];
  const { admin, docs } = clientsOf(d);
  if (!(await healthy(d.httpPort))) problems.push("/health did not answer 200");
  for (const [name, call] of [
    ["GetInfo", () => admin.getInfo({})],
    ["ListKeys", () => admin.listKeys({})],
    ["ListPairedOrigins", () => admin.listPairedOrigins({})],
    ["GetDocument", () => docs.getDocument({ account: ACCOUNT, path: "/before" })],
  ] as const) {
    try {
      await call();
    } catch (err) {
      problems.push(`${name}: ${errorOf(err).code}`);
    }
  }
  return problems;
}

/** Undefined when writing a new file into `dir` fails, as the condition should make it. */
function conditionMissed(dir: string): string | undefined {
  const probe = join(dir, "probe");
  try {
    writeFileSync(probe, Buffer.alloc(64 * 1024));
    return `a 64 KiB file could still be written into ${dir}`;
  } catch {
    return undefined;
  } finally {
    rmSync(probe, { force: true });
  }
}

/** One half's outcome. */
interface Half {
  readonly name: string;
  readonly skipped?: string;
  readonly checks: Check[];
  readonly detail: string;
  readonly writes: number;
  readonly failures: number;
}

/**
 * One half: data written before, `apply` (a reason when it cannot), the writes and reads under
 * the condition, `undo`, one write of each kind again, a clean stop and the restart that must
 * find everything acknowledged.
 */
async function halfOf(
  scope: Scope,
  name: string,
  dataDir: string,
  apply: () => string | undefined,
  undo: () => string | undefined,
): Promise<Half> {
  const token = randomToken();
  const id = name.replaceAll(" ", "-");
  const d = await scope.daemon({ dataDir, token });
  const { admin, docs } = clientsOf(d);
  const before = noAcks();
  before.keys.set("main", (await admin.registerKey({ name: "main", mnemonic: WORDS })).publicKey);
  const doc = await docs.createDocumentChange({
    account: ACCOUNT,
    path: "/before",
    signingKeyName: "main",
    changes: paragraph("b", "before", "", "before"),
  });
  before.docs.push({ path: "/before", version: doc.version, blocks: blockIds(doc.content) });
  before.origins.add(
    (await admin.pairOrigin({ origin: "https://before.example", label: id })).origin,
  );

  const acked = noAcks();
  let tally: Tally = new Map();
  const problems: string[] = [];
  let missed: string | undefined;
  let alive = false;
  const applied = apply();
  if (applied !== undefined) {
    await d.stop();
    return { name, skipped: applied, checks: [], detail: "", writes: 0, failures: 0 };
  }
  try {
    missed = conditionMissed(dataDir);
    tally = await burst(d, `${id}-on`, WRITES, acked);
    problems.push(...(await reads(d)));
    alive = d.proc.exitCode === null && (await healthy(d.httpPort));
  } finally {
    const undone = undo();
    if (undone !== undefined) problems.push(`could not undo: ${undone}`);
  }
  const recovery: Tally = await burst(d, `${id}-after`, 1, acked);
  const exitCode = (await d.stop()).code;
  const logged = unexpectedErrors(d.output());

  const integrity = integrityCheck(dataDir);
  const restarted = await scope.daemon({ dataDir, token });
  addAcks(before, acked);
  const missing = await missingWrites(restarted, before);
  await restarted.stop();

  const bad = unclear(tally);
  const notRecovered = [...recovery].flatMap(([kind, byCode]) =>
    byCode.has("ok") ? [] : [`${kind}: ${[...byCode.keys()].join(",")}`],
  );
  const checks: Check[] = [
    check(
      `disk.${id}.condition-holds`,
      missed === undefined ? [] : [missed],
      "a new file in the data dir could not be written",
    ),
    check(
      `disk.${id}.clear-errors`,
      bad.length === 0
        ? []
        : [
            ...bad,
            `all answers: ${describeTally(tally)}`,
            `logged: ${logged.join("; ") || "nothing"}`,
          ],
      `writes answered: ${describeTally(tally)}`,
      "unclear answers (and what the daemon logged)",
    ),
    check(
      `disk.${id}.stays-up`,
      [
        ...(alive ? [] : ["the daemon died or stopped answering /health"]),
        ...problems,
        ...(exitCode === 0 ? [] : [`the SIGTERM stop exited ${exitCode}`]),
      ],
      "reads and /health served throughout; SIGTERM stop exited 0",
    ),
    check(
      `disk.${id}.recovers`,
      notRecovered,
      "each kind of write worked again once the condition was gone",
      "kinds of write still failing afterwards",
    ),
    check(
      `disk.${id}.no-corruption`,
      [...(integrity === "ok" ? [] : [`integrity_check: ${integrity}`]), ...missing],
      "integrity_check ok; earlier data and every acknowledged write intact after a restart",
      "problems after the restart",
    ),
  ];
  return {
    name,
    checks,
    detail: `  ${name}: ${describeTally(tally)}`,
    writes: WRITES * 3 + 3,
    failures: bad.length + missing.length + (integrity === "ok" ? 0 : 1),
  };
}

/** Runs `cmd`; the error text when it fails. */
function run(cmd: string, args: string[]): string | undefined {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    return undefined;
  } catch (err) {
    return `${cmd} ${args.join(" ")}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}

/** Fills the filesystem of `file` until it reports ENOSPC; the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, "w");
  let written = 0;
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/** The disk-full half: a tmpfs of TMPFS_SIZE holds the data dir and the filler (root only). */
async function diskFull(scope: Scope, root: boolean, opts: RunOptions): Promise<Half> {
  const fsDir = join(scope.dir, "fs");
  mkdirSync(fsDir, { mode: 0o700 });
  const mounted = root
    ? run("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_SIZE},mode=0700`, "tmpfs", fsDir])
    : "not root: a size-limited tmpfs needs mount";
  if (mounted !== undefined) {
    return { name: "disk full", skipped: mounted, checks: [], detail: "", writes: 0, failures: 0 };
  }
  // After the daemons have stopped, whatever happened.
  scope.defer(() => {
    if (run("umount", [fsDir]) !== undefined) run("umount", ["-l", fsDir]);
  });
  const filler = join(fsDir, "filler");
  let filled = 0;
  const half = await halfOf(
    scope,
    "disk full",
    join(fsDir, "data"),
    () => {
      filled = fill(filler);
      return undefined;
    },
    () => {
      rmSync(filler, { force: true });
      return undefined;
    },
  );
  opts.log(`disk: filled the ${TMPFS_SIZE} tmpfs with ${(filled / 2 ** 20).toFixed(1)} MiB`);
  return half;
}

/** The read-only half: a read-only bind mount over the data dir (root), or chmod (others). */
function readOnly(scope: Scope, root: boolean): Promise<Half> {
  const roDir = join(scope.dir, "ro", "data");
  mkdirSync(join(scope.dir, "ro"), { mode: 0o700 });
  let mounted = false;
  const unmount = () => {
    if (!mounted) return undefined;
    mounted = false;
    return run("umount", [roDir]) === undefined ? undefined : run("umount", ["-l", roDir]);
  };
  scope.defer(unmount);
  return halfOf(
    scope,
    "read-only",
    roDir,
    () => {
      if (!root) {
        chmodSync(roDir, 0o500);
        chmodSync(join(roDir, "seed.db"), 0o400);
        return undefined;
      }
      const bound = run("mount", ["--bind", roDir, roDir]);
      if (bound !== undefined) return bound;
      mounted = true;
      const ro = run("mount", ["-o", "remount,bind,ro", roDir]);
      if (ro !== undefined) unmount();
      return ro;
    },
    () => {
      if (root) return unmount();
      chmodSync(roDir, 0o700);
      chmodSync(join(roDir, "seed.db"), 0o600);
      return undefined;
    },
  );
}

/** Runs both halves. */
export async function diskScenario(opts: RunOptions): Promise<ScenarioResult> {
  const root = process.getuid?.() === 0;
  const halves = await withScope("disk", async (scope) => [
    await diskFull(scope, root, opts),
    await readOnly(scope, root),
  ]);
  const ran = halves.filter((h) => h.skipped === undefined);
  const skipped = halves.filter((h) => h.skipped !== undefined);
  return {
    scenario: "disk full / read-only",
    requests: ran.reduce((a, h) => a + h.writes, 0),
    failures: ran.reduce((a, h) => a + h.failures, 0),
    figures: halves
      .map(
        (h) =>
          `${h.name}: ${h.skipped === undefined ? (h.checks.every((c) => c.ok) ? "ok" : "FAIL") : "skipped"}`,
      )
      .join(", "),
    checks: ran.flatMap((h) => h.checks),
    details: ran.map((h) => h.detail),
    ...(skipped.length === 0
      ? {}
      : { skipped: skipped.map((h) => `${h.name}: ${h.skipped}`).join("; ") }),
  };
}
