import { Code, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { isUnexpectedError, toConnectError } from "../errors.js";
import { procedureOf } from "../security/interceptors.js";
import type { Metrics } from "./metrics.js";

/**
 * Outermost interceptor: counts and times every RPC and maps errors through toConnectError, so
 * an unexpected error reaches the client as `internal` with no detail and is logged here once.
 *
 * For a server stream the handler's errors surface while its messages are iterated, after this
 * interceptor has already returned, so the message iterator is wrapped: an error thrown
 * mid-stream keeps its code, the metric counts how the stream really ended, and the latency
 * covers the whole stream.
 */
export function errorAndMetricsInterceptor(metrics: Metrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const method = procedureOf(req);
    const end = metrics.latency.startTimer({ method });
    const fail = (err: unknown): never => {
      if (isUnexpectedError(err)) {
        logger.error({ method, err: errorSummary(err) }, "unexpected error in handler");
      }
      const ce = toConnectError(err);
      metrics.requests.inc({ method, code: Code[ce.code] ?? "unknown" });
      throw ce;
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      end();
      return fail(err);
    }
    if (!res.stream) {
      metrics.requests.inc({ method, code: "ok" });
      end();
      return res;
    }
    const messages = res.message;
    async function* observed() {
      let failed = false;
      try {
        yield* messages;
      } catch (err) {
        failed = true;
        fail(err);
      } finally {
        // A client that cancels ends the stream here too: that is not a handler failure.
        if (!failed) metrics.requests.inc({ method, code: "ok" });
        end();
      }
    }
    return { ...res, message: observed() };
  };
}

/** Name and stack frames only: messages of unexpected errors may quote inputs. */
function errorSummary(err: unknown): { name: string; stack?: string } {
  if (err instanceof Error) {
    const frames = err.stack?.split("\n").slice(1, 8).join("\n");
    return frames === undefined ? { name: err.name } : { name: err.name, stack: frames };
  }
  return { name: typeof err };
}
