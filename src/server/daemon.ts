import { createServer, type Server } from "node:http";
import { createServer as createHttp2Server, type Http2Server, type Http2Session } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import type { Interceptor } from "@connectrpc/connect";
import { createContextValues } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AuditLog } from "../audit/audit.js";
import { formatAddress } from "../config/address.js";
import { type Config, DEFAULT_CORS_ORIGINS } from "../config/config.js";
import { ConfigError } from "../config/errors.js";
import { Authenticator } from "../security/authenticator.js";
import { pipelineVerdictKey, remoteAddrKey } from "../security/caller.js";
import { ForwardedIdentityResolver } from "../security/forwarded-identity.js";
import { allowedHostSet } from "../security/host-gate.js";
import { authInterceptor } from "../security/interceptors.js";
import { normalizeOrigin, OriginPolicy } from "../security/origin.js";
import { PAIRED_ORIGINS_FILE_NAME, PairedOriginStore } from "../security/paired-origins.js";
import { loadMasterToken, loadWebToken } from "../security/token-store.js";
import type { ServiceDeps } from "../services/context.js";
import { registerRoutes } from "../services/routes.js";
import { rotateAudited } from "../services/token.js";
import { BlobStore } from "../store/blob-store.js";
import type { Db } from "../store/db.js";
import type { Keystore } from "../store/keystore.js";
import { openKeystore } from "../store/open-keystore.js";
import { VERSION } from "../version.js";
import {
  isProcessAlive,
  readDaemonFile,
  removeDaemonFile,
  writeDaemonFile,
} from "./daemon-file.js";
import { createIpfsHandler } from "./ipfs.js";
import { Metrics } from "./metrics.js";
import {
  createPipeline,
  createRpcFallback,
  type NodeRequest,
  pipelineVerdictOf,
} from "./pipeline.js";
import { CallsInFlight, createRpcAdapter } from "./rpc-adapter.js";
import { errorAndMetricsInterceptor, guardLibraryErrors } from "./rpc-interceptor.js";

