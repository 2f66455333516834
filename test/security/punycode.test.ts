import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { domainToUnicode } from "node:url";
import { hasValidALabels, isValidALabel } from "../../src/security/punycode.js";

describe("A-label rule", () => {
  test("accepts well-formed A-labels (RFC 3492 §7.1 samples and common names)", () => {
    for (const label of [
      "xn--bcher-kva", // bücher
      "xn--mnchen-3ya", // münchen
      "xn--ls8h", // 💩
      "xn--egbpdaj6bu4bxfgehfvwxn", // RFC 3492 (A) Arabic (Egyptian)
      "xn--ihqwcrb4cv8a8dqg056pqjye", // RFC 3492 (B) Chinese (simplified)
      "xn--b1abfaaepdrnnbgefbadotcwatmq2g4l", // RFC 3492 (I) Russian
    ]) {
      assert.equal(isValidALabel(label), true, label);
      assert.notEqual(domainToUnicode(label), label, `${label} decodes to Unicode`);
    }
  });

  test("refuses malformed or non-canonical labels", () => {
    for (const label of [
      "xn--", // empty
      "xn--a", // decodes to U+0080, a control character
      "xn--zz", // ends mid-number
      "xn--bcher-kv", // truncated
      "xn--abc-", // only ASCII
      "xn--BCHER-KVA", // not lower-case
      "xn--bcher-kva!", // not a punycode digit
      `xn--${"9".repeat(59)}`, // overflows
    ]) {
      assert.equal(isValidALabel(label), false, label);
    }
  });

  test("checks every label of a host name", () => {
    assert.equal(hasValidALabels("www.xn--bcher-kva.example"), true);
    assert.equal(hasValidALabels("xn--bcher-kva.xn--a.example"), false);
    assert.equal(hasValidALabels("plain.example"), true);
  });
});
