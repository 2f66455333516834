import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { Authenticator } from "../../src/security/authenticator.js";
import { callerKey } from "../../src/security/caller.js";
import { authInterceptor } from "../../src/security/interceptors.js";
import { MasterToken, tokenDigest } from "../../src/security/token-store.js";
import { withToken } from "../helpers/clients.js";

const TOKEN = "t".repeat(43);

const audited: Array<{ event: string; method: string; origin?: string; outcome: string }> = [];

function transport(token: string | undefined, headers: Record<string, string> = {}) {
  const auth = new Authenticator(new MasterToken(TOKEN), {
    verifyTokenDigest: (d, origin) =>
      d.equals(tokenDigest("o".repeat(43))) && origin === "https://paired.example",
  });
  return createRouterTransport(
    (router) => {
      router.service(Documents, {
        async *watchDocuments(_req, ctx) {
          yield { account: ctx.values.get(callerKey)?.credential.kind ?? "none" };
        },
      });
      router.service(Daemon, {
        getInfo: () => ({}),
        signData: () => ({ signature: new Uint8Array(64) }),
      });
    },
    {
      router: { interceptors: [authInterceptor(auth, { record: (e) => audited.push(e) })] },
      transport: { interceptors: [withToken(token, headers)] },
    },
  );
}

async function streamCode(token: string | undefined, headers: Record<string, string> = {}) {
  const client = createClient(Documents, transport(token, headers));
  try {
    const seen: string[] = [];
    for await (const m of client.watchDocuments({})) seen.push(m.account);
    return seen.join(",");
  } catch (err) {
    return Code[ConnectError.from(err).code];
  }
}

test("the interceptor refuses a server-streaming call without a valid token", async () => {
  assert.equal(await streamCode(undefined), "Unauthenticated");
  assert.equal(await streamCode("x".repeat(43)), "Unauthenticated");
  assert.equal(await streamCode(TOKEN), "master", "the handler sees the caller");
});

test("an origin-bound token works only from its origin, only for read RPCs, with no principal", async () => {
  const o = "o".repeat(43);
  assert.equal(await streamCode(o, { origin: "https://paired.example" }), "origin");
  assert.equal(await streamCode(o, { origin: "https://other.example" }), "Unauthenticated");
  assert.equal(await streamCode(o), "Unauthenticated");
  assert.equal(
    await streamCode(o, { origin: "https://paired.example", "x-seed-principal": "z6Mk" }),
    "PermissionDenied",
  );
  const daemon = createClient(Daemon, transport(o, { origin: "https://paired.example" }));
  await daemon.getInfo({});
  audited.length = 0;
  await assert.rejects(daemon.signData({ signingKeyName: "k", data: new Uint8Array([1]) }), (e) => {
    return ConnectError.from(e).code === Code.PermissionDenied;
  });
  assert.deepEqual(
    audited.map((e) => [e.event, e.method, e.origin, e.outcome]),
    [["scope.denied", "SignData", "https://paired.example", "denied"]],
    "the refused call leaves an audit record",
  );
});
