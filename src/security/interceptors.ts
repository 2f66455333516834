import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { AuditEvent } from "../audit/audit.js";
import type { Authenticator } from "./authenticator.js";
import { parseBearer } from "./bearer.js";
import { type Credential, callerKey, pipelineVerdictKey, remoteAddrKey } from "./caller.js";
import { ForwardedIdentityResolver } from "./forwarded-identity.js";
import { normalizeOrigin } from "./origin.js";
import {
  CAPABILITIES_HEADER,
  ORIGIN_TOKEN_PROCEDURES,
  PRINCIPAL_HEADER,
  PRINCIPAL_PROOF_HEADER,
  WEB_TOKEN_PROCEDURES,
} from "./scopes.js";

/** `/package.Service/Method` of a request. */
export function procedureOf(req: { service: { typeName: string }; method: { name: string } }) {
  return `/${req.service.typeName}/${req.method.name}`;
}

/** The procedures a limited credential may call; the full token may call everything. */
const SCOPES: Readonly<
  Record<Credential["kind"], { name: string; procedures: ReadonlySet<string> } | undefined>
> = {
  master: undefined,
  web: { name: "the web token", procedures: WEB_TOKEN_PROCEDURES },
  origin: { name: "a paired origin's token", procedures: ORIGIN_TOKEN_PROCEDURES },
};

/**
 * Establishes the caller's credential (unary and streaming alike, on both listeners), enforces
 * the scope of limited tokens and puts the Caller in the context. The HTTP pipeline already
 * checked the token and passes its verdict in the context ({@link pipelineVerdictKey}), so the
 * token is hashed and compared once per request; a request that arrives without a verdict (a
 * route ever mounted without the pipeline) has its token checked here.
 */
export function authInterceptor(
  auth: Authenticator,
  audit?: { record(ev: AuditEvent): void },
  identity: ForwardedIdentityResolver = new ForwardedIdentityResolver([]),
): Interceptor {
  return (next) => async (req) => {
    const verdict = req.contextValues.get(pipelineVerdictKey);
    let origin: string | undefined;
    let credential: Credential | undefined;
    if (verdict !== undefined) {
      ({ origin, credential } = verdict);
    } else {
      const originHeader = req.header.get("origin");
      origin = originHeader === null ? undefined : (normalizeOrigin(originHeader) ?? undefined);
      credential = auth.authenticate(parseBearer(req.header.get("authorization")), origin);
    }
    if (credential === undefined) {
      throw new ConnectError("missing or invalid bearer token", Code.Unauthenticated);
    }
    const principal = req.header.get(PRINCIPAL_HEADER) ?? undefined;
    // A token reaching past its scope is worth a record: it is either a bug in the page or web
    // server, or someone trying the token on what it was never meant to unlock.
    const deny = (message: string): never => {
      audit?.record({
        event: "scope.denied",
        method: req.method.name,
        remote_addr: req.contextValues.get(remoteAddrKey),
        credential: credential.kind,
        ...(credential.kind === "origin" ? { origin: credential.origin } : {}),
        outcome: "denied",
        reason: "permission_denied",
      });
      throw new ConnectError(message, Code.PermissionDenied);
    };
    const scope = SCOPES[credential.kind];
    if (scope !== undefined && !scope.procedures.has(procedureOf(req))) {
      deny(`${scope.name} may not call ${req.method.name}`);
    }
    if (
      credential.kind === "origin" &&
      (principal !== undefined ||
        req.header.get(PRINCIPAL_PROOF_HEADER) !== null ||
        req.header.get(CAPABILITIES_HEADER) !== null)
    ) {
      deny("a paired origin's token may not assert a principal or capabilities");
    }
    const forwarded = identity.resolve(
      credential,
      {
        principal,
        proof: req.header.get(PRINCIPAL_PROOF_HEADER) ?? undefined,
        capabilities: req.header.get(CAPABILITIES_HEADER) ?? undefined,
      },
      Date.now(),
    );
    req.contextValues.set(callerKey, {
      remoteAddr: req.contextValues.get(remoteAddrKey),
      credential,
      origin,
      principal: forwarded.principal,
      capabilities: forwarded.capabilities,
    });
    return next(req);
  };
}
