/**
 * Where a web server keeps its login sessions. The cookie only names a session (and carries its
 * login proof, encrypted); the session itself lives here, so ending it here ends it everywhere,
 * whatever copies of the cookie exist.
 *
 * @module
 */

/** A value or a promise of it: a store may be synchronous (memory) or not (Redis, SQL). */
export type Awaitable<T> = T | Promise<T>;

/** What the server keeps for one login session. */
export interface SessionRecord {
  /** The logged-in browser key, `z6Mk…`. */
  readonly principal: string;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /** Unix milliseconds; the session is over from then on. */
  readonly expiresAt: number;
  /** Signed capability blobs the user handed the site, each the blob's encoded bytes. */
  readonly capabilities: readonly Uint8Array[];
}

/**
 * Storage of login sessions by session id. The handlers check `expiresAt` themselves; a store
 * may drop expired or excess records whenever it likes (that only logs a user out). Updates are
 * read-modify-write through {@link SessionStore.get} and {@link SessionStore.set}: a store shared
 * by several processes should make `set` last-writer-wins.
 */
export interface SessionStore {
  /** The record of `id`, or undefined when there is none (never existed, ended, evicted). */
  get(id: string): Awaitable<SessionRecord | undefined>;
  /** Creates or replaces the record of `id`. */
  set(id: string, record: SessionRecord): Awaitable<void>;
  /** Ends the session `id`; no error when there is none. */
  delete(id: string): Awaitable<void>;
}

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /** Most sessions kept; the least recently used one goes first. Default 10 000. */
  readonly maxSessions?: number;
  /** Clock, Unix milliseconds; default `Date.now`. */
  readonly now?: () => number;
}

/** Default {@link MemorySessionStoreOptions.maxSessions}. */
export const DEFAULT_MAX_SESSIONS = 10_000;

function copyRecord(r: SessionRecord): SessionRecord {
  return {
    principal: r.principal,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    capabilities: r.capabilities.map((c) => Uint8Array.from(c)),
  };
}

/**
 * The default {@link SessionStore}: an in-process map, bounded (least recently used first out)
 * and dropping expired records as it meets them. Sessions do not survive a restart and are not
 * shared between processes; use your own store for either.
 */
export class MemorySessionStore implements SessionStore {
  readonly #max: number;
  readonly #now: () => number;
  readonly #map = new Map<string, SessionRecord>();

  constructor(options: MemorySessionStoreOptions = {}) {
    const max = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError("maxSessions must be a positive integer");
    }
    this.#max = max;
    this.#now = options.now ?? Date.now;
  }

  /** Number of records held, expired ones not yet dropped included. */
  get size(): number {
    return this.#map.size;
  }

  get(id: string): SessionRecord | undefined {
    const r = this.#map.get(id);
    if (r === undefined) return undefined;
    this.#map.delete(id);
    if (r.expiresAt <= this.#now()) return undefined;
    this.#map.set(id, r);
    return copyRecord(r);
  }

  set(id: string, record: SessionRecord): void {
    this.#map.delete(id);
    this.#map.set(id, copyRecord(record));
    this.#prune();
  }

  delete(id: string): void {
    this.#map.delete(id);
  }

  /** Drops expired records at the old end, then the least recently used ones beyond the bound. */
  #prune(): void {
    const now = this.#now();
    for (const [id, r] of this.#map) {
      if (this.#map.size <= this.#max && r.expiresAt > now) break;
      this.#map.delete(id);
    }
  }
}
