import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

/** Why the pipeline refused a request before it reached a handler. */
export type RejectReason = "host" | "origin" | "token" | "scope";

/** A listener, as metric labels name it: `http` (HTTP/1.1) or `grpc` (h2c). */
export type Listener = "http" | "grpc";

/** One procedure's RPC metrics, with its label children made once (see {@link Metrics.rpc}). */
export interface RpcMetrics {
  /** Starts timing one call; the returned function records its duration. */
  startTimer(): () => void;
  /** Counts one call that ended with `code` (a Connect code name, or `ok`). */
  count(code: string): void;
}

/**
 * The daemon's metrics on a private registry. Labels are bounded: procedure names come from the
 * router's known set, never from the request path.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "seed_daemon_requests_total",
    help: "RPCs handled, by procedure and Connect code",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: "seed_daemon_rejections_total",
    help: "Requests refused by the security pipeline, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly refusedConnections = new Counter({
    name: "seed_daemon_connections_refused_total",
    help: "Connections dropped on arrival because the listener held --max-connections, by listener",
    labelNames: ["listener"] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: "seed_daemon_request_duration_seconds",
    help: "RPC latency, by procedure",
    labelNames: ["method"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly #rpcs = new Map<string, RpcMetrics>();
  /** The rejection counter's child per reason, made on first use (see {@link Metrics.rpc}). */
  readonly #rejections = new Map<RejectReason, Counter.Internal>();

  /**
   * The metrics of one procedure. The label children are made once per procedure and code and
   * kept, so no label object is built per call. prom-client's children still check and hash
   * their bound labels on every `inc` and `observe`: about 1 µs per RPC in all, measured.
   * Procedures come from the router's fixed set, so the cache is bounded.
   */
  rpc(method: string): RpcMetrics {
    let m = this.#rpcs.get(method);
    if (m === undefined) {
      const latency = this.latency.labels(method);
      const counts = new Map<string, Counter.Internal>();
      m = {
        startTimer: () => latency.startTimer(),
        count: (code) => {
          let child = counts.get(code);
          if (child === undefined) {
            child = this.requests.labels(method, code);
            counts.set(code, child);
          }
          child.inc();
        },
      };
      this.#rpcs.set(method, m);
    }
    return m;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "seed_daemon_" });
  }

  /** Counts one refusal; a flood of them costs a map lookup each, not a label hash. */
  reject(reason: RejectReason): void {
    let child = this.#rejections.get(reason);
    if (child === undefined) {
      child = this.rejections.labels(reason);
      this.#rejections.set(reason, child);
    }
    child.inc();
  }

  /** Counts a connection `listener` dropped on arrival because it was full. */
  refuseConnection(listener: Listener): void {
    this.refusedConnections.inc({ listener });
  }
}
