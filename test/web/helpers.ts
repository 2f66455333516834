import { randomBytes } from "node:crypto";
import nacl from "tweetnacl";
import { createCapability } from "../../src/blob/index.js";
import { principalToString } from "../../src/identity/principal.js";
import type { AuthHandlers } from "../../src/web/index.js";
import { principalProofMessage } from "../../src/wire.js";

/** A browser key made with tweetnacl, an Ed25519 implementation independent of the library's. */
export interface TestKey {
  readonly seed: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly principal: string;
}

export function newKey(seed: Uint8Array = new Uint8Array(randomBytes(32))): TestKey {
  const pair = nacl.sign.keyPair.fromSeed(seed);
  return { seed, secretKey: pair.secretKey, principal: principalToString(pair.publicKey) };
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64url"));

/** A POST the way a same-origin `fetch` from the site's page sends it. */
export function post(
  origin: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Request {
  return new Request(`${origin}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin, ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

export interface Challenge {
  challenge: string;
  nonce: string;
  expiresAt: string;
}

export async function getChallenge(auth: AuthHandlers): Promise<Challenge> {
  const res = await auth.challenge(post(auth.origin, "/hm/auth/challenge"));
  if (res.status !== 200) throw new Error(`challenge: ${res.status}`);
  return (await res.json()) as Challenge;
}

/** The signature the browser makes: over `challenge ‖ UTF-8(origin) ‖ nonce`. */
export function sign(key: TestKey, c: Challenge, origin: string): string {
  const msg = principalProofMessage(unb64(c.challenge), origin, unb64(c.nonce));
  return b64(nacl.sign.detached(msg, key.secretKey));
}

/** The `name=value` part of a Set-Cookie header, for a Cookie header. */
export function cookieOf(res: Response): string {
  const set = res.headers.getSetCookie()[0];
  if (set === undefined) throw new Error("no Set-Cookie");
  return set.split(";")[0] as string;
}

/** Logs `key` in through the handlers; returns the response and the cookie. */
export async function login(
  auth: AuthHandlers,
  key: TestKey,
  extra: Record<string, unknown> = {},
): Promise<{ res: Response; cookie: string }> {
  const c = await getChallenge(auth);
  const res = await auth.login(
    post(auth.origin, "/hm/auth/login", {
      publicKeyMultikey: key.principal,
      signature: sign(key, c, auth.origin),
      nonce: c.nonce,
      ...extra,
    }),
  );
  return { res, cookie: res.status === 200 ? cookieOf(res) : "" };
}

/** A request of the site's own pages carrying `cookie`. */
export function page(origin: string, cookie: string): Request {
  return new Request(`${origin}/some/page`, { headers: { cookie } });
}

/** A signed Capability blob (its encoded bytes) issued by `issuer` for `delegate`. */
export function capability(
  issuer: TestKey,
  delegate: string,
  path = "/private",
  role: "READER" | "WRITER" = "READER",
): Uint8Array {
  return createCapability(
    { signer: issuer.principal, ts: Date.now(), delegate, path, role },
    (data) => nacl.sign.detached(data, issuer.secretKey),
  ).bytes;
}
