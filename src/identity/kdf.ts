import { argon2idAsync } from "@noble/hashes/argon2.js";
import { IdentityError } from "./errors.js";

/** Argon2id cost parameters (RFC 9106 names). */
export interface Argon2idParams {
  /** Passes over memory. */
  readonly t: number;
  /** Memory in KiB. */
  readonly m: number;
  /** Lanes (parallelism). */
  readonly p: number;
}

/**
 * Parameters for every password-derived key this daemon creates (`.hmkey.json` and the
 * keystore passphrase): RFC 9106's second recommended option, t=3, 64 MiB, 4 lanes.
 */
export const DEFAULT_ARGON2ID_PARAMS: Argon2idParams = Object.freeze({ t: 3, m: 65536, p: 4 });

/** Salt length for new derivations, in bytes. */
export const KDF_SALT_LENGTH = 16;

/** Length of every derived key, in bytes (an XChaCha20-Poly1305 key). */
export const KDF_KEY_LENGTH = 32;

// Parameters read from a file or a database are attacker-controlled: without a ceiling a crafted
// key file could ask for gigabytes of memory or hours of CPU. The ceilings are 4x the defaults.
const MAX_T = 12;
const MAX_M = 262144;
const MAX_P = 16;

/**
 * Checks that untrusted Argon2id parameters are integers within the bounds this daemon is
 * willing to spend (t ≤ 12, m ≤ 256 MiB, p ≤ 16, m ≥ 8·p as Argon2 requires).
 *
 * @param params - parameters as read from a file or database.
 * @param what - what they came from, for the error message.
 * @throws {IdentityError} `invalid_argument` when they are out of bounds.
 */
export function checkArgon2idParams(params: Argon2idParams, what: string): void {
  const { t, m, p } = params;
  const ok =
    Number.isSafeInteger(t) &&
    Number.isSafeInteger(m) &&
    Number.isSafeInteger(p) &&
    t >= 1 &&
    t <= MAX_T &&
    p >= 1 &&
    p <= MAX_P &&
    m >= 8 * p &&
    m <= MAX_M;
  if (!ok) {
    throw new IdentityError("invalid_argument", `${what}: unsupported argon2id parameters`);
  }
}

/**
 * Derivations the daemon accepts at once: one runs, the others wait their turn. Each holds up to
 * 256 MiB while it runs and takes about a second at the default costs, so running them side by
 * side would only multiply the memory (JavaScript has one thread): they run one at a time. Past
 * this many a caller is told to retry at once, rather than wait longer than a typical 10 s
 * client deadline (the reliability fuzz saw most callers in a queue of 16 time out).
 */
export const MAX_PENDING_DERIVATIONS = 8;

let running: Promise<unknown> = Promise.resolve();
let pending = 0;

function abandoned(): IdentityError {
  return new IdentityError("failed_precondition", "the call ended before its key derivation ran");
}

/**
 * Derives a 32-byte key from a password with Argon2id.
 *
 * Runs the asynchronous variant: at the default parameters one derivation takes about a second
 * of CPU in pure JS, and a daemon must keep answering other requests meanwhile. Derivations run
 * one at a time, so concurrent ImportKey / ExportKey calls cannot multiply the daemon's memory.
 *
 * @throws {IdentityError} `resource_exhausted` when {@link MAX_PENDING_DERIVATIONS} are already
 *   running or waiting; `failed_precondition` when `signal` aborted before its turn.
 *
 * The password is UTF-8 encoded without Unicode normalisation, so the same bytes give the same
 * key in any other Argon2id implementation (Go's `argon2.IDKey([]byte(pw))`, libsodium).
 *
 * @param password - the password or passphrase.
 * @param salt - random salt, at least 8 bytes.
 * @param params - cost parameters; check untrusted ones with {@link checkArgon2idParams} first.
 * @param signal - the caller's (an RPC's `ctx.signal`): a derivation still waiting for its turn
 *   when it aborts gives its place up at once and never runs, so callers who gave up cannot keep
 *   the queue full. It is a parameter, not an `AsyncLocalStorage`: on Node 20, one
 *   `AsyncLocalStorage.run` turns on promise hooks for the rest of the process, and every later
 *   RPC paid for them.
 * @returns the 32-byte key; the caller should zero it when done.
 */
export async function deriveKeyFromPassword(
  password: string,
  salt: Uint8Array,
  params: Argon2idParams = DEFAULT_ARGON2ID_PARAMS,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  if (pending >= MAX_PENDING_DERIVATIONS) {
    throw new IdentityError(
      "resource_exhausted",
      "too many password-protected key operations at once; try again shortly",
    );
  }
  if (signal?.aborted) throw abandoned();
  pending++;
  let counted = true;
  const release = () => {
    if (counted) pending--;
    counted = false;
  };
  signal?.addEventListener("abort", release, { once: true });
  const turn = running
    .then(() => {
      if (signal?.aborted) throw abandoned();
      return derive(password, salt, params);
    })
    .finally(() => {
      signal?.removeEventListener("abort", release);
      release();
    });
  // The next derivation waits for this one to end, however it ends.
  running = turn.catch(() => undefined);
  return turn;
}

function derive(password: string, salt: Uint8Array, params: Argon2idParams): Promise<Uint8Array> {
  return argon2idAsync(password, salt, {
    t: params.t,
    m: params.m,
    p: params.p,
    dkLen: KDF_KEY_LENGTH,
    // noble's own default ceiling is 1 GiB; ours is far lower (see checkArgon2idParams).
    maxmem: (MAX_M + 1024) * 1024,
  });
}
