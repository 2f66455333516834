import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { DomainError } from "../../src/errors.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { createLogger } from "../../src/logger.js";
import { Metrics } from "../../src/server/metrics.js";
import { errorAndMetricsInterceptor } from "../../src/server/rpc-interceptor.js";

const WATCH = "/com.seed.documents.v3alpha.Documents/WatchDocuments";

/** A Documents.WatchDocuments handler that yields `before` messages, then does `then`. */
function setup(then: "end" | "domain" | "crash" | "wait", release?: Promise<void>) {
  const metrics = new Metrics();
  const logged: string[] = [];
  const logger = createLogger("error");
  logger.error = ((obj: unknown, msg: string) => {
    logged.push(`${msg} ${JSON.stringify(obj)}`);
  }) as typeof logger.error;
  const transport = createRouterTransport(
    (router) => {
      router.service(Documents, {
        async *watchDocuments() {
          yield { account: "first" };
          if (then === "wait") await release;
          if (then === "domain") throw new DomainError("not_found", "document not found");
          if (then === "crash") throw new Error("secret-bearing library text");
          yield { account: "second" };
        },
      });
      router.service(Daemon, {
        getInfo: () => {
          throw new DomainError("failed_precondition", "not now");
        },
      });
    },
    { router: { interceptors: [errorAndMetricsInterceptor(metrics, logger)] } },
  );
  return { metrics, logged, client: createClient(Documents, transport), transport };
}

async function drain(client: ReturnType<typeof setup>["client"]) {
  const seen: string[] = [];
  try {
    for await (const m of client.watchDocuments({})) seen.push(m.account);
    return { seen, code: "ok" };
  } catch (err) {
    return {
      seen,
      code: Code[ConnectError.from(err).code],
      message: ConnectError.from(err).rawMessage,
    };
  }
}

async function counted(metrics: Metrics, method: string) {
  const { values } = await metrics.requests.get();
  return values.filter((v) => v.labels.method === method).map((v) => [v.labels.code, v.value]);
}

test("a DomainError thrown mid-stream keeps its code, and the metric says so", async () => {
  const { client, metrics } = setup("domain");
  const r = await drain(client);
  assert.deepEqual(r, { seen: ["first"], code: "NotFound", message: "document not found" });
  assert.deepEqual(await counted(metrics, WATCH), [["NotFound", 1]]);
});

test("an unexpected error mid-stream is internal with no detail, and logged once without its message", async () => {
  const { client, metrics, logged } = setup("crash");
  const r = await drain(client);
  assert.deepEqual(r, { seen: ["first"], code: "Internal", message: "internal error" });
  assert.deepEqual(await counted(metrics, WATCH), [["Internal", 1]]);
  assert.equal(logged.length, 1);
  assert.doesNotMatch(logged[0] ?? "", /secret-bearing/);
});

test("a stream that ends normally counts ok; its latency is recorded only when it ends", async () => {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const { client, metrics } = setup("wait", gate);
  const it = client.watchDocuments({})[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.account, "first");
  const histogram = async () =>
    (await metrics.latency.get()).values.find(
      (v) => v.metricName?.endsWith("_count") && v.labels.method === WATCH,
    )?.value ?? 0;
  assert.equal(await histogram(), 0, "still open: no latency yet");
  release();
  assert.equal((await it.next()).value?.account, "second");
  assert.equal((await it.next()).done, true);
  assert.equal(await histogram(), 1);
  assert.deepEqual(await counted(metrics, WATCH), [["ok", 1]]);
});

test("unary errors are mapped as before", async () => {
  const { transport, metrics } = setup("end");
  const daemon = createClient(Daemon, transport);
  await assert.rejects(
    daemon.getInfo({}),
    (e) => ConnectError.from(e).code === Code.FailedPrecondition,
  );
  assert.deepEqual(await counted(metrics, "/com.seed.daemon.v1alpha.Daemon/GetInfo"), [
    ["FailedPrecondition", 1],
  ]);
});
