/**
 * Who may read a private document and who may write one: pure functions of (caller, document,
 * capabilities, now). No I/O, no clock, no store; the caller hands in every capability that may
 * matter (stored ones for the account and the caller, plus forwarded ones), already decoded and
 * signature-verified.
 *
 * ## Capability fields, as Seed defines them (`backend/blob/blob_capability.go`)
 *
 * - `signer` is the space: Seed's `Capability.Space()` returns the signer, and `NewCapability`
 *   refuses an issuer other than the space. Seed once had an explicit `space` field ("if empty,
 *   then signer is the space"); it was removed in 2025 (device linking), so a capability signed
 *   by an agent never names the space it acts in.
 * - `audience` is not a space: Seed uses it for ephemeral self-signed authentication
 *   capabilities addressed to one peer (`delegate` = the account, `audience` = the server).
 *   Such a capability grants no document access, so one that carries `audience` proves nothing
 *   here.
 * - `role` is `WRITER` or `AGENT` in Seed (plus this daemon's `READER`); no role grants nothing
 *   (Seed's writer query matches only those roles). An `AGENT` capability is never tied to a
 *   path in Seed (its indexer refuses one with a path); the blob codec enforces that too.
 * - `exp` and `noRecursive` are this daemon's extensions (docs/documents.md).
 *
 * ## Chains
 *
 * Because a capability names no space but its signer's, a second link is read the way Seed
 * reads it (`qIsValidWriterAgent`): an `AGENT` capability is "act as me", so the delegate of an
 * AGENT capability signed by A can do what A can do. A chain is therefore:
 *
 * - link 1: signed by the account, `role: "AGENT"`, delegate A, covering the path;
 * - link 2: signed by A, `role: "AGENT"`, delegate the caller, covering the path.
 *
 * Link 2 must be AGENT: a READER or WRITER capability signed by A is scoped to A's own space
 * (its signer), so it must not leak into every space where A happens to be an agent. Nothing
 * longer than two links proves anything (link 2's signer must hold an *owner-signed* AGENT
 * capability). Every link is checked for expiry, `noRecursive` and `audience`.
 *
 * @module
 */

/** Roles this daemon knows; anything else proves nothing. */
export type AccessRole = "READER" | "WRITER" | "AGENT";

/**
 * A capability as this module needs it: structurally a subset of the blob codec's decoded
 * `Capability` plus its CID. Only pass capabilities whose signature was verified.
 */
export interface VerifiedCapability {
  /** CID string of the capability blob; reported as the one that granted access. */
  readonly cid: string;
  /** Principal (`z6Mk…`) that signed it: the space it grants rights in. */
  readonly signer: string;
  /** Principal (`z6Mk…`) the rights are granted to. */
  readonly delegate: string;
  /** Seed's ephemeral-authentication target; a capability with one grants no access. */
  readonly audience?: string | undefined;
  /** Path prefix covered; absent or `""` is the home document, which covers the whole space. */
  readonly path?: string | undefined;
  readonly role?: string | undefined;
  /** Expiry, Unix milliseconds: the capability proves nothing once `exp <= now`. */
  readonly exp?: number | undefined;
  /** Covers exactly `path`, not the documents below it. */
  readonly noRecursive?: boolean | undefined;
}

/**
 * How the request authenticated (docs/security.md, the credentials table):
 * - `master`: the full token. With no principal it is the local user, owner of every key in the
 *   keystore (`localAccounts`); with a verified forwarded principal it is that principal only.
 * - `web`: the web token. With no principal it is anonymous (public documents only).
 * - `origin`: a paired-origin token. Never a principal: public documents only, whatever else the
 *   input says.
 */
export type ReadCredentialKind = "master" | "web" | "origin";

/** The document being read. */
export interface ReadTarget {
  /** Account (`z6Mk…`) whose space holds the document. */
  readonly account: string;
  /** `""` (home) or `/seg/seg`. */
  readonly path: string;
  readonly visibility: "public" | "private";
}

