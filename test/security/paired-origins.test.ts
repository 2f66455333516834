import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { OriginPolicy } from "../../src/security/origin.js";
import {
  PAIRED_ORIGINS_FILE_NAME,
  PairedOriginStore,
  PairedOriginsError,
} from "../../src/security/paired-origins.js";
import { writeFileAtomic } from "../../src/util/atomic-write.js";

const root = mkdtempSync(join(tmpdir(), "seed-paired-origins-"));
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh private directory per test, so tests never see each other's files. */
function freshDir(): string {
  const dir = join(root, String(counter++));
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

function storePath(): string {
  return join(freshDir(), PAIRED_ORIGINS_FILE_NAME);
}

const sha256Hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Writes a store file by hand with the right mode, for the load tests. */
function writeRaw(path: string, content: string, mode = 0o600): void {
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
}

function validDoc(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    origins: [
      {
        origin: "https://a.example",
        label: "A",
        createTime: "2024-05-01T10:00:00.000Z",
        tokenHash: sha256Hex("sdo_a"),
        ...overrides,
      },
    ],
  };
}

function assertCode(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof PairedOriginsError, `expected PairedOriginsError, got ${err}`);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

describe("writeFileAtomic", () => {
  it("writes the content with the requested mode, regardless of umask", () => {
    const path = join(freshDir(), "f");
    const oldUmask = process.umask(0o077);
    try {
      writeFileAtomic(path, "one", 0o640);
    } finally {
      process.umask(oldUmask);
    }
    assert.equal(readFileSync(path, "utf8"), "one");
    assert.equal(statSync(path).mode & 0o777, 0o640);
  });

  it("defaults to 0600, replaces existing content and leaves no temp file", () => {
    const dir = freshDir();
    const path = join(dir, "f");
    writeFileAtomic(path, "one");
    writeFileAtomic(path, new TextEncoder().encode("two"));
    assert.equal(readFileSync(path, "utf8"), "two");
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ["f"]);
  });

  it("removes the temp file and keeps the target when the rename fails", () => {
    const dir = freshDir();
    const path = join(dir, "f");
    // A non-empty directory cannot be renamed over, even by root.
    mkdirSync(path);
    writeFileSync(join(path, "inside"), "x");
    assert.throws(() => writeFileAtomic(path, "data"));
    assert.deepEqual(readdirSync(dir), ["f"]);
    assert.ok(statSync(path).isDirectory());
  });

  it("replaces a symlink itself instead of writing through it", () => {
    const dir = freshDir();
    const target = join(dir, "target");
    writeFileSync(target, "original");
    const link = join(dir, "link");
    symlinkSync(target, link);
    writeFileAtomic(link, "new");
    assert.equal(readFileSync(target, "utf8"), "original");
    assert.equal(readFileSync(link, "utf8"), "new");
  });
});

