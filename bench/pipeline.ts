/**
 * Cost of the security pipeline, as ratios against a baseline measured in the same run (these
 * machines are noisy). Spawns the real daemon on loopback; bounded in count and time.
 *
 *   node --import tsx bench/pipeline.ts [requests=3000] [concurrency=16]
 *
 * Rows: GET /health (Host gate only) is the baseline; GetInfo over Connect (full pipeline +
 * interceptors + protobuf) and a refused request (401 before the body is read) are compared to it.
 */
import { Agent } from "node:http";
import { startDaemon } from "../test/helpers/daemon.js";
import { interleave, load, send } from "./lib.js";

const total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);

const d = await startDaemon({ args: ["--log-level", "warn"] });
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

async function once(method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await send({
    port: d.httpPort,
    agent,
    method,
    path,
    headers,
    ...(body !== undefined && { body }),
  });
  return res.status;
}

async function run(name: string, send: () => Promise<number>, expect: number) {
  const rps = await load(total, concurrency, async () => {
    const status = await send();
    if (status !== expect) throw new Error(`${name}: status ${status}`);
  });
  return { name, rps };
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
  const rows = await interleave(cases, 2);
  const base = rows.get("health (baseline)") ?? 1;
  console.log(`requests=${total} concurrency=${concurrency}`);
  for (const [name, rps] of rows) {
    console.log(
      `${name.padEnd(24)} ${rps.toFixed(0).padStart(7)} req/s  ratio ${(rps / base).toFixed(2)}`,
    );
  }
} finally {
  agent.destroy();
  await d.stop();
}
