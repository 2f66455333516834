/**
 * The Documents service: signed Seed documents, read under the private-read rule.
 *
 * Reads first find the document's entry, then ask the read rule, and only then look at what
 * else the request names (a version, a page token): a document the caller may not read fails
 * exactly as a missing one does, with the same code and message, before any other check could
 * tell them apart. Writes sign with a named key of the keystore and are audited.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { AuditSubject } from "../audit/audit.js";
import { decodeBlobOfType } from "../blob/index.js";
import {
  type Documents,
  ListDocumentChangesResponseSchema,
  ListDocumentsResponseSchema,
  type WatchDocumentsResponse,
  WatchDocumentsResponseSchema,
} from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import type { Caller } from "../security/caller.js";
import { canWrite } from "../security/read-access.js";
import { type StoredCapability, type VersionEvent, validatePath } from "../store/blob-store.js";
import { type AuditedCall, audited } from "./audited.js";
import { callerOf, type ServiceDeps } from "./context.js";
import {
  changeInfoMessage,
  documentMessage,
  editsFromProto,
  listItemMessage,
  requirePrincipal,
  visibilityFromProto,
} from "./document-messages.js";
import { DocumentReader, documentNotFound } from "./read-rule.js";

/** Most version events a watcher may fall behind by before its stream is ended. */
export const MAX_WATCH_BACKLOG = 1024;

const PUBLIC_ONLY_WRITE =
  "the daemon runs in --public-only mode: documents and capabilities cannot be written";

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** A required name field. */
export function requireKeyName(value: string): string {
  if (value === "") throw invalid("signing_key_name is required");
  return value;
}

/** The guard of every write: nothing is signed in public-only mode. */
export function writeGuard(deps: ServiceDeps): () => void {
  return () => {
    if (deps.config.publicOnly) throw new ConnectError(PUBLIC_ONLY_WRITE, Code.FailedPrecondition);
  };
}

/** The read rule for one call. */
export function readerFor(deps: ServiceDeps, caller: Caller, method: string): DocumentReader {
  return new DocumentReader(
    {
      store: deps.store,
      keystore: deps.keystore,
      audit: deps.audit,
      publicOnly: deps.config.publicOnly,
    },
    caller,
    method,
  );
}

type DocumentCall = AuditedCall<Extract<AuditSubject, { kind: "document" }>>;

/**
 * The capability that lets `signer` write (account, path), or undefined for the owner. With
 * `cid` only that stored capability is considered.
 */
function writeCapability(
  deps: ServiceDeps,
  signer: string,
  account: string,
  path: string,
  cid: string,
) {
  if (signer === account) return undefined;
  let candidates: StoredCapability[];
  if (cid !== "") {
    const cap = deps.store.getCapability(cid);
    if (cap === undefined) throw new ConnectError("capability not found", Code.NotFound);
    candidates = [cap];
  } else {
    candidates = deps.store.listCapabilities(account, path).filter((c) => c.delegate === signer);
  }
  const decision = canWrite(signer, account, path, candidates, Date.now());
  if (!decision.granted || decision.capability === undefined) {
    throw new ConnectError(
      "the signing key is not the account's and holds no live WRITER or AGENT capability of the account for this path",
      Code.PermissionDenied,
    );
  }
  const bytes = deps.store.getBlob(decision.capability);
  if (bytes === undefined) throw new Error("stored capability has no blob");
  return decodeBlobOfType("Capability", bytes);
}

