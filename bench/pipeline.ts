/**
 * Cost of the security pipeline, as ratios against a baseline measured in the same run (these
 * machines are noisy). Spawns the real daemon on loopback; bounded in count and time.
 *
 *   node --import tsx bench/pipeline.ts [requests=3000] [concurrency=16]
 *
 * Rows: GET /health (Host gate only) is the baseline; GetInfo over Connect (full pipeline +
 * interceptors + protobuf) and a refused request (401 before the body is read) are compared to it.
 */
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { startDaemon } from "../test/helpers/daemon.js";

const total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);

const d = await startDaemon({ args: ["--log-level", "warn"] });
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

function once(method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<number>((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: d.httpPort, method, path, headers, agent },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function run(name: string, send: () => Promise<number>, expect: number) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const status = await send();
        if (status !== expect) throw new Error(`${name}: status ${status}`);
      }
    }),
  );
  const ms = performance.now() - t0;
  return { name, rps: (total / ms) * 1000 };
}

const json = { "content-type": "application/json" };
const cases = [
  () => run("health (baseline)", () => once("GET", "/health", {}), 200),
  () =>
    run(
      "GetInfo, Connect JSON",
      () =>
        once(
          "POST",
          "/com.seed.daemon.v1alpha.Daemon/GetInfo",
          { ...json, authorization: `Bearer ${d.token}` },
          "{}",
        ),
      200,
    ),
  () =>
    run(
      "refused: wrong token",
      () =>
        once(
          "POST",
          "/com.seed.daemon.v1alpha.Daemon/GetInfo",
          { ...json, authorization: "Bearer wrong-wrong-wrong-wrong-wrong-wrong" },
          "{}",
        ),
      401,
    ),
];
try {
  // Warm-up, then two interleaved rounds so drift hits every row alike.
  for (const c of cases) await c();
  const rows = new Map<string, number[]>();
  for (let round = 0; round < 2; round++) {
    for (const c of cases) {
      const r = await c();
      rows.set(r.name, [...(rows.get(r.name) ?? []), r.rps]);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = mean(rows.get("health (baseline)") ?? [1]);
  console.log(`requests=${total} concurrency=${concurrency}`);
  for (const [name, rps] of rows) {
    console.log(
      `${name.padEnd(24)} ${mean(rps).toFixed(0).padStart(7)} req/s  ratio ${(mean(rps) / base).toFixed(2)}`,
    );
  }
} finally {
  agent.destroy();
  await d.stop();
}
