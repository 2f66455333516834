/**
 * `seed-daemon/web`: the server half of a web site in front of the daemon.
 *
 * - {@link createAuthHandlers}: the `/hm/auth/*` login endpoints (challenge, login, logout,
 *   capabilities) and the session lookup, with an encrypted session cookie and a server-side
 *   {@link SessionStore}.
 * - {@link createDaemonClient}: typed clients that read from the daemon with the web token,
 *   anonymously or for a session (`forSession`).
 * - {@link toNodeHandler}: runs any Fetch API handler on `node:http`.
 *
 * The browser half is `seed-daemon/web/browser`. This module imports nothing of the daemon but
 * its wire contract and generated protos.
 *
 * @module
 */
export {
  AUTH_PATHS,
  type AuthErrorCode,
  type AuthHandlers,
  type AuthHandlersOptions,
  CHALLENGE_TTL_MS,
  createAuthHandlers,
  LOCAL_COOKIE_NAME,
  MAX_AUTH_BODY_BYTES,
  MAX_PENDING_CHALLENGES,
  SECURE_COOKIE_NAME,
  SESSION_TTL_MS,
  type WebSession,
} from "./auth.js";
export { MIN_SESSION_SECRET_BYTES } from "./cookie.js";
export {
  createDaemonClient,
  type DaemonClient,
  type DaemonClientOptions,
  type DaemonServices,
} from "./daemon-client.js";
export {
  DEFAULT_MAX_NODE_BODY_BYTES,
  type FetchHandler,
  type NodeHandlerOptions,
  toNodeHandler,
} from "./node.js";
export {
  type Awaitable,
  DEFAULT_MAX_SESSIONS,
  MemorySessionStore,
  type MemorySessionStoreOptions,
  type SessionRecord,
  type SessionStore,
} from "./session-store.js";
