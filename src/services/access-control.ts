/**
 * The AccessControl service and `Daemon.StoreBlobs`: capabilities are made here (signed by the
 * space's own key) and blobs made elsewhere are stored and indexed.
 *
 * Who sees a capability: the local user (full token, no forwarded principal) sees every one; a
 * forwarded principal sees those it signed or that are delegated to it; an anonymous web caller
 * and a paired origin see none. A capability names a path and a delegate, so showing it to
 * anyone else would tell them what is shared and with whom; a hidden capability reads exactly
 * as a missing one (`not_found`, empty lists).
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { AuditSubject } from "../audit/audit.js";
import { createCapability } from "../blob/index.js";
import type { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { StoreBlobsResponseSchema } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import {
  type AccessControl,
  ListCapabilitiesResponseSchema,
} from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import type { Caller } from "../security/caller.js";
import { type StoredCapability, validatePath } from "../store/blob-store.js";
import { decodePageToken, encodePageToken, pageSizeOf } from "../store/page-token.js";
import { type AuditedCall, audited } from "./audited.js";
import { callerOf, type ServiceDeps } from "./context.js";
import { capabilityMessage, msOf, requirePrincipal, roleFromProto } from "./document-messages.js";
import { requireKeyName, writeGuard } from "./documents.js";

/** Most blobs one StoreBlobs call may carry. */
export const MAX_STORE_BLOBS = 1000;

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

function capabilityNotFound(): ConnectError {
  return new ConnectError("capability not found", Code.NotFound);
}

/** Whether `caller` may see `cap` (see the module comment). */
export function capabilityVisible(caller: Caller, cap: StoredCapability): boolean {
  switch (caller.credential.kind) {
    case "origin":
      return false;
    case "web":
    case "master":
      if (caller.principal !== undefined) {
        return cap.signer === caller.principal || cap.delegate === caller.principal;
      }
      return caller.credential.kind === "master";
  }
}

/** One page of `caps` (sorted by ts, then CID) after the page token's position. */
function pageOf(caps: readonly StoredCapability[], pageSize: number, pageToken: string) {
  const size = pageSizeOf(pageSize);
  const sorted = [...caps].sort(
    (a, b) => a.ts - b.ts || (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0),
  );
  const after = decodePageToken("k", ["n", "s"], pageToken) as [number, string] | undefined;
  const start =
    after === undefined
      ? 0
      : sorted.findIndex((c) => c.ts > after[0] || (c.ts === after[0] && c.cid > after[1]));
  const from = start < 0 ? sorted.length : start;
  const items = sorted.slice(from, from + size);
  const last = items[items.length - 1];
  const more = from + size < sorted.length && last !== undefined;
  return create(ListCapabilitiesResponseSchema, {
    capabilities: items.map(capabilityMessage),
    nextPageToken: more ? encodePageToken("k", [last.ts, last.cid]) : "",
  });
}

type CapabilityCall = AuditedCall<Extract<AuditSubject, { kind: "capability" }>>;

/** AccessControl: CreateCapability, GetCapability, ListCapabilities, ListCapabilitiesForDelegate. */
export function accessControlService(deps: ServiceDeps): ServiceImpl<typeof AccessControl> {
  const { store, keystore } = deps;
  return {
    async createCapability(req, ctx) {
      const call: CapabilityCall = {
        event: "capability.create",
        method: "CreateCapability",
        subject: {
          kind: "capability",
          account: req.account,
          path: req.path,
          delegate: req.delegate,
        },
        guard: writeGuard(deps),
      };
      return audited(deps, ctx, call, () => {
        const signer = keystore.signer(requireKeyName(req.signingKeyName));
        const account =
          req.account === "" ? signer.principal : requirePrincipal("account", req.account);
        if (account !== signer.principal) {
          throw invalid(
            "account must be the signing key's account: a capability is signed by the space it grants rights in",
          );
        }
        const delegate = requirePrincipal("delegate", req.delegate);
        const path = validatePath(req.path);
        const role = roleFromProto(req.role);
        const now = Date.now();
        let exp: number | undefined;
        if (req.expireTime !== undefined) {
          exp = msOf("expire_time", req.expireTime);
          if (exp <= now) throw invalid("expire_time must be in the future");
        }
        const blob = createCapability(
          {
            signer: signer.principal,
            ts: now,
            delegate,
            ...(path !== "" && { path }),
            role,
            ...(req.label !== "" && { label: req.label }),
            ...(exp !== undefined && { exp }),
            noRecursive: req.noRecursive,
          },
          signer.sign,
        );
        store.putBlobs([{ bytes: blob.bytes }]);
        call.subject.capability = blob.cid;
        const stored = store.getCapability(blob.cid);
        if (stored === undefined) throw new Error("stored capability is missing");
        return capabilityMessage(stored);
      });
    },

    getCapability(req, ctx) {
      if (req.id === "") throw invalid("id is required");
      const cap = store.getCapability(req.id);
      if (cap === undefined || !capabilityVisible(callerOf(ctx), cap)) throw capabilityNotFound();
      return capabilityMessage(cap);
    },

    listCapabilities(req, ctx) {
      const account = requirePrincipal("account", req.account);
      const caller = callerOf(ctx);
      // "*" is every capability of the space, as in Seed's API.
      const caps = (
        req.path === "*"
          ? store.listAccountCapabilities(account)
          : store.listCapabilities(account, req.path, { ignoreInherited: req.ignoreInherited })
      ).filter((c) => capabilityVisible(caller, c));
      return pageOf(caps, req.pageSize, req.pageToken);
    },

    listCapabilitiesForDelegate(req, ctx) {
      const delegate = requirePrincipal("delegate", req.delegate);
      const caller = callerOf(ctx);
      const caps = store
        .listCapabilitiesForDelegate(delegate)
        .filter((c) => capabilityVisible(caller, c));
      return pageOf(caps, req.pageSize, req.pageToken);
    },
  };
}

/** `Daemon.StoreBlobs`: verified blobs, all or none (full token only, by scope). */
export function storeBlobsService(deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  return {
    storeBlobs(req) {
      if (req.blobs.length === 0) throw invalid("blobs must not be empty");
      if (req.blobs.length > MAX_STORE_BLOBS) {
        throw invalid(`at most ${MAX_STORE_BLOBS} blobs may be stored at once`);
      }
      const stored = deps.store.putBlobs(
        req.blobs.map((b) => ({ bytes: b.data, ...(b.cid !== "" && { cid: b.cid }) })),
      );
      return create(StoreBlobsResponseSchema, { cids: stored.map((s) => s.cid) });
    },
  };
}
