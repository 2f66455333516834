/**
 * Crash-safe replacement of small files (docs/architecture.md, "Files in the data dir": temp + fsync + rename).
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Error codes from fsync on a directory that mean "this filesystem or platform cannot do that",
 * not "the write was lost". Treated as success: the rename itself has already happened.
 */
const DIR_FSYNC_UNSUPPORTED = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EISDIR", "EPERM"]);

/**
 * Replaces `path` with `data` so that, after a crash at any point, the file holds either the old
 * content or the new one, never a mix or nothing.
 *
 * The data goes to a fresh temp file in the same directory (same filesystem, so the rename is
 * atomic), created with `O_EXCL` and a random name so it can neither follow a planted symlink nor
 * clobber another writer's temp file. The file is fsynced before the rename so the rename never
 * publishes unwritten blocks, and the directory is fsynced after it so the rename itself survives
 * a power loss. If `path` is a symlink, the link itself is replaced, not its target.
 *
 * Synchronous on purpose: it is called rarely (pairing changes), and a synchronous write cannot
 * interleave with another mutation of the same file.
 *
 * @param path - The file to replace (created if missing).
 * @param data - New content; strings are written as UTF-8.
 * @param mode - Permission bits of the new file, applied exactly (not reduced by the umask).
 *   Defaults to `0o600` because the files written this way hold security state.
 * @throws The underlying fs error. When it is thrown before the rename, the temp file has been
 *   removed and `path` is unchanged. A failing directory fsync (after the rename) is also thrown,
 *   except on filesystems that do not support it; `path` then already holds the new content.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  // Leading dot keeps temp files out of casual listings; the random part makes the name
  // unguessable, so O_EXCL never has to fight a pre-created file.
  const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString("hex")}.tmp`);
  // (removeStaleTemps matches exactly this name shape.)

  let fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    // openSync's mode is filtered through the umask; set it again so the caller gets exactly
    // what was asked for, before any data is in the file.
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== -1) {
      try {
        closeSync(fd);
      } catch {
        // The original error is the one worth reporting.
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // Already gone or never renamed away; nothing more to clean up.
    }
    throw err;
  }

  syncDirectory(dir);
}

/**
 * Removes the temp files that {@link writeFileAtomic} left next to `path` when the process was
 * killed between creating and renaming one. Call it only while no other writer of `path` runs
 * (at start-up, holding the data dir). Only names of exactly the shape writeFileAtomic makes are
 * touched; failures are ignored, since a leftover temp file is untidy, not harmful.
 *
 * @returns How many were removed.
 */
export function removeStaleTemps(path: string): number {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^[0-9a-f]{16}\.tmp$/.test(name.slice(prefix.length)))
      continue;
    try {
      unlinkSync(join(dir, name));
      removed++;
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}

/**
 * Makes a rename in `dir` durable. Skipped on Windows, where a directory cannot be opened for
 * fsync at all; there the rename's durability is left to the filesystem.
 */
function syncDirectory(dir: string): void {
  if (process.platform === "win32") return;
  const dirFd = openSync(dir, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
  try {
    fsyncSync(dirFd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !DIR_FSYNC_UNSUPPORTED.has(code)) throw err;
  } finally {
    closeSync(dirFd);
  }
}