/** Everything {@link decideRead} looks at. */
export interface ReadInput {
  readonly credential: ReadCredentialKind;
  /** Verified forwarded principal (`z6Mk…`), if any. Never an unverified header value. */
  readonly principal?: string | undefined;
  /** Accounts of the keys in the keystore: who the `master` caller without principal is. */
  readonly localAccounts: ReadonlySet<string>;
  readonly document: ReadTarget;
  /** Verified capabilities: stored ones and forwarded ones, in any order. */
  readonly capabilities: readonly VerifiedCapability[];
  /** Unix milliseconds. */
  readonly now: number;
}

/** Why a read was granted or denied; for audit records and tests, never shown to the caller. */
export type ReadReason =
  | "public"
  | "owner"
  | "capability"
  | "agent_chain"
  | "paired_origin"
  | "anonymous"
  | "invalid_path"
  | "no_capability";

/** The outcome of {@link decideRead}. */
export interface ReadDecision {
  readonly granted: boolean;
  /** CID of the capability delegated to the caller that granted access (link 2 of a chain). */
  readonly capability?: string;
  /** CIDs of the whole chain that granted access, the owner-signed link first. */
  readonly chain?: readonly string[];
  /** Principal the decision was made for (the matching local account for the local user). */
  readonly principal?: string;
  readonly reason: ReadReason;
}

/** Roles that grant reading. */
export const READ_ROLES: ReadonlySet<string> = new Set<AccessRole>(["READER", "WRITER", "AGENT"]);
/** Roles that grant writing (docs/documents.md, "Who may write"). */
export const WRITE_ROLES: ReadonlySet<string> = new Set<AccessRole>(["WRITER", "AGENT"]);

// The shape of Seed's paths: "" or "/seg/seg", no empty segment, no trailing "/". Character
// rules belong to the path validator at the API; this check only keeps the prefix rule sound
// (a "/a/" or "/a//b" could otherwise widen or dodge a prefix). Such a path is never covered
// and never covers.
const PATH_RE = /^(?:\/[^/]+)*$/;

/** True for `""` and `/seg/seg`: no empty segment, no trailing `/`. */
export function isValidDocumentPath(path: string): boolean {
  return typeof path === "string" && PATH_RE.test(path);
}

/**
 * Segment-prefix rule: `/a` covers `/a` and `/a/b`, never `/ab`; `""` covers every path. With
 * `noRecursive` only `capPath` itself is covered. Malformed paths cover nothing.
 */
export function pathCovers(capPath: string, noRecursive: boolean, path: string): boolean {
  if (!isValidDocumentPath(capPath) || !isValidDocumentPath(path)) return false;
  if (path === capPath) return true;
  if (noRecursive) return false;
  return capPath === "" || path.startsWith(`${capPath}/`);
}

/** True while the capability has not expired (`exp` absent, or `exp > now`). */
export function capabilityIsLive(cap: VerifiedCapability, now: number): boolean {
  if (cap.exp === undefined) return true;
  return typeof cap.exp === "number" && Number.isFinite(now) && cap.exp > now;
}

/**
 * True when `cap` is a live capability in `account`'s space (signed by the account) covering
 * `path`. Role and delegate are the caller's to check. `now` is required so that no caller can
 * forget expiry.
 */
export function capabilityCovers(
  cap: VerifiedCapability,
  account: string,
  path: string,
  now: number,
): boolean {
  return (
    cap.signer === account &&
    cap.audience === undefined &&
    capabilityIsLive(cap, now) &&
    pathCovers(cap.path ?? "", cap.noRecursive === true, path)
  );
}

interface Grant {
  readonly capability: string;
  readonly chain: readonly string[];
  readonly reason: "capability" | "agent_chain";
}

/** Capabilities grouped by delegate, so one decision is linear in the capabilities given. */
function byDelegate(caps: readonly VerifiedCapability[]): Map<string, VerifiedCapability[]> {
  const out = new Map<string, VerifiedCapability[]>();
  for (const cap of caps) {
    const list = out.get(cap.delegate);
    if (list === undefined) out.set(cap.delegate, [cap]);
    else list.push(cap);
  }
  return out;
}

