import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalizeOrigin, OriginPolicy, parsePairableOrigin } from "../../src/security/origin.js";

describe("normalizeOrigin", () => {
  const canonical: Array<[string, string]> = [
    ["https://app.example.com", "https://app.example.com"],
    ["HTTPS://App.Example.COM", "https://app.example.com"],
    ["https://a.com:443", "https://a.com"],
    ["http://a.com:80", "http://a.com"],
    ["http://a.com:080", "http://a.com"],
    ["https://a.com:8443", "https://a.com:8443"],
    ["http://a.com:443", "http://a.com:443"],
    ["https://a.com:80", "https://a.com:80"],
    ["http://localhost:3000", "http://localhost:3000"],
    ["http://127.0.0.1:8080", "http://127.0.0.1:8080"],
    ["http://[::1]:3000", "http://[::1]:3000"],
    ["http://[0:0:0:0:0:0:0:1]", "http://[::1]"],
    ["http://[::1]:80", "http://[::1]"],
    ["HTTP://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"],
    ["https://bücher.example", "https://xn--bcher-kva.example"],
    ["https://BÜCHER.example", "https://xn--bcher-kva.example"],
    ["https://xn--bcher-kva.example", "https://xn--bcher-kva.example"],
    ["https://XN--BCHER-KVA.example", "https://xn--bcher-kva.example"],
    ["https://xn--ls8h.la", "https://xn--ls8h.la"],
    // Trailing dot is a different host for the browser too; it must not collapse into a.com.
    ["http://a.com.", "http://a.com."],
    // Custom (non-special) schemes: kept host, lower-cased by us, no default port.
    ["app://seed", "app://seed"],
    ["APP://Seed", "app://seed"],
    ["app://seed:80", "app://seed:80"],
    ["app://seed:0080", "app://seed:80"],
    ["app://[0:0:0:0:0:0:0:1]", "app://[::1]"],
    ["tauri://localhost", "tauri://localhost"],
    ["null", "null"],
  ];
  for (const [input, expected] of canonical) {
    it(`normalizes ${JSON.stringify(input)} to ${expected}`, () => {
      assert.equal(normalizeOrigin(input), expected);
    });
  }

  const invalid: Array<[string, string]> = [
    ["", "empty"],
    ["*", "bare wildcard"],
    ["https://*.example.com", "wildcard host"],
    ["https://a.com*", "wildcard suffix"],
    ["https://a.com/", "trailing slash (browsers never send it)"],
    ["https://a.com/path", "path"],
    ["https://a.com//", "double slash"],
    ["https://a.com?", "empty query"],
    ["https://a.com?x=1", "query"],
    ["https://a.com#", "empty fragment"],
    ["https://a.com#frag", "fragment"],
    ["https://user:pw@a.com", "userinfo"],
    ["https://@a.com", "empty userinfo"],
    ["https://evil.com@a.com", "userinfo look-alike"],
    ["https://a.com\\evil", "backslash"],
    [" https://a.com", "leading space"],
    ["https://a.com ", "trailing space"],
    ["https://a.com\t", "tab (URL parser would strip it)"],
    ["https://a.c\nom", "newline (URL parser would strip it)"],
    ["https://a.com\u0000", "NUL"],
    ["https://a\u200b.com", "zero-width space"],
    ["https://a%41.com", "percent-encoding"],
    ["https:a.com", "missing //"],
    ["https:/a.com", "single /"],
    ["//a.com", "no scheme"],
    ["a.com", "no scheme at all"],
    ["https://", "empty host"],
    ["app://", "empty host, custom scheme"],
    ["https://a.com:", "empty port"],
    ["https://a.com:65536", "port out of range"],
    ["https://a.com:123456", "port too long"],
    ["https://a.com:-1", "negative port"],
    ["https://[::1", "unclosed IPv6"],
    ["https://[::1%25eth0]", "IPv6 zone"],
    ["https://256.0.0.1", "bad IPv4"],
    // Our own A-label rule, so Node 20 and 24 (whose URL parsers differ here) agree.
    ["https://xn--a.com", "bad punycode"],
    ["https://xn--zz.example", "punycode that does not decode"],
    ["https://xn--bcher-kv.example", "truncated punycode"],
    ["https://www.xn--abc-.example", "punycode of ASCII only"],
    ["app://xn--a", "bad punycode in an app scheme"],
    ["1http://a.com", "scheme starting with a digit"],
    ["ht_tp://a.com", "bad scheme char"],
    ["file://host", "file: origins are opaque"],
    ["javascript://a.com", "javascript: origins are opaque"],
    ["app://bücher", "non-ASCII opaque host"],
    ["NULL", "null is only the exact lower-case token"],
    ["null ", "null with whitespace"],
    ["garbage", "garbage"],
    ["💥", "emoji"],
    [`https://${"a".repeat(2050)}.com`, "too long"],
  ];
  for (const [input, why] of invalid) {
    it(`rejects ${why}`, () => {
      assert.equal(normalizeOrigin(input), null);
    });
  }

  it("keeps look-alike hosts distinct", () => {
    const allowed = normalizeOrigin("https://allowed.example.com");
    assert.notEqual(normalizeOrigin("https://allowed.example.com.evil.com"), allowed);
    assert.notEqual(normalizeOrigin("https://evil-allowed.example.com"), allowed);
    assert.notEqual(normalizeOrigin("https://allowed.example.co"), allowed);
  });

  it("keeps schemes distinct", () => {
    assert.notEqual(normalizeOrigin("http://a.com"), normalizeOrigin("https://a.com"));
    assert.notEqual(normalizeOrigin("http://a.com:443"), normalizeOrigin("https://a.com"));
  });

  it("keeps ports distinct", () => {
    assert.notEqual(normalizeOrigin("https://a.com:8443"), normalizeOrigin("https://a.com"));
  });

  it("is idempotent on its output", () => {
    for (const [input] of canonical) {
      const once = normalizeOrigin(input);
      assert.ok(once !== null);
      assert.equal(normalizeOrigin(once), once);
    }
  });

  it("accepts an origin of exactly 2048 characters and rejects 2049", () => {
    // Dots every 64 characters keep each DNS label within 63 characters.
    let host = "";
    while (`https://${host}`.length < 2048) host += host.length % 64 === 63 ? "." : "a";
    const atLimit = `https://${host}`;
    assert.equal(atLimit.length, 2048);
    assert.equal(normalizeOrigin(atLimit), atLimit);
    assert.equal(normalizeOrigin(`${atLimit}a`), null);
  });
});

