import { lstatSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { DAEMON_FILE_NAME, type DaemonFile, parseDaemonFile } from "../wire.js";

export type { DaemonFile } from "../wire.js";

/** Path of daemon.json in a data dir. */
export function daemonFilePath(dataDir: string): string {
  return join(dataDir, DAEMON_FILE_NAME);
}

/** Reads daemon.json; undefined when absent, a symlink, or not the expected shape. */
export function readDaemonFile(dataDir: string): DaemonFile | undefined {
  const path = daemonFilePath(dataDir);
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return undefined;
  try {
    // A torn or foreign file is treated as absent; the daemon rewrites it atomically.
    return parseDaemonFile(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** True when a process with this pid exists (signal 0 probes without delivering). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Writes daemon.json (0600, temp + fsync + rename). */
export function writeDaemonFile(dataDir: string, info: DaemonFile): void {
  writeFileAtomic(daemonFilePath(dataDir), `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

/** Removes daemon.json if it is ours. */
export function removeDaemonFile(dataDir: string, pid: number): void {
  const current = readDaemonFile(dataDir);
  if (current !== undefined && current.pid !== pid) return;
  try {
    unlinkSync(daemonFilePath(dataDir));
  } catch {
    // Already gone.
  }
}
