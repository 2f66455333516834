/**
 * Cost of the daemon's security pipeline and interceptors, as ratios against a baseline measured
 * in the same run (these machines are noisy): a bare connect-node server with the same GetInfo
 * handler (bench/bare-server.ts). Spawns both on loopback; bounded in count and time.
 *
 *   npm run build && node --import tsx bench/pipeline.ts [requests=3000] [connections=16] [rounds=3]
 *
 * Rows, each against its twin sent the same way:
 * - authenticated GetInfo over Connect JSON and Connect binary (HTTP/1.1) and gRPC (h2c), daemon
 *   against bare;
 * - a refused request (wrong token: 401, body never read) against an accepted GetInfo;
 * - the same request sent to a plain `node:http` server that answers every request with that
 *   401 at once (bare-server.ts `floorPort`): the floor of any refusal on Node, against both;
 * - GET /health (Host gate only, no body) for reference.
 *
 * Requests come from lean clients (lib.ts `rawLoad`: raw sockets, 8 pipelined per connection;
 * `grpcLoad`: `node:http2` streams, 8 per session), not from connect-node's clients. Those cost
 * the client more CPU per call than the daemon spends, and on 2 shared cores they were the
 * bottleneck, which pulled every ratio towards 1. Each row also prints the CPU the server spent
 * per request (Linux), which does not depend on how fast the client is; the ratios of both are
 * printed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT, startDaemon } from "../test/helpers/daemon.js";
import { cpuMicros, grpcLoad, interleave, median, rawLoad } from "./lib.js";

const total = Number(process.argv[2] ?? 3000);
const connections = Number(process.argv[3] ?? 16);
const rounds = Number(process.argv[4] ?? 3);
/** Requests in flight per connection. */
const DEPTH = 8;
/** Rows of cheap answers (a refusal, /health) send this many times `requests`, to last a second. */
const CHEAP_MULTIPLIER = 4;

/** Starts bench/bare-server.ts and resolves with its ports. */
async function startBare(): Promise<{
  proc: ChildProcess;
  httpPort: number;
  grpcPort: number;
  floorPort: number;
}> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "bare-server.ts")], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = await new Promise<string>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once("line", resolve);
  });
  return {
    proc,
    ...(JSON.parse(first) as { httpPort: number; grpcPort: number; floorPort: number }),
  };
}

/** Server CPU microseconds per request of each row, one figure per run. */
const serverCost = new Map<string, number[]>();

/** A row: `send` makes `count` requests; the CPU process `pid` spent on them is recorded too. */
function row(name: string, pid: number, count: number, send: (count: number) => Promise<number>) {
  return async () => {
    const cpu0 = cpuMicros(pid);
    const rps = await send(count);
    serverCost.set(name, [...(serverCost.get(name) ?? []), (cpuMicros(pid) - cpu0) / count]);
    return { name, rps };
  };
}