describe("parsePairableOrigin", () => {
  it("accepts http and https and normalizes", () => {
    assert.deepEqual(parsePairableOrigin("https://App.Example.com:443"), {
      ok: true,
      origin: "https://app.example.com",
    });
    assert.deepEqual(parsePairableOrigin("http://localhost:3000"), {
      ok: true,
      origin: "http://localhost:3000",
    });
    assert.deepEqual(parsePairableOrigin("http://[0:0:0:0:0:0:0:1]:3000"), {
      ok: true,
      origin: "http://[::1]:3000",
    });
    assert.deepEqual(parsePairableOrigin("https://bücher.example"), {
      ok: true,
      origin: "https://xn--bcher-kva.example",
    });
  });

  it("accepts and drops one trailing slash", () => {
    assert.deepEqual(parsePairableOrigin("https://a.com/"), { ok: true, origin: "https://a.com" });
    assert.deepEqual(parsePairableOrigin("https://a.com:8443/"), {
      ok: true,
      origin: "https://a.com:8443",
    });
  });

  const refused: Array<[string, RegExp]> = [
    ["", /empty/],
    [" https://a.com", /whitespace/],
    ["https://a.com ", /whitespace/],
    ["https://a.com\n", /whitespace/],
    ["null", /null/],
    ["NULL", /null/],
    ["*", /wildcard/],
    ["https://*.example.com", /wildcard/],
    ["https://a.com//", /path/],
    ["https://a.com/x", /path/],
    ["https://a.com/x/", /path/],
    ["https://a.com?q", /query/],
    ["https://a.com/?q", /query|path/],
    ["https://a.com#f", /fragment/],
    ["https://u@a.com", /userinfo/],
    ["https://u:p@a.com", /userinfo/],
    ["https://", /empty host/],
    ["https:///", /empty host|path/],
    ["app://seed", /only http and https/],
    ["ws://a.com", /only http and https/],
    ["file:///etc/passwd", /only http and https/],
    ["a.com", /form/],
    ["https://a.com:99999", /not a valid URL/],
    ["https://exa mple.com", /whitespace/],
  ];
  for (const [input, reason] of refused) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      const result = parsePairableOrigin(input);
      assert.equal(result.ok, false);
      assert.ok(!result.ok);
      assert.match(result.reason, reason);
    });
  }

  it("never echoes more than 128 characters of the input", () => {
    const scheme = `x${"y".repeat(5000)}`;
    const result = parsePairableOrigin(`${scheme}://a.com`);
    assert.ok(!result.ok);
    assert.ok(result.reason.includes(`"x${"y".repeat(127)}…"`), result.reason);
    assert.ok(!result.reason.includes("y".repeat(128)));
  });
});