/** Documents: CreateDocumentChange, GetDocument, ListDocuments, ListDocumentChanges, DeleteDocument, WatchDocuments. */
export function documentsService(deps: ServiceDeps): ServiceImpl<typeof Documents> {
  const { store, keystore } = deps;

  const documentCall = (
    event: string,
    method: string,
    account: string,
    path: string,
  ): DocumentCall => ({
    event,
    method,
    subject: { kind: "document", account, path },
    guard: writeGuard(deps),
  });

  /** The current entry of a document the caller may read; not_found otherwise. */
  const readable = (ctx: HandlerContext, method: string, accountField: string, path: string) => {
    const account = requirePrincipal("account", accountField);
    const entry = store.documentEntry(account, path);
    if (entry === undefined || entry.deleted) throw documentNotFound();
    readerFor(deps, callerOf(ctx), method).require(entry);
    return entry;
  };

  return {
    async createDocumentChange(req, ctx) {
      const call = documentCall("document.change", "CreateDocumentChange", req.account, req.path);
      return audited(deps, ctx, call, () => {
        const account = requirePrincipal("account", req.account);
        const path = validatePath(req.path);
        const edits = editsFromProto(req.changes);
        const visibility = visibilityFromProto(req.visibility);
        const signer = keystore.signer(requireKeyName(req.signingKeyName));
        const capability = writeCapability(deps, signer.principal, account, path, req.capability);
        call.subject.capability = capability?.cid;
        store.commitChange({
          account,
          path,
          signer: signer.principal,
          sign: signer.sign,
          edits,
          baseVersion: req.baseVersion,
          ...(visibility !== undefined && { visibility }),
          ...(capability !== undefined && { capability }),
        });
        const doc = store.getDocument(account, path);
        if (doc === undefined || doc.deleted) throw new Error("committed document is missing");
        return documentMessage(doc, doc.state);
      });
    },

    getDocument(req, ctx) {
      readable(ctx, "GetDocument", req.account, req.path);
      const doc = store.getDocument(req.account, req.path, req.version);
      if (doc === undefined || doc.deleted) throw documentNotFound();
      return documentMessage(doc, doc.state);
    },

    listDocuments(req, ctx) {
      const account = requirePrincipal("account", req.account);
      const reader = readerFor(deps, callerOf(ctx), "ListDocuments");
      const page = store.listDocuments(account, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        visible: (entry) => reader.decide(entry).granted,
      });
      const documents = page.items.map((entry) => {
        const doc = store.getDocument(entry.account, entry.path);
        if (doc === undefined || doc.deleted) throw new Error("listed document is missing");
        return listItemMessage(doc, doc.state);
      });
      return create(ListDocumentsResponseSchema, { documents, nextPageToken: page.nextPageToken });
    },

    listDocumentChanges(req, ctx) {
      const entry = readable(ctx, "ListDocumentChanges", req.account, req.path);
      const page = store.listDocumentChanges(entry.account, entry.path, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        version: req.version,
      });
      return create(ListDocumentChangesResponseSchema, {
        changes: page.items.map(changeInfoMessage),
        nextPageToken: page.nextPageToken,
      });
    },

    async deleteDocument(req, ctx) {
      const call = documentCall("document.delete", "DeleteDocument", req.account, req.path);
      return audited(deps, ctx, call, () => {
        const account = requirePrincipal("account", req.account);
        const path = validatePath(req.path);
        const signer = keystore.signer(requireKeyName(req.signingKeyName));
        const capability = writeCapability(deps, signer.principal, account, path, "");
        call.subject.capability = capability?.cid;
        store.deleteDocument({
          account,
          path,
          signer: signer.principal,
          sign: signer.sign,
          ...(capability !== undefined && { capability }),
        });
        return create(EmptySchema);
      });
    },

    async *watchDocuments(req, ctx): AsyncGenerator<WatchDocumentsResponse> {
      const account = req.account === "" ? undefined : requirePrincipal("account", req.account);
      const caller = callerOf(ctx);
      const queue: VersionEvent[] = [];
      let overflow = false;
      let wake: (() => void) | undefined;
      const poke = () => wake?.();
      const off = store.onVersion((ev) => {
        if (account !== undefined && ev.account !== account) return;
        if (queue.length >= MAX_WATCH_BACKLOG) overflow = true;
        else queue.push(ev);
        poke();
      });
      ctx.signal.addEventListener("abort", poke);
      deps.stopping.addEventListener("abort", poke);
      try {
        for (;;) {
          // Cancelled by the client, or the daemon is shutting down: end the stream cleanly.
          if (ctx.signal.aborted || deps.stopping.aborted) return;
          if (overflow) {
            throw new ConnectError("the watcher fell too far behind", Code.ResourceExhausted);
          }
          const ev = queue.shift();
          if (ev === undefined) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
            continue;
          }
          // A fresh reader per event: a capability stored since the last one counts.
          if (!readerFor(deps, caller, "WatchDocuments").decide(ev).granted) continue;
          yield create(WatchDocumentsResponseSchema, {
            account: ev.account,
            path: ev.path,
            version: ev.version,
          });
        }
      } finally {
        off();
        ctx.signal.removeEventListener("abort", poke);
        deps.stopping.removeEventListener("abort", poke);
      }
    },
  };
}
