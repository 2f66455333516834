/**
 * A bounded least-recently-used map. Map iteration order is insertion order, so re-inserting on
 * every hit keeps the oldest entry first.
 */
export class LruCache<K, V> {
  readonly #limit: number;
  readonly #map = new Map<K, V>();

  /** @param limit - most entries kept (at least 1). */
  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  /** Number of entries held. */
  get size(): number {
    return this.#map.size;
  }

  /** The value for `key`, marking it most recently used. */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, v);
    return v;
  }

  /** Stores `value` as the most recently used entry, evicting the oldest beyond the limit. */
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.#limit) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      this.#map.delete(oldest.value);
    }
  }

  /** Removes every entry. */
  clear(): void {
    this.#map.clear();
  }

  /** Removes every entry whose value is `value`. */
  deleteValue(value: V): void {
    for (const [k, v] of this.#map) if (v === value) this.#map.delete(k);
  }
}