/** One HTTP/1.1 request, head and body, as {@link rawLoad} sends it. */
function http1Request(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
) {
  const head = [
    `${method} ${path} HTTP/1.1`,
    `host: 127.0.0.1:${port}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ...(method === "GET" ? [] : [`content-length: ${Buffer.byteLength(body)}`]),
  ];
  return Buffer.from(`${head.join("\r\n")}\r\n\r\n${body}`);
}

const GET_INFO = "/com.seed.daemon.v1alpha.Daemon/GetInfo";
const d = await startDaemon({ args: ["--log-level", "warn"] });
const bare = await startBare();
const auth = { authorization: `Bearer ${d.token}` };
const daemonPid = d.proc.pid as number;
const barePid = bare.proc.pid as number;

type Server = { pid: number; httpPort: number; grpcPort: number; headers: Record<string, string> };
const servers: readonly [string, Server][] = [
  ["bare", { pid: barePid, httpPort: bare.httpPort, grpcPort: bare.grpcPort, headers: {} }],
  ["daemon", { pid: daemonPid, httpPort: d.httpPort, grpcPort: d.grpcPort, headers: auth }],
];
const flavours = [
  ["Connect JSON", "application/json", "{}"],
  ["Connect binary", "application/proto", ""],
] as const;
const http1Rows = (label: string, type: string, body: string, expect = 200) =>
  servers.map(([who, s]) =>
    row(`${who} ${label}`, s.pid, total, (count) =>
      rawLoad({
        port: s.httpPort,
        request: http1Request(
          s.httpPort,
          "POST",
          GET_INFO,
          { ...s.headers, "content-type": type },
          body,
        ),
        total: count,
        connections,
        depth: DEPTH,
        expect,
      }),
    ),
  );
const cheap = (name: string, request: Buffer, expect: number, port = d.httpPort, pid = daemonPid) =>
  row(name, pid, total * CHEAP_MULTIPLIER, (count) =>
    rawLoad({ port, request, total: count, connections, depth: DEPTH, expect }),
  );
const json = { "content-type": "application/json" };
/**
 * The floor must answer exactly what the daemon answers a wrong token (bare-server.ts copies
 * it): the same status, body and headers, apart from the date. Checked once, before measuring.
 */
async function checkFloorMatchesDaemon() {
  const answer = async (port: number) => {
    const res = await fetch(`http://127.0.0.1:${port}${GET_INFO}`, {
      method: "POST",
      headers: { ...json, authorization: `Bearer ${"w".repeat(43)}` },
      body: "{}",
    });
    const headers = [...res.headers].filter(([k]) => k !== "date").sort();
    return JSON.stringify({ status: res.status, headers, body: await res.text() });
  };
  const [daemon, floor] = [await answer(d.httpPort), await answer(bare.floorPort)];
  if (daemon !== floor) {
    throw new Error(`the floor's refusal differs from the daemon's:\n${daemon}\n${floor}`);
  }
}
await checkFloorMatchesDaemon();
const cases = [
  ...flavours.flatMap(([label, type, body]) => http1Rows(label, type, body)),
  ...servers.map(([who, s]) =>
    row(`${who} gRPC h2c`, s.pid, total, (count) =>
      grpcLoad({
        port: s.grpcPort,
        path: GET_INFO,
        message: new Uint8Array(0),
        headers: s.headers,
        total: count,
        connections,
        depth: DEPTH,
      }),
    ),
  ),
  ...[
    ["refused: wrong token", d.httpPort, daemonPid],
    ["refused: node:http floor", bare.floorPort, barePid],
  ].map(([name, port, pid]) =>
    cheap(
      name as string,
      http1Request(
        port as number,
        "POST",
        GET_INFO,
        { ...json, authorization: `Bearer ${"w".repeat(43)}` },
        "{}",
      ),
      401,
      port as number,
      pid as number,
    ),
  ),
  cheap("health", http1Request(d.httpPort, "GET", "/health", {}), 200),
];
try {
  const rows = await interleave(cases, rounds, median);
  const rps = (name: string) => rows.get(name) ?? Number.NaN;
  // The first figure of each row is interleave's warm-up run.
  const cost = (name: string) => median((serverCost.get(name) ?? []).slice(1));
  console.log(
    `requests=${total} connections=${connections} depth=${DEPTH} rounds=${rounds} (medians)`,
  );
  console.log(`${"row".padEnd(26)} ${"req/s".padStart(7)}  server CPU/request`);
  for (const [name, value] of rows) {
    console.log(`${name.padEnd(26)} ${value.toFixed(0).padStart(7)}  ${cost(name).toFixed(1)} us`);
  }
  console.log("ratios: by req/s, and by server CPU per request (goal in brackets)");
  const ratio = (fast: string, slow: string) =>
    `${(rps(fast) / rps(slow)).toFixed(2)}x  ${(cost(slow) / cost(fast)).toFixed(2)}x`;
  for (const label of [...flavours.map(([l]) => l), "gRPC h2c"]) {
    console.log(
      `  daemon / bare, ${label.padEnd(15)} ${ratio(`daemon ${label}`, `bare ${label}`)}  [>= 0.95x]`,
    );
  }
  console.log(
    `  refused / accepted (JSON)      ${ratio("refused: wrong token", "daemon Connect JSON")}  [>= 10x]`,
  );
  console.log(
    `  floor / accepted (JSON)        ${ratio("refused: node:http floor", "daemon Connect JSON")}  (the most any refusal on node:http reaches)`,
  );
  console.log(
    `  floor / refused                ${ratio("refused: node:http floor", "refused: wrong token")}  (what the daemon adds to Node's refusal)`,
  );
  console.log(
    `  health / accepted (JSON)       ${ratio("health", "daemon Connect JSON")}  (a bodyless GET, Host gate only)`,
  );
} finally {
  bare.proc.kill();
  await d.stop();
}
