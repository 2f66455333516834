/**
 * Crash: `opts.crash` rounds of start, a write load (RegisterKey, PairOrigin and
 * CreateDocumentChange in parallel), SIGKILL at a random moment of the load, restart. Every
 * write the daemon acknowledged must be there after the restart that follows it, and all of them
 * after the last one: the key listed with its public key, the origin paired, the document
 * readable at the acknowledged version with its blocks. `paired_origins.json` must parse after
 * every kill, and `PRAGMA integrity_check` must be `ok` after the final clean stop.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { entropyToMnemonic } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { randomToken, type TestDaemon } from "../helpers/daemon.js";
import {
  type Check,
  check,
  ms,
  percentile,
  Rng,
  type RunOptions,
  type ScenarioResult,
} from "./lib.js";
import { withScope } from "./scope.js";
import {
  ACCOUNT,
  type Acked,
  ackCount,
  addAcks,
  blockIds,
  clientsOf,
  integrityCheck,
  missingWrites,
  noAcks,
  paragraph,
  WORDS,
} from "./state.js";

/** Writers of each kind in flight at once. */
const KEY_WRITERS = 2;
const ORIGIN_WRITERS = 1;
const DOC_WRITERS = 2;
/** A document writer starts a new document after this many changes to one. */
const CHANGES_PER_DOC = 6;

/** A document writer's document: its last acknowledged version and block. */
interface Tracked {
  readonly path: string;
  readonly version: string;
  readonly last: string;
  readonly n: number;
}

/**
 * The write load of one round, until `killed()`: every write acknowledged goes into `acks`.
 * Resolves once every writer has seen its call fail (the kill).
 */
async function load(
  d: TestDaemon,
  round: number,
  rng: Rng,
  acks: Acked,
  tracked: (Tracked | undefined)[],
  killed: () => boolean,
): Promise<{ cutOff: number; unexpected: string[] }> {
  const { admin, docs } = clientsOf(d);
  let cutOff = 0;
  const unexpected: string[] = [];
  /** Calls `write` until a call fails: by the kill (cut off), or before it (unexpected). */
  const writer = async (write: (seq: number) => Promise<void>) => {
    for (let seq = 0; !killed(); seq++) {
      try {
        await write(seq);
      } catch (err) {
        if (killed()) cutOff++;
        else unexpected.push(`round ${round}: ${(err as Error).message}`);
        return;
      }
    }
  };
  const keyWriter = (w: number) =>
    writer(async (seq) => {
      const name = `k-r${round}-w${w}-${seq}`;
      const mnemonic = entropyToMnemonic(rng.bytes(16), wordlist).split(" ");
      acks.keys.set(name, (await admin.registerKey({ name, mnemonic })).publicKey);
    });
  const originWriter = (w: number) =>
    writer(async (seq) => {
      const origin = `https://c-r${round}-w${w}-${seq}.example`;
      acks.origins.add((await admin.pairOrigin({ origin, label: "crash" })).origin);
    });
  const docWriter = (w: number) =>
    writer(async (seq) => {
      const id = `r${round}w${w}c${seq}`;
      const t = tracked[w];
      const fresh = t === undefined || t.n >= CHANGES_PER_DOC;
      const path = fresh ? `/crash/w${w}/${id}` : t.path;
      const res = await docs.createDocumentChange({
        account: ACCOUNT,
        path,
        signingKeyName: "main",
        baseVersion: fresh ? "" : t.version,
        changes: paragraph(id, `text of ${id}`, fresh ? "" : t.last, fresh ? path : undefined),
      });
      acks.docs.push({ path, version: res.version, blocks: blockIds(res.content) });
      tracked[w] = { path, version: res.version, last: id, n: fresh ? 1 : t.n + 1 };
    });
  await Promise.all([
    ...Array.from({ length: KEY_WRITERS }, (_, w) => keyWriter(w)),
    ...Array.from({ length: ORIGIN_WRITERS }, (_, w) => originWriter(w)),
    ...Array.from({ length: DOC_WRITERS }, (_, w) => docWriter(w)),
  ]);
  return { cutOff, unexpected };
}

/** Why `paired_origins.json` does not parse; undefined when it does (or is absent). */
function pairedFileProblem(dataDir: string): string | undefined {
  const file = join(dataDir, "paired_origins.json");
  if (!existsSync(file)) return undefined;
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as { origins?: unknown };
    return Array.isArray(v.origins) ? undefined : "no origins array";
  } catch (err) {
    return (err as Error).message;
  }
}

