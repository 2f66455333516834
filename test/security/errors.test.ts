import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { DomainError, isUnexpectedError, toConnectError } from "../../src/errors.js";
import { IdentityError } from "../../src/identity/errors.js";
import { PairedOriginsError } from "../../src/security/paired-origins.js";

test("domain errors keep their code and secret-free message", () => {
  const id = toConnectError(new IdentityError("already_exists", "a key named k already exists"));
  assert.equal(id.code, Code.AlreadyExists);
  assert.equal(id.rawMessage, "a key named k already exists");
  const po = toConnectError(new PairedOriginsError("not_found", "origin is not paired"));
  assert.equal(po.code, Code.NotFound);
  assert.equal(isUnexpectedError(new DomainError("invalid_argument", "x")), false);
});

test("anything else is internal with no detail, even with a lookalike code", () => {
  const lookalike = Object.assign(new Error("secret words in a library message"), {
    code: "not_found",
  });
  for (const err of [lookalike, new Error("boom"), "a string", undefined]) {
    const ce = toConnectError(err);
    assert.equal(ce.code, Code.Internal);
    assert.equal(ce.rawMessage, "internal error");
    assert.equal(isUnexpectedError(err), true);
  }
});

test("ConnectErrors pass through unchanged", () => {
  const original = new ConnectError("nope", Code.PermissionDenied);
  assert.equal(toConnectError(original), original);
  assert.equal(isUnexpectedError(original), false);
});