describe("OriginPolicy", () => {
  it("reports none when there is no Origin header", () => {
    assert.deepEqual(new OriginPolicy([]).check(undefined), { kind: "none" });
  });

  it("denies an empty Origin header as invalid", () => {
    assert.deepEqual(new OriginPolicy(["null"]).check(""), { kind: "denied", reason: "invalid" });
  });

  it("denies garbage as invalid and unknown origins as not_allowed", () => {
    const policy = new OriginPolicy(["https://a.com"]);
    assert.deepEqual(policy.check("https://a.com/x"), { kind: "denied", reason: "invalid" });
    assert.deepEqual(policy.check("*"), { kind: "denied", reason: "invalid" });
    assert.deepEqual(policy.check("https://b.com"), { kind: "denied", reason: "not_allowed" });
    assert.deepEqual(policy.check("http://a.com"), { kind: "denied", reason: "not_allowed" });
    assert.deepEqual(policy.check("https://a.com.evil.com"), {
      kind: "denied",
      reason: "not_allowed",
    });
    assert.deepEqual(policy.check("null"), { kind: "denied", reason: "not_allowed" });
  });

  it("matches static entries after normalisation, both ways", () => {
    const policy = new OriginPolicy(["HTTPS://App.Example.com:443", "null", "app://seed"]);
    assert.deepEqual(policy.check("https://app.example.com"), {
      kind: "allowed",
      origin: "https://app.example.com",
    });
    assert.deepEqual(policy.check("https://APP.example.com:443"), {
      kind: "allowed",
      origin: "https://app.example.com",
    });
    assert.deepEqual(policy.check("null"), { kind: "allowed", origin: "null" });
    assert.deepEqual(policy.check("app://seed"), { kind: "allowed", origin: "app://seed" });
    assert.deepEqual(policy.check("app://other"), { kind: "denied", reason: "not_allowed" });
  });

  it("does not add defaults on its own", () => {
    const policy = new OriginPolicy([]);
    assert.deepEqual(policy.check("null"), { kind: "denied", reason: "not_allowed" });
    assert.deepEqual(policy.check("app://seed"), { kind: "denied", reason: "not_allowed" });
  });

  it("throws on an invalid static entry, naming it", () => {
    assert.throws(
      () => new OriginPolicy(["https://ok.com", "https://*.example.com"]),
      (err) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /https:\/\/\*\.example\.com/);
        return true;
      },
    );
    assert.throws(() => new OriginPolicy(["*"]), /"\*"/);
    assert.throws(() => new OriginPolicy(["https://a.com/"]), /"https:\/\/a\.com\/"/);
    assert.throws(() => new OriginPolicy([""]), /""/);
  });

  it("consults the dynamic source on every call with the normalized origin", () => {
    const paired = new Set<string>();
    const seen: string[] = [];
    const policy = new OriginPolicy(["https://static.example"], {
      has(origin) {
        seen.push(origin);
        return paired.has(origin);
      },
    });
    assert.deepEqual(policy.check("https://Dyn.Example:443"), {
      kind: "denied",
      reason: "not_allowed",
    });
    paired.add("https://dyn.example");
    assert.deepEqual(policy.check("https://Dyn.Example:443"), {
      kind: "allowed",
      origin: "https://dyn.example",
    });
    paired.delete("https://dyn.example");
    assert.deepEqual(policy.check("https://dyn.example"), {
      kind: "denied",
      reason: "not_allowed",
    });
    assert.deepEqual(seen, ["https://dyn.example", "https://dyn.example", "https://dyn.example"]);
  });

  it("prefers the static set and never asks the dynamic source about null or invalid input", () => {
    const seen: string[] = [];
    const policy = new OriginPolicy(["https://static.example"], {
      has(origin) {
        seen.push(origin);
        return true;
      },
    });
    assert.equal(policy.check("https://static.example").kind, "allowed");
    assert.deepEqual(policy.check("null"), { kind: "denied", reason: "not_allowed" });
    assert.deepEqual(policy.check("https://x.com/path"), { kind: "denied", reason: "invalid" });
    assert.deepEqual(seen, []);
  });
});