describe("PairedOriginStore", () => {
  it("removes the temp files a killed writer left behind, and nothing else", () => {
    const path = storePath();
    const dir = join(path, "..");
    const stale = `.${PAIRED_ORIGINS_FILE_NAME}.0123456789abcdef.tmp`;
    const others = [
      `.${PAIRED_ORIGINS_FILE_NAME}.notours.tmp`,
      "keep.tmp",
      PAIRED_ORIGINS_FILE_NAME,
    ];
    writeFileSync(join(dir, stale), "{", { mode: 0o600 });
    for (const name of others.slice(0, 2)) writeFileSync(join(dir, name), "x");
    PairedOriginStore.load(path).pair("https://a.example", "a");
    assert.deepEqual(readdirSync(dir).sort(), [...others].sort());
  });

  it("starts empty when the file is missing and does not create it", () => {
    const path = storePath();
    const store = PairedOriginStore.load(path);
    assert.deepEqual(store.list(), []);
    assert.equal(store.has("https://a.example"), false);
    assert.throws(() => statSync(path), { code: "ENOENT" });
  });

  it("pairs, persists with mode 0600, and reloads", () => {
    const path = storePath();
    const store = PairedOriginStore.load(path);
    const before = Date.now();
    const result = store.pair("HTTPS://App.Example.com:443/", "My app");
    assert.equal(result.origin, "https://app.example.com");
    assert.equal(result.label, "My app");
    assert.match(result.token, /^sdo_[A-Za-z0-9_-]{43}$/);
    assert.ok(result.createTime.getTime() >= before && result.createTime.getTime() <= Date.now());
    assert.equal(store.has("https://app.example.com"), true);
    assert.equal(statSync(path).mode & 0o777, 0o600);

    const reloaded = PairedOriginStore.load(path);
    assert.deepEqual(reloaded.list(), [
      { origin: "https://app.example.com", label: "My app", createTime: result.createTime },
    ]);
    assert.equal(reloaded.verifyToken(result.token, "https://app.example.com"), true);
    assert.equal(reloaded.findByToken(result.token), "https://app.example.com");
  });

  it("stores only the token hash on disk", () => {
    const path = storePath();
    const store = PairedOriginStore.load(path);
    const { token } = store.pair("https://a.example", "");
    const text = readFileSync(path, "utf8");
    assert.ok(!text.includes(token));
    assert.ok(!text.includes(token.slice("sdo_".length)));
    assert.ok(text.includes(sha256Hex(token)));
    const doc = JSON.parse(text);
    assert.deepEqual(Object.keys(doc).sort(), ["origins", "version"]);
    assert.equal(doc.version, 1);
    assert.deepEqual(Object.keys(doc.origins[0]).sort(), [
      "createTime",
      "label",
      "origin",
      "tokenHash",
    ]);
  });

  it("never lists tokens or hashes", () => {
    const store = PairedOriginStore.load(storePath());
    const { token } = store.pair("https://a.example", "A");
    const listed = store.list();
    assert.deepEqual(Object.keys(listed[0] ?? {}).sort(), ["createTime", "label", "origin"]);
    assert.ok(!JSON.stringify(listed).includes(token));
    assert.ok(!JSON.stringify(listed).includes(sha256Hex(token)));
  });

  it("issues a distinct token for every pairing", () => {
    const store = PairedOriginStore.load(storePath());
    const a = store.pair("https://a.example", "");
    const b = store.pair("https://b.example", "");
    assert.notEqual(a.token, b.token);
  });

  it("re-pairing replaces label and token: the old token fails at once, the new one works", () => {
    const path = storePath();
    const store = PairedOriginStore.load(path);
    const first = store.pair("https://a.example", "first");
    const second = store.pair("https://a.example/", "second");
    assert.notEqual(first.token, second.token);
    assert.equal(store.verifyToken(first.token, "https://a.example"), false);
    assert.equal(store.findByToken(first.token), undefined);
    assert.equal(store.verifyToken(second.token, "https://a.example"), true);
    assert.deepEqual(
      store.list().map((e) => [e.origin, e.label]),
      [["https://a.example", "second"]],
    );
    const reloaded = PairedOriginStore.load(path);
    assert.equal(reloaded.verifyToken(first.token, "https://a.example"), false);
    assert.equal(reloaded.verifyToken(second.token, "https://a.example"), true);
  });

  it("binds a token to exactly its origin", () => {
    const store = PairedOriginStore.load(storePath());
    const a = store.pair("https://a.example", "");
    const b = store.pair("https://b.example", "");
    assert.equal(store.verifyToken(a.token, "https://a.example"), true);
    assert.equal(store.verifyToken(a.token, "HTTPS://A.example:443"), true);
    assert.equal(store.verifyToken(a.token, "https://b.example"), false);
    assert.equal(store.verifyToken(b.token, "https://a.example"), false);
    assert.equal(store.verifyToken(a.token, "http://a.example"), false);
    assert.equal(store.verifyToken(a.token, "https://a.example.evil.com"), false);
    assert.equal(store.verifyToken(a.token, undefined), false);
    assert.equal(store.verifyToken(a.token, ""), false);
    assert.equal(store.verifyToken(a.token, "null"), false);
    assert.equal(store.verifyToken(`${a.token}x`, "https://a.example"), false);
    assert.equal(store.verifyToken("", "https://a.example"), false);
  });

  it("findByToken returns the bound origin or undefined", () => {
    const store = PairedOriginStore.load(storePath());
    const a = store.pair("https://a.example", "");
    const b = store.pair("https://b.example", "");
    const c = store.pair("http://localhost:3000", "");
    assert.equal(store.findByToken(a.token), "https://a.example");
    assert.equal(store.findByToken(b.token), "https://b.example");
    assert.equal(store.findByToken(c.token), "http://localhost:3000");
    assert.equal(store.findByToken("sdo_nope"), undefined);
    assert.equal(store.findByToken(""), undefined);
  });

  it("unpairs and persists the removal", () => {
    const path = storePath();
    const store = PairedOriginStore.load(path);
    const a = store.pair("https://a.example", "");
    const b = store.pair("https://b.example", "");
    store.unpair("HTTPS://A.example/");
    assert.equal(store.has("https://a.example"), false);
    assert.equal(store.verifyToken(a.token, "https://a.example"), false);
    assert.equal(store.findByToken(a.token), undefined);
    const reloaded = PairedOriginStore.load(path);
    assert.deepEqual(
      reloaded.list().map((e) => e.origin),
      ["https://b.example"],
    );
    assert.equal(reloaded.verifyToken(b.token, "https://b.example"), true);
  });

  it("unpair of an unknown origin is not_found; of an invalid one invalid_argument", () => {
    const store = PairedOriginStore.load(storePath());
    store.pair("https://a.example", "");
    assert.throws(() => store.unpair("https://b.example"), assertCode("not_found"));
    assert.throws(() => store.unpair("https://*.example"), assertCode("invalid_argument"));
  });

  it("quotes an origin it does not know cut to 128 characters", () => {
    const store = PairedOriginStore.load(storePath());
    const origin = `https://${Array.from({ length: 4 }, () => "a".repeat(60)).join(".")}.example`;
    assert.throws(
      () => store.unpair(origin),
      (err: unknown) => {
        assert.ok(err instanceof PairedOriginsError);
        assert.equal(err.code, "not_found");
        assert.equal(err.message, `origin "${origin.slice(0, 128)}…" is not paired`);
        return true;
      },
    );
  });

  it("rejects invalid origins and labels with invalid_argument and changes nothing", () => {
    const path = storePath();
    const store = PairedOriginStore.load(path);
    for (const origin of ["null", "*", "https://a.com/x", " https://a.com", "app://seed", ""]) {
      assert.throws(() => store.pair(origin, ""), assertCode("invalid_argument", /origin/));
    }
    const tooLong = "x".repeat(129);
    for (const label of [tooLong, "a\nb", "a\u0000b", "bad\u202Etxt.exe", "\u2028"]) {
      assert.throws(() => store.pair("https://a.com", label), assertCode("invalid_argument"));
    }
    assert.deepEqual(store.list(), []);
    assert.throws(() => statSync(path), { code: "ENOENT" });
  });

  it("accepts a label of exactly 128 characters, counting code points", () => {
    const store = PairedOriginStore.load(storePath());
    assert.equal(store.pair("https://a.com", "x".repeat(128)).label.length, 128);
    const emoji = "😀".repeat(128);
    assert.equal(store.pair("https://b.com", emoji).label, emoji);
    assert.throws(() => store.pair("https://c.com", `${emoji}x`), assertCode("invalid_argument"));
  });

  it("changes nothing in memory when the write fails", () => {
    const dir = freshDir();
    const path = join(dir, PAIRED_ORIGINS_FILE_NAME);
    const store = PairedOriginStore.load(path);
    const a = store.pair("https://a.example", "A");
    // Make the next write fail at the rename, even for root: the target becomes a non-empty dir.
    rmSync(path);
    mkdirSync(path);
    writeFileSync(join(path, "blocker"), "");

    assert.throws(() => store.pair("https://a.example", "replaced"));
    assert.throws(() => store.pair("https://b.example", "B"));
    assert.throws(() => store.unpair("https://a.example"));

    assert.equal(store.verifyToken(a.token, "https://a.example"), true);
    assert.equal(store.has("https://b.example"), false);
    assert.deepEqual(
      store.list().map((e) => [e.origin, e.label]),
      [["https://a.example", "A"]],
    );
    assert.deepEqual(readdirSync(dir), [PAIRED_ORIGINS_FILE_NAME]);
  });

  it("works as the dynamic source of an OriginPolicy", () => {
    const store = PairedOriginStore.load(storePath());
    const policy = new OriginPolicy(["null"], store);
    assert.deepEqual(policy.check("https://a.example"), { kind: "denied", reason: "not_allowed" });
    store.pair("https://a.example", "");
    assert.deepEqual(policy.check("https://A.example"), {
      kind: "allowed",
      origin: "https://a.example",
    });
    store.unpair("https://a.example");
    assert.deepEqual(policy.check("https://a.example"), { kind: "denied", reason: "not_allowed" });
  });

  it("loads a valid hand-written file", () => {
    const path = storePath();
    writeRaw(path, JSON.stringify(validDoc({ createTime: "2024-05-01T12:00:00+02:00" })));
    const store = PairedOriginStore.load(path);
    assert.deepEqual(store.list(), [
      { origin: "https://a.example", label: "A", createTime: new Date("2024-05-01T10:00:00Z") },
    ]);
    assert.equal(store.verifyToken("sdo_a", "https://a.example"), true);
  });

  describe("refuses a bad file, names it and leaves it byte-identical", () => {
    const bad: Array<[string, string, RegExp]> = [
      ["not JSON", "{not json", /not valid JSON/],
      ["empty", "", /not valid JSON/],
      ["an array", "[]", /JSON object/],
      ["wrong version", JSON.stringify({ ...validDoc(), version: 2 }), /version/],
      ["no origins", JSON.stringify({ version: 1 }), /missing "origins"/],
      ["origins not an array", JSON.stringify({ version: 1, origins: {} }), /array/],
      ["unknown top-level field", JSON.stringify({ ...validDoc(), extra: 1 }), /unexpected/],
      ["entry not an object", JSON.stringify({ version: 1, origins: ["x"] }), /not an object/],
      [
        "missing tokenHash",
        JSON.stringify({
          version: 1,
          origins: [{ origin: "https://a.example", label: "", createTime: "2024-05-01T10:00:00Z" }],
        }),
        /missing "tokenHash"/,
      ],
      ["unknown entry field", JSON.stringify(validDoc({ token: "sdo_x" })), /unexpected/],
      [
        "non-canonical origin",
        JSON.stringify(validDoc({ origin: "HTTPS://A.example" })),
        /canonical/,
      ],
      [
        "trailing-slash origin",
        JSON.stringify(validDoc({ origin: "https://a.example/" })),
        /canonical/,
      ],
      ["null origin", JSON.stringify(validDoc({ origin: "null" })), /canonical/],
      ["app origin", JSON.stringify(validDoc({ origin: "app://seed" })), /canonical/],
      ["numeric origin", JSON.stringify(validDoc({ origin: 1 })), /canonical/],
      ["bad label", JSON.stringify(validDoc({ label: "a\nb" })), /label/],
      ["bad createTime", JSON.stringify(validDoc({ createTime: "yesterday" })), /createTime/],
      [
        "invalid date",
        JSON.stringify(validDoc({ createTime: "2024-13-45T10:00:00Z" })),
        /createTime/,
      ],
      ["short tokenHash", JSON.stringify(validDoc({ tokenHash: "abcd" })), /tokenHash/],
      [
        "upper-case tokenHash",
        JSON.stringify(validDoc({ tokenHash: sha256Hex("x").toUpperCase() })),
        /tokenHash/,
      ],
      [
        "duplicate origin",
        JSON.stringify({
          version: 1,
          origins: [
            ...(validDoc().origins as unknown[]),
            ...(validDoc({ tokenHash: sha256Hex("sdo_b") }).origins as unknown[]),
          ],
        }),
        /duplicate/,
      ],
      [
        "duplicate tokenHash",
        JSON.stringify({
          version: 1,
          origins: [
            ...(validDoc().origins as unknown[]),
            ...(validDoc({ origin: "https://b.example" }).origins as unknown[]),
          ],
        }),
        /duplicate/,
      ],
    ];
    for (const [name, content, reason] of bad) {
      it(name, () => {
        const path = storePath();
        writeRaw(path, content);
        const before = readFileSync(path);
        assert.throws(
          () => PairedOriginStore.load(path),
          assertCode("failed_precondition", reason),
        );
        assert.throws(
          () => PairedOriginStore.load(path),
          (err: unknown) => {
            assert.ok(err instanceof Error);
            assert.ok(err.message.includes(path), "message names the file");
            assert.match(err.message, /left untouched/);
            return true;
          },
        );
        assert.deepEqual(readFileSync(path), before);
        assert.equal(statSync(path).mode & 0o777, 0o600);
      });
    }

    it("invalid UTF-8", () => {
      const path = storePath();
      writeFileSync(path, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { mode: 0o600 });
      const before = readFileSync(path);
      assert.throws(() => PairedOriginStore.load(path), assertCode("failed_precondition", /UTF-8/));
      assert.deepEqual(readFileSync(path), before);
    });
  });

  it("refuses a symlink, even to a valid private file", () => {
    const dir = freshDir();
    const real = join(dir, "real.json");
    writeRaw(real, JSON.stringify(validDoc()));
    const link = join(dir, PAIRED_ORIGINS_FILE_NAME);
    symlinkSync(real, link);
    assert.throws(
      () => PairedOriginStore.load(link),
      assertCode("failed_precondition", /symbolic link/),
    );
    // A dangling symlink is not "missing": it is refused too.
    const dangling = join(freshDir(), PAIRED_ORIGINS_FILE_NAME);
    symlinkSync(join(dir, "nowhere"), dangling);
    assert.throws(
      () => PairedOriginStore.load(dangling),
      assertCode("failed_precondition", /symbolic link/),
    );
  });

  it("refuses a file group or others can access", () => {
    for (const mode of [0o640, 0o604, 0o620, 0o602, 0o644]) {
      const path = storePath();
      writeRaw(path, JSON.stringify(validDoc()), mode);
      assert.throws(
        () => PairedOriginStore.load(path),
        assertCode("failed_precondition", /group or others.*0\d{3}/),
      );
      assert.equal(statSync(path).mode & 0o777, mode, "mode left untouched");
    }
  });

  it("refuses a directory in place of the file", () => {
    const path = storePath();
    mkdirSync(path);
    assert.throws(
      () => PairedOriginStore.load(path),
      assertCode("failed_precondition", /not a regular file/),
    );
  });
});
