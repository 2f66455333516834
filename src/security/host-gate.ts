/** Result of the Host gate. */
export type HostVerdict = { ok: true } | { ok: false; reason: "missing" | "not_allowed" };

const LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]"] as const;

/**
 * The set of Host values a listener accepts: the loopback names with the listener's real port,
 * plus each `--allowed-host` entry (an entry without a port gets the listener's port).
 */
export function allowedHostSet(port: number, extra: readonly string[]): Set<string> {
  const set = new Set<string>(LOOPBACK_NAMES.map((h) => `${h}:${port}`));
  for (const entry of extra) {
    const e = entry.toLowerCase();
    set.add(/:\d+$/.test(e) && !e.endsWith("]") ? e : `${e}:${port}`);
  }
  return set;
}

/**
 * DNS-rebinding gate: a page on evil.example that re-points its name at 127.0.0.1 still sends
 * `Host: evil.example`, so only exact, expected Host values pass. Case-insensitive; anything
 * else (empty, missing, other port, no port, suffix tricks) is refused.
 */
export function checkHost(host: string | undefined, allowed: ReadonlySet<string>): HostVerdict {
  if (host === undefined || host === "") return { ok: false, reason: "missing" };
  return allowed.has(host.toLowerCase()) ? { ok: true } : { ok: false, reason: "not_allowed" };
}