/** Runs `opts.crash` kill rounds and the final check. */
export async function crashScenario(opts: RunOptions): Promise<ScenarioResult> {
  const all = noAcks();
  const misses: string[] = [];
  const fileProblems: string[] = [];
  const startFailures: string[] = [];
  const unexpected: string[] = [];
  const restartMs: number[] = [];
  let cutOff = 0;
  let leftoverTmp = 0;
  let integrity = "not checked";
  await withScope("crash", async (scope) => {
    const dataDir = join(scope.dir, "data");
    const token = randomToken();
    /** A restart on the data dir, timed; undefined (and a noted failure) when it fails. */
    const start = async (which: string) => {
      const t0 = Date.now();
      try {
        const d = await scope.daemon({ dataDir, token });
        restartMs.push(Date.now() - t0);
        return d;
      } catch (err) {
        startFailures.push(`${which}: ${(err as Error).message.slice(0, 500)}`);
        return undefined;
      }
    };
    const rng = new Rng(opts.seed ^ 0xc0ffee);
    const tracked: (Tracked | undefined)[] = [];
    /** What the last round acknowledged: checked first thing after the restart. */
    let pending = noAcks();
    for (let round = 0; round < opts.crash; round++) {
      const d = await start(`round ${round}`);
      if (d === undefined) return;
      if (round === 0) await clientsOf(d).admin.registerKey({ name: "main", mnemonic: WORDS });
      else
        misses.push(...(await missingWrites(d, pending)).map((m) => `after kill ${round}: ${m}`));
      pending = noAcks();
      let killed = false;
      const kill = () => {
        killed = true;
        d.proc.kill("SIGKILL");
      };
      const timer = setTimeout(kill, 100 + rng.int(300));
      const r = await load(d, round, rng, pending, tracked, () => killed);
      clearTimeout(timer);
      if (!killed) kill();
      await d.stop("SIGKILL");
      cutOff += r.cutOff;
      unexpected.push(...r.unexpected);
      addAcks(all, pending);
      const problem = pairedFileProblem(dataDir);
      if (problem !== undefined) fileProblems.push(`after kill ${round + 1}: ${problem}`);
      leftoverTmp = readdirSync(dataDir).filter((f) => f.endsWith(".tmp")).length;
      if ((round + 1) % 10 === 0) opts.log(`crash: ${round + 1}/${opts.crash} kills`);
    }
    const d = await start("the final start");
    if (d === undefined) return;
    misses.push(...(await missingWrites(d, pending)).map((m) => `after the last kill: ${m}`));
    misses.push(...(await missingWrites(d, all)).map((m) => `final check: ${m}`));
    const exit = await d.stop();
    if (exit.code !== 0)
      startFailures.push(`the final SIGTERM stop exited ${exit.code ?? exit.signal}`);
    const problem = pairedFileProblem(dataDir);
    if (problem !== undefined) fileProblems.push(`after the final stop: ${problem}`);
    integrity = integrityCheck(dataDir);
  });
  const checks: Check[] = [
    check(
      "crash.restarts",
      startFailures,
      `${opts.crash} restarts after SIGKILL, median ${ms(percentile(restartMs, 50))} to ready; the final SIGTERM stop exited 0`,
    ),
    check(
      "crash.no-acknowledged-write-lost",
      misses,
      `${all.keys.size} keys, ${all.origins.size} origins, ${all.docs.length} document versions all found`,
      "acknowledged writes missing",
    ),
    check(
      "crash.paired-origins-json-parses",
      fileProblems,
      `parsed after each of ${opts.crash} kills and after the final stop`,
    ),
    {
      id: "crash.integrity-check",
      ok: integrity === "ok",
      detail: `PRAGMA integrity_check: ${integrity}`,
    },
    check(
      "crash.no-error-before-kill",
      unexpected,
      `no call failed before its kill; ${cutOff} cut off by the kills`,
      "calls failed before the kill",
    ),
  ];
  return {
    scenario: "crash",
    requests: ackCount(all) + cutOff + unexpected.length,
    failures:
      misses.length +
      fileProblems.length +
      unexpected.length +
      startFailures.length +
      (integrity === "ok" ? 0 : 1),
    figures: `${opts.crash} SIGKILLs; acknowledged ${all.keys.size} keys, ${all.origins.size} origins, ${all.docs.length} changes; ${cutOff} calls cut off; ${misses.length} lost; integrity ${integrity}`,
    checks,
    details: [
      `  ${leftoverTmp} paired_origins temp file(s) left in the data dir after the last kill`,
    ],
  };
}
