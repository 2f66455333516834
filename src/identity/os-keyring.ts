/**
 * The platform keychain: the Secret Service on Linux (GNOME Keyring, KWallet, KeePassXC over
 * D-Bus), the Keychain on macOS, the Credential Manager on Windows, through `@napi-rs/keyring`.
 *
 * The native addon is loaded only when {@link openOsKeyring} is called, so commands that never
 * touch a keychain do not pay for it. Every failure, the library's included, becomes one of a
 * few fixed texts: the library's own messages carry D-Bus paths, platform codes and whatever
 * else, and nothing of them is shown.
 *
 * @module
 */

import { createRequire } from "node:module";

/** A platform keychain, as {@link openOsKeyring} hands it out. */
export interface OsKeyring {
  /**
   * The secret stored under `service` and `account`, or null when there is none.
   *
   * @throws {OsKeyringError} when the keychain cannot be read (locked, gone, refused).
   */
  get(service: string, account: string): string | null;
  /**
   * Stores `secret` under `service` and `account`, replacing what was there.
   *
   * @throws {OsKeyringError} when the keychain cannot be written.
   */
  set(service: string, account: string, secret: string): void;
}

/** Environment variable that turns the OS keychain off (`off`) for this process. */
export const KEYCHAIN_ENV = "SEED_DAEMON_KEYCHAIN";

/** Why a keychain operation failed, in words fixed here (never the library's text). */
export type OsKeyringFailure =
  | "unreachable"
  | "inaccessible"
  | "ambiguous"
  | "not_text"
  | "too_long"
  | "failed";

const FAILURE_TEXT: Readonly<Record<OsKeyringFailure, string>> = {
  unreachable: "the OS keychain service cannot be reached",
  inaccessible:
    "the OS keychain refused access (locked, no default keyring, or access denied by the user)",
  ambiguous: "more than one OS keychain item matches",
  not_text: "the OS keychain item does not hold UTF-8 text",
  too_long: "a name or secret is too long for the OS keychain",
  failed: "the OS keychain failed",
};

/**
 * A failed keychain operation. The message is one of a few fixed texts, never the library's:
 * it holds no secret, no item contents and no platform detail.
 */
export class OsKeyringError extends Error {
  /** Which kind of failure. */
  readonly failure: OsKeyringFailure;

  constructor(failure: OsKeyringFailure) {
    super(FAILURE_TEXT[failure]);
    this.name = "OsKeyringError";
    this.failure = failure;
  }
}

/** The part of `@napi-rs/keyring` this module uses. */
interface NativeEntry {
  getPassword(): string | null;
  setPassword(password: string): void;
}
interface NativeKeyring {
  Entry: new (
    service: string,
    account: string,
    options?: { linux?: { store?: "secret-service" | "keyutils" } },
  ) => NativeEntry;
}

// Names only for the reachability probe: a get of an item nobody writes. A get never creates
// anything, and an absent item never makes a keychain ask the user anything.
const PROBE_SERVICE = "seed-daemon";
const PROBE_ACCOUNT = "keychain-reachability-probe";

// The library's error texts start with its error kind (keyring-rs `Error` Display strings).
// They are matched only to pick one of the fixed texts above, never shown.
function classify(err: unknown): OsKeyringFailure {
  const text = err instanceof Error ? err.message : "";
  if (/^Platform failure/i.test(text)) return "unreachable";
  if (/^Couldn't access platform storage|^No storage access/i.test(text)) return "inaccessible";
  if (/ambiguous|multiple credentials|matched by multiple/i.test(text)) return "ambiguous";
  if (/UTF-8|encoding/i.test(text)) return "not_text";
  if (/too long/i.test(text)) return "too_long";
  return "failed";
}

function wrap(lib: NativeKeyring): OsKeyring {
  // On Linux the library would otherwise fall back to the kernel keyring (keyutils) when no
  // Secret Service answers: that keyring is emptied at logout or reboot, so a secret kept
  // there (a key-encryption key) would be lost with it, and Seed's items are never there.
  const options =
    process.platform === "linux" ? { linux: { store: "secret-service" as const } } : {};
  const entry = (service: string, account: string) => new lib.Entry(service, account, options);
  return {
    get(service, account) {
      try {
        return entry(service, account).getPassword();
      } catch (err) {
        throw new OsKeyringError(classify(err));
      }
    },
    set(service, account, secret) {
      try {
        entry(service, account).setPassword(secret);
      } catch (err) {
        throw new OsKeyringError(classify(err));
      }
    },
  };
}

function loadLibrary(): NativeKeyring | undefined {
  try {
    const lib = createRequire(import.meta.url)("@napi-rs/keyring") as Partial<NativeKeyring>;
    return typeof lib.Entry === "function" ? (lib as NativeKeyring) : undefined;
  } catch {
    return undefined;
  }
}

/** Platforms whose keychain is the Secret Service on the D-Bus session bus. */
function usesSecretService(platform: NodeJS.Platform): boolean {
  return platform !== "darwin" && platform !== "win32";
}

/**
 * The platform keychain (lazy-loads @napi-rs/keyring), or null with a reason when none is
 * reachable (e.g. Linux without a Secret Service on D-Bus). Never throws.
 *
 * `env` decides whether to try: `SEED_DAEMON_KEYCHAIN=off` turns the keychain off, and on Linux
 * (and the BSDs) an unset `DBUS_SESSION_BUS_ADDRESS` means no session bus, so no Secret Service.
 * The library itself reads the process environment, so pass `process.env` unless the
 * difference is the point. Reachability is probed with a get of an item nobody writes, which
 * asks nothing of the user. The reason is a fixed text, never a secret or the library's words.
 *
 * @param env - the environment to read `SEED_DAEMON_KEYCHAIN` and `DBUS_SESSION_BUS_ADDRESS` from.
 */
export function openOsKeyring(
  env: NodeJS.ProcessEnv,
): { keyring: OsKeyring } | { keyring: null; reason: string } {
  if (env[KEYCHAIN_ENV] === "off") {
    return { keyring: null, reason: `disabled by ${KEYCHAIN_ENV}=off` };
  }
  if (usesSecretService(process.platform) && !env.DBUS_SESSION_BUS_ADDRESS) {
    return {
      keyring: null,
      reason:
        "no Secret Service: DBUS_SESSION_BUS_ADDRESS is not set (no D-Bus session bus, as on a headless machine or in a container)",
    };
  }
  const lib = loadLibrary();
  if (lib === undefined) {
    return {
      keyring: null,
      reason: `the OS keychain library (@napi-rs/keyring) cannot be loaded on ${process.platform}-${process.arch}`,
    };
  }
  const keyring = wrap(lib);
  try {
    keyring.get(PROBE_SERVICE, PROBE_ACCOUNT);
  } catch (err) {
    const failure = err instanceof OsKeyringError ? err.failure : "failed";
    const text =
      failure === "unreachable" && usesSecretService(process.platform)
        ? "no Secret Service answers on the D-Bus session bus (install and start gnome-keyring, KWallet or KeePassXC)"
        : FAILURE_TEXT[failure];
    return { keyring: null, reason: `OS keychain unavailable: ${text}` };
  }
  return { keyring };
}
