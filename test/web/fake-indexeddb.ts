/**
 * Just enough IndexedDB for `seed-daemon/web/browser` to run in Node: databases by name, object
 * stores with out-of-line keys, `get`/`add`/`put` in one-request transactions, asynchronous
 * events as in a browser. Values are kept by reference (a browser would structured-clone them).
 */

type Handler = (() => void) | null;

class FakeRequest<T> {
  result: T = undefined as T;
  error: unknown = null;
  onsuccess: Handler = null;
  onerror: Handler = null;
}

class FakeOpenRequest<T> extends FakeRequest<T> {
  onupgradeneeded: Handler = null;
  onblocked: Handler = null;
}

class FakeTransaction {
  error: unknown = null;
  oncomplete: Handler = null;
  onerror: Handler = null;
  onabort: Handler = null;
  readonly #stores: Map<string, Map<string, unknown>>;
  readonly #name: string;
  readonly #mode: string;

  constructor(stores: Map<string, Map<string, unknown>>, name: string, mode: string) {
    this.#stores = stores;
    this.#name = name;
    this.#mode = mode;
  }

  objectStore(name: string) {
    if (name !== this.#name) throw new Error("NotFoundError");
    const data = this.#stores.get(name);
    if (data === undefined) throw new Error("NotFoundError");
    const run = (op: () => unknown) => {
      const req = new FakeRequest<unknown>();
      setTimeout(() => {
        try {
          req.result = op();
          req.onsuccess?.();
          this.oncomplete?.();
        } catch (err) {
          req.error = err;
          this.error = err;
          req.onerror?.();
          this.onerror?.();
          this.onabort?.();
        }
      }, 0);
      return req;
    };
    const writable = () => {
      if (this.#mode !== "readwrite") throw new Error("ReadOnlyError");
    };
    return {
      get: (key: string) => run(() => data.get(key)),
      add: (value: unknown, key: string) =>
        run(() => {
          writable();
          if (data.has(key))
            throw Object.assign(new Error("ConstraintError"), { name: "ConstraintError" });
          data.set(key, value);
          return key;
        }),
      put: (value: unknown, key: string) =>
        run(() => {
          writable();
          data.set(key, value);
          return key;
        }),
    };
  }
}

class FakeDatabase {
  readonly stores = new Map<string, Map<string, unknown>>();
  version = 0;
  get objectStoreNames() {
    return { contains: (name: string) => this.stores.has(name) };
  }
  createObjectStore(name: string) {
    this.stores.set(name, new Map());
    return {};
  }
  transaction(name: string, mode: string) {
    return new FakeTransaction(this.stores, name, mode);
  }
  close() {}
}

/** A fresh, empty IndexedDB. `databases` lets a test look inside. */
export function fakeIndexedDb() {
  const databases = new Map<string, FakeDatabase>();
  return {
    databases,
    open(name: string, version: number) {
      const req = new FakeOpenRequest<FakeDatabase>();
      setTimeout(() => {
        let db = databases.get(name);
        const upgrade = db === undefined || db.version < version;
        if (db === undefined) {
          db = new FakeDatabase();
          databases.set(name, db);
        }
        req.result = db;
        if (upgrade) {
          db.version = version;
          req.onupgradeneeded?.();
        }
        req.onsuccess?.();
      }, 0);
      return req;
    },
  };
}
