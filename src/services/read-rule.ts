/**
 * The private-read rule as the services apply it: one {@link DocumentReader} per call gathers
 * the capabilities that may matter (stored ones in the document's space, stored ones delegated
 * to the caller, forwarded ones), asks {@link decideRead}, and leaves the `document.read` audit
 * record of every private read, granted or denied. Every Documents read, list, stream and
 * `/ipfs` goes through here, so a denied read can only ever look like a missing document.
 *
 * @module
 */

import type { AuditLog } from "../audit/audit.js";
import type { Caller } from "../security/caller.js";
import { decideRead, type ReadDecision, type VerifiedCapability } from "../security/read-access.js";
import type { BlobStore, Visibility } from "../store/blob-store.js";
import { STORE_ERROR_MESSAGES, StoreError } from "../store/errors.js";
import type { Keystore } from "../store/keystore.js";

const NO_ACCOUNTS: ReadonlySet<string> = new Set();

/** The document a read is about. */
export interface ReadSubject {
  readonly account: string;
  readonly path: string;
  readonly visibility: Visibility;
}

/** What a {@link DocumentReader} needs. */
export interface ReadRuleDeps {
  readonly store: Pick<BlobStore, "listCapabilities" | "listCapabilitiesForDelegate">;
  readonly keystore: Pick<Keystore, "list">;
  readonly audit: Pick<AuditLog, "record">;
  /** In `--public-only` mode nothing private is ever served. */
  readonly publicOnly: boolean;
  readonly now?: () => number;
}

/** The error every refused or missing document read gets: one message, one code. */
export function documentNotFound(): StoreError {
  return new StoreError("not_found", STORE_ERROR_MESSAGES.documentNotFound);
}

/**
 * Decides reads for one caller during one call. Capabilities delegated to the caller are
 * looked up once per reader; those of a document's space once per document.
 */
export class DocumentReader {
  readonly #deps: ReadRuleDeps;
  readonly #caller: Caller;
  readonly #method: string;
  #local: ReadonlySet<string> | undefined;
  #delegated: readonly VerifiedCapability[] | undefined;

  /**
   * @param method - RPC method (or `GET /ipfs`) named in the audit records.
   */
  constructor(deps: ReadRuleDeps, caller: Caller, method: string) {
    this.#deps = deps;
    this.#caller = caller;
    this.#method = method;
  }

  /** Whether the caller may read `doc`; audited when `doc` is private. */
  decide(doc: ReadSubject): ReadDecision {
    if (doc.visibility === "public") return { granted: true, reason: "public" };
    // In --public-only mode nothing private is ever served: that is the mode, not a decision
    // about this caller, so it is not audited (a tokenless flood could fill the log otherwise).
    if (this.#deps.publicOnly) return { granted: false, reason: "no_capability" };
    const decision = decideRead({
      credential: this.#caller.credential.kind,
      principal: this.#caller.principal,
      // Only the full token without a forwarded principal is the local user.
      localAccounts: this.#isLocalUser() ? this.#localAccounts() : NO_ACCOUNTS,
      document: doc,
      // The owner needs no capability: skip the lookups.
      capabilities: this.#principals().includes(doc.account) ? [] : this.#capabilities(doc),
      now: (this.#deps.now ?? Date.now)(),
    });
    this.#deps.audit.record({
      event: "document.read",
      method: this.#method,
      remote_addr: this.#caller.remoteAddr,
      credential: this.#caller.credential.kind,
      principal: decision.principal ?? this.#caller.principal,
      ...(this.#caller.credential.kind === "origin" && { origin: this.#caller.credential.origin }),
      account: doc.account,
      path: doc.path,
      capability: decision.capability,
      outcome: decision.granted ? "granted" : "denied",
      reason: decision.reason,
    });
    return decision;
  }

  /** {@link decide}, throwing the not-found error of a missing document when denied. */
  require(doc: ReadSubject): void {
    if (!this.decide(doc).granted) throw documentNotFound();
  }

  #isLocalUser(): boolean {
    return this.#caller.credential.kind === "master" && this.#caller.principal === undefined;
  }

  #localAccounts(): ReadonlySet<string> {
    this.#local ??= new Set(this.#deps.keystore.list().map((k) => k.accountId));
    return this.#local;
  }

  // Who the caller is, as far as capabilities delegated to it go.
  #principals(): readonly string[] {
    const { credential, principal } = this.#caller;
    if (credential.kind === "origin") return [];
    if (principal !== undefined) return [principal];
    return this.#isLocalUser() ? [...this.#localAccounts()] : [];
  }

  #capabilities(doc: ReadSubject): VerifiedCapability[] {
    this.#delegated ??= this.#principals().flatMap((p) =>
      this.#deps.store.listCapabilitiesForDelegate(p),
    );
    return [
      ...this.#deps.store.listCapabilities(doc.account, doc.path),
      ...this.#delegated,
      ...this.#caller.capabilities,
    ];
  }
}