function findGrant(
  index: Map<string, VerifiedCapability[]>,
  principal: string,
  account: string,
  path: string,
  roles: ReadonlySet<string>,
  allowChain: boolean,
  now: number,
): Grant | undefined {
  const held = index.get(principal);
  if (held === undefined) return undefined;
  // Direct grants first: the shortest proof is the one to report.
  for (const cap of held) {
    if (
      cap.role !== undefined &&
      roles.has(cap.role) &&
      capabilityCovers(cap, account, path, now)
    ) {
      return { capability: cap.cid, chain: [cap.cid], reason: "capability" };
    }
  }
  if (!allowChain) return undefined;
  for (const link2 of held) {
    const agent = link2.signer;
    if (
      link2.role !== "AGENT" ||
      agent === account ||
      link2.audience !== undefined ||
      !capabilityIsLive(link2, now) ||
      // Link 2 sits in the agent's space; its path (always "" for Seed's AGENT) still narrows it.
      !pathCovers(link2.path ?? "", link2.noRecursive === true, path)
    ) {
      continue;
    }
    for (const link1 of index.get(agent) ?? []) {
      if (link1.role === "AGENT" && capabilityCovers(link1, account, path, now)) {
        return { capability: link2.cid, chain: [link1.cid, link2.cid], reason: "agent_chain" };
      }
    }
  }
  return undefined;
}

/**
 * The private-read rule (issue 7 item 6). A public document is readable by anyone; a private
 * one by its owner, by the delegate of a live READER/WRITER/AGENT capability signed by the
 * account for a segment prefix of its path, or through a 2-link AGENT chain (see the module
 * comment). A paired-origin credential and an anonymous web caller read public documents only.
 */
export function decideRead(input: ReadInput): ReadDecision {
  const { document: doc, now } = input;
  if (doc.visibility === "public") return { granted: true, reason: "public" };
  if (input.credential === "origin") return { granted: false, reason: "paired_origin" };
  let principals: readonly string[];
  if (input.principal !== undefined) {
    principals = [input.principal];
  } else if (input.credential === "master") {
    principals = [...input.localAccounts];
  } else {
    return { granted: false, reason: "anonymous" };
  }

  for (const p of principals) {
    if (p === doc.account) return { granted: true, principal: p, reason: "owner" };
  }
  if (!isValidDocumentPath(doc.path)) return { granted: false, reason: "invalid_path" };
  const index = byDelegate(input.capabilities);
  for (const p of principals) {
    const grant = findGrant(index, p, doc.account, doc.path, READ_ROLES, true, now);
    if (grant !== undefined) return { granted: true, principal: p, ...grant };
  }
  return principals.length === 1
    ? { granted: false, principal: principals[0] as string, reason: "no_capability" }
    : { granted: false, reason: "no_capability" };
}

/** The outcome of {@link canWrite}. */
export interface WriteDecision {
  readonly granted: boolean;
  /** CID of the owner-signed capability that allows the write. */
  readonly capability?: string;
  readonly reason: "owner" | "capability" | "invalid_path" | "no_capability";
}

/**
 * The write rule (issue 7 item 4): the signer of a change must be the account owner or the
 * delegate of a live owner-signed WRITER or AGENT capability for a segment prefix of `path`.
 * Direct capabilities only; no chains.
 *
 * @param signer - principal (`z6Mk…`) of the key that signs the change.
 * @param account - account whose space holds the document.
 * @param path - document path.
 * @param caps - verified capabilities (any; the irrelevant ones are skipped).
 * @param now - Unix milliseconds.
 */
export function canWrite(
  signer: string,
  account: string,
  path: string,
  caps: readonly VerifiedCapability[],
  now: number,
): WriteDecision {
  if (!isValidDocumentPath(path)) return { granted: false, reason: "invalid_path" };
  if (signer === account) return { granted: true, reason: "owner" };
  for (const cap of caps) {
    if (
      cap.delegate === signer &&
      cap.role !== undefined &&
      WRITE_ROLES.has(cap.role) &&
      capabilityCovers(cap, account, path, now)
    ) {
      return { granted: true, capability: cap.cid, reason: "capability" };
    }
  }
  return { granted: false, reason: "no_capability" };
}