/** Limits of the listeners (slowloris, idle sockets, stream floods). */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 60_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Inactivity bound of an h2 session, requests in progress or not (Node's session timeout). */
const H2_INACTIVITY_TIMEOUT_MS = 300_000;
const H2_MAX_CONCURRENT_STREAMS = 100;
/**
 * Hard bound of an h2 header list: larger ones are reset by the HTTP/2 layer before any
 * handler; between Node's `maxHeaderSize` and this, the pipeline answers `431`.
 */
const H2_MAX_HEADER_LIST_BYTES = 64 * 1024;
/** Answer to a request whose headers exceed Node's `maxHeaderSize` (HTTP/1.1). */
const HEADERS_TOO_LARGE =
  "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
/** How long shutdown waits for in-flight calls before cutting connections. */
const DRAIN_TIMEOUT_MS = 5_000;
/** After connections are cut, how long the listeners may take to report closed. */
const CUT_TIMEOUT_MS = 1_000;

/** A started daemon. */
export interface RunningDaemon {
  /** Bound HTTP/1.1 address, `host:port`. */
  readonly httpAddr: string;
  /** Bound h2c address, `host:port`. */
  readonly grpcAddr: string;
  /** Stops accepting, drains in-flight calls (bounded), removes daemon.json. */
  close(): Promise<void>;
  /**
   * Cuts every connection at once and releases the store, the audit log and daemon.json,
   * synchronously: the answer to a second signal.
   */
  closeNow(): void;
  /**
   * Rotates the full token as RotateToken does (the answer to SIGHUP): audited, logged, never
   * throws. With a token from the environment, or while shutting down, it only logs a warning.
   */
  rotateToken(): void;
}

/**
 * Closes an h2 session (GOAWAY, then the socket) once it has had no stream open for `idleMs`,
 * from its start or from its last stream's end: a client that connects and never asks for
 * anything holds a connection slot for that long at most.
 */
function closeWhenIdle(session: Http2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => session.destroy(), idleMs);
    timer.unref();
  };
  arm();
  session.on("stream", (stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      open--;
      if (open === 0 && !session.destroyed && !session.closed) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
}

function delay(ms: number): Promise<"timeout"> {
  return new Promise((r) => setTimeout(() => r("timeout"), ms).unref());
}

function listen(server: Server | Http2Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Origins a browser user's login proof may name: the operator's `--cors-origin` entries, never
 * the built-in ones (every sandboxed page is `null`) and never paired origins.
 */
function loginProofOrigins(config: Config): string[] {
  return config.corsOrigins
    .map((o) => normalizeOrigin(o))
    .filter((o): o is string => o !== null && !DEFAULT_CORS_ORIGINS.includes(o));
}

/**
 * Opens `seed.db` and the keystore in it (see `openKeystore` in `store/open-keystore.ts`): every
 * failure is a ConfigError (exit 2) that names the problem, and a wrong or missing KEK is refused
 * before anything is written. Logs the KEK source (never the key), the warnings of the KEK
 * resolution, and a migration from an older format.
 */
async function openStore(
  dataDir: string,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<{ db: Db; keystore: Keystore }> {
  const { db, keystore, notices } = await openKeystore({ dataDir, env });
  for (const notice of notices) logger.warn(notice);
  const migration = keystore.migration;
  if (migration !== undefined) {
    logger.info(
      { from: migration.from, keys: migration.keys, kek_source: keystore.kekSource },
      "keystore migrated to envelope encryption",
    );
  }
  logger.info({ kek_source: keystore.kekSource }, "keystore unlocked");
  return { db, keystore };
}

/**
 * Starts both listeners with the security pipeline in front of every route. Throws ConfigError
 * for start-up problems the user must fix (exit code 2).
 */
export async function startDaemon(
  config: Config,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningDaemon> {
  const startTime = new Date();
  const { token, source } = loadMasterToken({
    envToken: env.SEED_DAEMON_AUTH_TOKEN,
    tokenPath: config.authTokenPath,
    dataDir: config.dataDir,
  });
  const web = loadWebToken({
    envToken: env.SEED_DAEMON_WEB_TOKEN,
    tokenPath: config.webTokenPath,
    dataDir: config.dataDir,
  });
  if (web !== undefined && token.equals(web.token)) {
    throw new ConfigError("the web token must differ from the full token (SEED_DAEMON_AUTH_TOKEN)");
  }
  const other = readDaemonFile(config.dataDir);
  if (other !== undefined && other.pid !== process.pid && isProcessAlive(other.pid)) {
    throw new ConfigError(
      `another seed-daemon (pid ${other.pid}) is using ${config.dataDir}; stop it first`,
    );
  }

  let pairedOrigins: PairedOriginStore;
  try {
    pairedOrigins = PairedOriginStore.load(join(config.dataDir, PAIRED_ORIGINS_FILE_NAME));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  let originPolicy: OriginPolicy;
  try {
    // The pairing store is consulted on every request, so (un)pairing takes effect at once.
    originPolicy = new OriginPolicy([...config.corsOrigins], pairedOrigins);
  } catch (err) {
    throw new ConfigError(`--cors-origin: ${(err as Error).message}`);
  }
  const audit = new AuditLog(logger, config.auditLogPath);
  let store: { db: Db; keystore: Keystore };
  try {
    store = await openStore(config.dataDir, env, logger);
  } catch (err) {
    audit.close();
    throw err;
  }
  const { db, keystore } = store;
  const closeStore = () => {
    keystore.dispose();
    db.close();
  };
  const metrics = new Metrics();
  const auth = new Authenticator(token, pairedOrigins, web?.token);
  const shutdown = new AbortController();

  const stopping = new AbortController();
  const deps: ServiceDeps = {
    config,
    logger,
    audit,
    startTime,
    pairedOrigins,
    keystore,
    store: new BlobStore(db),
    stopping: stopping.signal,
    rotateToken: () => token.rotate(),
  };
  // One resolver for the RPC interceptor and `/ipfs`: forwarded identity is verified alike.
  const identity = new ForwardedIdentityResolver(loginProofOrigins(config));
  const interceptors: Interceptor[] = [
    errorAndMetricsInterceptor(metrics, logger),
    authInterceptor(auth, audit, identity),
  ];
  const fallback = createRpcFallback(config.maxRequestBytes);
  const calls = new CallsInFlight();
  const adapterOptions = {
    calls,
    routes: (router: Parameters<typeof registerRoutes>[0]) => {
      registerRoutes(router, deps);
      guardLibraryErrors(router.handlers);
    },
    fallback,
    logger,
    interceptors,
    readMaxBytes: config.maxRequestBytes,
    shutdownSignal: shutdown.signal,
    contextValues: (req: NodeRequest) =>
      createContextValues()
        .set(remoteAddrKey, req.socket?.remoteAddress ?? "")
        .set(pipelineVerdictKey, pipelineVerdictOf(req)),
  };
  // gRPC needs HTTP/2 trailers, so it is served on the h2c listener only.
  const http1Rpc = createRpcAdapter({ ...adapterOptions, grpc: false });
  const h2Rpc = createRpcAdapter(adapterOptions);

  let httpHosts: ReadonlySet<string> = new Set();
  let grpcHosts: ReadonlySet<string> = new Set();
  const ipfs = createIpfsHandler({
    store: deps.store,
    keystore,
    audit,
    identity,
    publicOnly: config.publicOnly,
    logger,
  });
  const pipelineBase = {
    originPolicy,
    auth,
    metrics,
    logger,
    ipfs,
    maxRequestBytes: config.maxRequestBytes,
  };
  const http1Pipeline = createPipeline({
    ...pipelineBase,
    allowedHosts: () => httpHosts,
    rpc: http1Rpc,
  });
  const h2Pipeline = createPipeline({ ...pipelineBase, allowedHosts: () => grpcHosts, rpc: h2Rpc });
  const http1 = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // Node would answer a missing Host with 400 itself; the Host gate answers 403 instead.
      requireHostHeader: false,
    },
    http1Pipeline,
  );
  const h2 = createHttp2Server(
    {
      settings: {
        maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
        maxHeaderListSize: H2_MAX_HEADER_LIST_BYTES,
      },
    },
    h2Pipeline,
  );
  // `Expect: 100-continue`: Node would send `100 Continue` before any check; the pipeline sends
  // it only to a request it lets through.
  http1.on("checkContinue", http1Pipeline.checkContinue);
  h2.on("checkContinue", h2Pipeline.checkContinue);
  h2.setTimeout(H2_INACTIVITY_TIMEOUT_MS);
  const sessions = new Set<Http2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    closeWhenIdle(s, config.h2IdleTimeoutMs);
  });
  // Raw sockets of both listeners. An h2 session closed gracefully counts as destroyed as soon
  // as its streams are done, but Node then only half-closes its socket and waits for the peer's
  // FIN: a client that keeps its end open keeps the listener, and so the process, alive. So
  // shutdown works on the sockets themselves, not on session objects.
  const sockets = new Set<Socket>();
  let draining = false;
  // Once our side has sent everything and its FIN, nothing the client was promised is pending.
  const cutWhenFlushed = (socket: Socket) => socket.once("finish", () => socket.destroy());
  for (const [server, listener] of [
    [http1, "http"],
    [h2, "grpc"],
  ] as const) {
    // Node drops a connection that arrives while the listener holds this many.
    server.maxConnections = config.maxConnections;
    server.on("drop", () => metrics.refuseConnection(listener));
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      if (draining) cutWhenFlushed(socket);
    });
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Headers over `maxHeaderSize` get the status that says so; other unparsable requests
      // and timeouts just lose the connection.
      if (err.code === "HPE_HEADER_OVERFLOW" && socket.writable) socket.end(HEADERS_TOO_LARGE);
      else socket.destroy();
    });
  }
  const cutAll = () => {
    shutdown.abort();
    http1.closeAllConnections();
    for (const s of sessions) s.destroy();
    for (const socket of sockets) socket.destroy();
  };

  let httpInfo: AddressInfo;
  let grpcInfo: AddressInfo;
  // Which listener is being bound, so a failure names its address and flag.
  let binding = { flag: "--http-addr", addr: config.httpAddr };
  try {
    httpInfo = await listen(http1, config.httpAddr.host, config.httpAddr.port);
    binding = { flag: "--grpc-addr", addr: config.grpcAddr };
    grpcInfo = await listen(h2, config.grpcAddr.host, config.grpcAddr.port);
  } catch (err) {
    http1.close();
    h2.close();
    closeStore();
    audit.close();
    const e = err as NodeJS.ErrnoException;
    const where = formatAddress(binding.addr.host, binding.addr.port);
    const why =
      e.code === "EADDRINUSE"
        ? "the address is in use (another daemon?)"
        : e.code === "EACCES"
          ? "permission denied"
          : e.code === "EADDRNOTAVAIL"
            ? "no such local address"
            : (e.code ?? "unknown error");
    throw new ConfigError(`cannot listen on ${where}: ${why}; check ${binding.flag}`);
  }
  httpHosts = allowedHostSet(httpInfo.port, config.allowedHosts);
  grpcHosts = allowedHostSet(grpcInfo.port, config.allowedHosts);
  const httpAddr = formatAddress(httpInfo.address, httpInfo.port);
  const grpcAddr = formatAddress(grpcInfo.address, grpcInfo.port);

  writeDaemonFile(config.dataDir, {
    pid: process.pid,
    httpAddr,
    grpcAddr,
    startTime: startTime.toISOString(),
    version: VERSION,
  });
  logger.info(
    {
      httpAddr,
      grpcAddr,
      dataDir: config.dataDir,
      tokenSource: source,
      webTokenSource: web?.source ?? "none",
      version: VERSION,
    },
    "daemon ready",
  );

  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    // Only once no handler runs any more: a drained handler can no longer touch the keystore.
    closeStore();
    removeDaemonFile(config.dataDir, process.pid);
    audit.close();
  };
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      stopping.abort();
      const closed = Promise.all([
        new Promise<void>((r) => http1.close(() => r())),
        new Promise<void>((r) => h2.close(() => r())),
      ]);
      http1.closeIdleConnections();
      for (const s of sessions) s.close();
      for (const socket of sockets) cutWhenFlushed(socket);
      // Streams (WatchDocuments) never end by themselves: give unary calls the drain window,
      // then abort handler signals and cut what is left. One bound for all of it. A call whose
      // client went away has no connection left but may still be running: it is waited for too,
      // so that its audit record reaches the file and it never meets a closed keystore.
      const drained = closed.then(() => calls.idle());
      if ((await Promise.race([drained, delay(DRAIN_TIMEOUT_MS)])) === "timeout") {
        cutAll();
        await Promise.race([drained, delay(CUT_TIMEOUT_MS)]);
      }
      if (calls.count > 0) {
        logger.warn({ calls: calls.count }, "calls still running at exit: they are cut short");
      }
      release();
    })();
    return closing;
  };
  const closeNow = () => {
    draining = true;
    stopping.abort();
    http1.close();
    h2.close();
    cutAll();
    release();
  };

  const rotateToken = () => {
    if (draining) {
      logger.warn("SIGHUP while shutting down: the token was not rotated");
      return;
    }
    const outcome = rotateAudited(deps.rotateToken, audit, { method: "SIGHUP" });
    if (outcome.ok) logger.info({ tokenPath: outcome.rotation.tokenPath }, "token rotated");
    else logger.warn({ reason: outcome.reason }, "SIGHUP: the token was not rotated");
  };

  return { httpAddr, grpcAddr, close, closeNow, rotateToken };
}
