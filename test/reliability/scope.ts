/**
 * What a scenario starts and creates, undone in one place. A scope owns a temp dir, the
 * daemons started in it and the undo steps of anything else (a mount); closing it stops every
 * daemon still running (SIGTERM, then SIGKILL after {@link STOP_GRACE_MS}), runs the undo steps
 * in reverse and removes the dir, after a failure too. A scope still open when the run ends (a
 * scenario over its time budget) is closed by {@link closeAllScopes}.
 *
 * @module
 */
import { join } from "node:path";
import {
  randomToken,
  removeDir,
  startDaemon,
  type TestDaemon,
  tempDir,
} from "../helpers/daemon.js";
import { within } from "./lib.js";

/** How long a daemon may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 10_000;

const open = new Set<Scope>();

/** How a scenario starts a daemon: on 127.0.0.1 port 0, the token in the environment. */
export interface DaemonOptions {
  /** Default: a fresh dir inside the scope's dir. */
  readonly dataDir?: string;
  /** The full token (`SEED_DAEMON_AUTH_TOKEN`); default a random one. */
  readonly token?: string;
  readonly args?: readonly string[];
  readonly env?: Record<string, string | undefined>;
  /** Default `warn`: the scenarios read figures, not logs. */
  readonly logLevel?: string;
}

/** A scenario's temp dir, daemons and undo steps. */
export class Scope {
  /** The scope's temp dir (0700), removed on close. */
  readonly dir: string;
  readonly #daemons = new Set<TestDaemon>();
  readonly #undo: (() => unknown)[] = [];
  #dataDirs = 0;

  constructor(prefix: string) {
    this.dir = tempDir(`seed-rel-${prefix}-`);
    open.add(this);
  }

  /** Starts `bin/seed-daemon.js` and resolves once it is ready. */
  async daemon(o: DaemonOptions = {}): Promise<TestDaemon> {
    const d = await startDaemon({
      dataDir: o.dataDir ?? join(this.dir, `data-${this.#dataDirs++}`),
      envToken: o.token ?? randomToken(),
      env: o.env,
      args: [...(o.args ?? []), "--log-level", o.logLevel ?? "warn"],
    });
    this.#daemons.add(d);
    d.proc.once("exit", () => this.#daemons.delete(d));
    return d;
  }

  /** Runs `fn` on close, after the daemons are stopped (last registered, first run). */
  defer(fn: () => unknown): void {
    this.#undo.push(fn);
  }

  /** Stops what still runs, undoes, removes the dir. Never throws. */
  async close(): Promise<void> {
    open.delete(this);
    await Promise.all(
      [...this.#daemons].map(async (d) => {
        if ((await within(d.stop(), STOP_GRACE_MS)) === "timeout") await d.stop("SIGKILL");
      }),
    );
    for (const fn of this.#undo.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // the next step must still run
      }
    }
    try {
      removeDir(this.dir);
    } catch {
      // a mount left behind: the undo step reported it
    }
  }
}

/** Runs `fn` in a fresh scope and closes it, however `fn` ends. */
export async function withScope<T>(prefix: string, fn: (s: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope(prefix);
  try {
    return await fn(scope);
  } finally {
    await scope.close();
  }
}

/** Closes every scope still open: for a scenario cut off by its time budget. */
export async function closeAllScopes(): Promise<void> {
  await Promise.all([...open].map((s) => s.close()));
}
