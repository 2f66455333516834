import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { createCapability } from "../../src/blob/index.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed, sign } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { createLogger } from "../../src/logger.js";
import { Authenticator } from "../../src/security/authenticator.js";
import { callerKey } from "../../src/security/caller.js";
import { encodeCapabilitiesHeader } from "../../src/security/forwarded-capabilities.js";
import { ForwardedIdentityResolver } from "../../src/security/forwarded-identity.js";
import { authInterceptor } from "../../src/security/interceptors.js";
import { MasterToken } from "../../src/security/token-store.js";
import { Metrics } from "../../src/server/metrics.js";
import { errorAndMetricsInterceptor } from "../../src/server/rpc-interceptor.js";
import { withToken } from "../helpers/clients.js";
import { loginProof } from "../helpers/login-proof.js";

const FULL = "f".repeat(43);
const WEB = "w".repeat(43);
const SITE = "https://site.example";

function account(words: string) {
  const seed = keyFromMnemonic(words.split(" "));
  const pub = publicKeyFromSeed(seed);
  return { seed, principal: principalToString(pub), sign: (d: Uint8Array) => sign(seed, d) };
}
const owner = account(
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
);
const user = account("legal winner thank year wave sausage worth useful legal winner thank yellow");

function proofFor(who: typeof user, origin = SITE, issuedAt = Date.now()) {
  return loginProof(who.seed, origin, issuedAt);
}

/** Calls a handler that reports the caller it sees. */
async function seen(token: string, headers: Record<string, string>) {
  const auth = new Authenticator(new MasterToken(FULL), undefined, new MasterToken(WEB));
  const transport = createRouterTransport(
    (router) => {
      router.service(Documents, {
        getDocument(_req, ctx) {
          const c = ctx.values.get(callerKey);
          return {
            account: c?.principal ?? "",
            path: (c?.capabilities ?? []).map((x) => `${x.role}:${x.path ?? ""}`).join(","),
          };
        },
      });
    },
    {
      router: {
        // As in the daemon: the error interceptor outside turns domain errors into codes.
        interceptors: [
          errorAndMetricsInterceptor(new Metrics(), createLogger("silent")),
          authInterceptor(auth, undefined, new ForwardedIdentityResolver([SITE])),
        ],
      },
      transport: { interceptors: [withToken(token, headers)] },
    },
  );
  try {
    const doc = await createClient(Documents, transport).getDocument({});
    return { principal: doc.account, caps: doc.path };
  } catch (err) {
    return Code[ConnectError.from(err).code];
  }
}

test("a principal with a valid login proof reaches the handler, from the web and the full token", async () => {
  for (const token of [WEB, FULL]) {
    assert.deepEqual(
      await seen(token, {
        "x-seed-principal": user.principal,
        "x-seed-principal-proof": proofFor(user),
      }),
      { principal: user.principal, caps: "" },
    );
  }
  assert.deepEqual(await seen(WEB, {}), { principal: "", caps: "" }, "no headers: anonymous");
});

test("a principal without, with a foreign or with another user's proof is unauthenticated", async () => {
  const cases: Record<string, string>[] = [
    { "x-seed-principal": user.principal },
    { "x-seed-principal-proof": proofFor(user) },
    {
      "x-seed-principal": user.principal,
      "x-seed-principal-proof": proofFor(user, "https://evil.example"),
    },
    { "x-seed-principal": user.principal, "x-seed-principal-proof": proofFor(owner) },
    {
      "x-seed-principal": user.principal,
      "x-seed-principal-proof": proofFor(user, SITE, Date.now() - 31 * 86_400_000),
    },
    { "x-seed-principal": user.principal, "x-seed-principal-proof": "not-cbor" },
  ];
  for (const headers of cases) {
    assert.equal(await seen(WEB, headers), "Unauthenticated", JSON.stringify(Object.keys(headers)));
  }
});

test("forwarded capabilities: verified ones reach the handler, forged ones are dropped, garbage is invalid_argument", async () => {
  const good = createCapability(
    {
      signer: owner.principal,
      ts: Date.now(),
      delegate: user.principal,
      path: "/a",
      role: "READER",
    },
    owner.sign,
  );
  const forged = new Uint8Array(good.bytes);
  forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 1;
  const headers = {
    "x-seed-principal": user.principal,
    "x-seed-principal-proof": proofFor(user),
    "x-seed-capabilities": encodeCapabilitiesHeader([good.bytes, forged]),
  };
  assert.deepEqual(await seen(WEB, headers), { principal: user.principal, caps: "READER:/a" });
  assert.deepEqual(
    await seen(WEB, headers),
    { principal: user.principal, caps: "READER:/a" },
    "cached",
  );
  assert.equal(await seen(WEB, { "x-seed-capabilities": "%%%" }), "InvalidArgument");
});
