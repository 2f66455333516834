/**
 * Cost of the daemon's security pipeline and interceptors, as ratios against a baseline measured
 * in the same run (these machines are noisy): a bare connect-node server with the same GetInfo
 * handler (bench/bare-server.ts). Spawns both on loopback; bounded in count and time.
 *
 *   node --import tsx bench/pipeline.ts [requests=3000] [concurrency=16] [rounds=3]
 *
 * Rows, each measured against its bare twin with the same client:
 * - authenticated GetInfo over Connect JSON, Connect binary (HTTP/1.1) and gRPC (h2c);
 * - a refused request (wrong token: 401, body never read) against an accepted GetInfo, both as
 *   raw HTTP/1.1 requests, so the ratio shows how much cheaper a refusal is;
 * - GET /health (Host gate only) for reference.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Agent } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Daemon } from "../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { ROOT, startDaemon } from "../test/helpers/daemon.js";
import { interleave, load, median, send } from "./lib.js";

const total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);
const rounds = Number(process.argv[4] ?? 3);

/** Starts bench/bare-server.ts and resolves with its ports. */
async function startBare(): Promise<{ proc: ChildProcess; httpPort: number; grpcPort: number }> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "bare-server.ts")], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = await new Promise<string>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once("line", resolve);
  });
  return { proc, ...(JSON.parse(first) as { httpPort: number; grpcPort: number }) };
}

const d = await startDaemon({ args: ["--log-level", "warn"] });
const bare = await startBare();
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

type Flavour = "json" | "binary" | "grpc";
function getInfoClient(
  flavour: Flavour,
  ports: { httpPort: number; grpcPort: number },
  token?: string,
) {
  const withToken: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const interceptors = token === undefined ? [] : [withToken];
  const transport =
    flavour === "grpc"
      ? createGrpcTransport({ baseUrl: `http://127.0.0.1:${ports.grpcPort}`, interceptors })
      : createConnectTransport({
          baseUrl: `http://127.0.0.1:${ports.httpPort}`,
          httpVersion: "1.1",
          useBinaryFormat: flavour === "binary",
          nodeOptions: { agent },
          interceptors,
        });
  return createClient(Daemon, transport);
}

function rpcRow(name: string, client: ReturnType<typeof getInfoClient>) {
  return async () => ({
    name,
    rps: await load(total, concurrency, async () => {
      const info = await client.getInfo({});
      if (info.version === "") throw new Error(`${name}: empty GetInfo`);
    }),
  });
}

function rawRow(name: string, path: string, headers: Record<string, string>, expect: number) {
  return async () => ({
    name,
    rps: await load(total, concurrency, async () => {
      const body = path === "/health" ? undefined : "{}";
      const r = await send({
        port: d.httpPort,
        agent,
        method: body === undefined ? "GET" : "POST",
        path,
        headers,
        ...(body !== undefined && { body }),
      });
      if (r.status !== expect) throw new Error(`${name}: status ${r.status}`);
    }),
  });
}

const GET_INFO = "/com.seed.daemon.v1alpha.Daemon/GetInfo";
const json = { "content-type": "application/json" };
const flavours: readonly [Flavour, string][] = [
  ["json", "Connect JSON"],
  ["binary", "Connect binary"],
  ["grpc", "gRPC h2c"],
];
const cases = [
  ...flavours.flatMap(([f, label]) => [
    rpcRow(`bare ${label}`, getInfoClient(f, bare)),
    rpcRow(`daemon ${label}`, getInfoClient(f, d, d.token)),
  ]),
  rawRow("accepted GetInfo (raw)", GET_INFO, { ...json, authorization: `Bearer ${d.token}` }, 200),
  rawRow(
    "refused: wrong token",
    GET_INFO,
    { ...json, authorization: `Bearer ${"w".repeat(43)}` },
    401,
  ),
  rawRow("health", "/health", {}, 200),
];
try {
  const rows = await interleave(cases, rounds, median);
  const rps = (name: string) => rows.get(name) ?? Number.NaN;
  console.log(`requests=${total} concurrency=${concurrency} rounds=${rounds} (median req/s)`);
  for (const [name, value] of rows) {
    console.log(`${name.padEnd(26)} ${value.toFixed(0).padStart(7)} req/s`);
  }
  console.log("ratios (goal in brackets):");
  for (const [, label] of flavours) {
    const ratio = rps(`daemon ${label}`) / rps(`bare ${label}`);
    console.log(`  daemon / bare, ${label.padEnd(15)} ${ratio.toFixed(2)}x  [>= 0.95x]`);
  }
  const refused = rps("refused: wrong token") / rps("accepted GetInfo (raw)");
  console.log(`  refused / accepted          ${refused.toFixed(2)}x  [>= 10x]`);
} finally {
  agent.destroy();
  bare.proc.kill();
  await d.stop();
}
