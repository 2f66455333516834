/**
 * Cost of SignData over RPC, as a ratio against GetInfo measured in the same run (these machines
 * are noisy). GetInfo goes through the same pipeline, interceptors and protobuf, so the ratio is
 * what signing itself (key lookup, audit record, Ed25519) adds. Spawns the real daemon on
 * loopback; bounded in count and time.
 *
 *   node --import tsx bench/sign.ts [requests=3000] [concurrency=16]
 */
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { startDaemon } from "../test/helpers/daemon.js";

const total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);

// The audit log goes to a file too, as a deployment would have it; pino output is silenced by
// the log level, so the bench measures the daemon rather than the pipe to this process.
const d = await startDaemon({ args: ["--log-level", "warn"] });
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

function once(path: string, body: string) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: d.httpPort,
        method: "POST",
        path,
        headers: { "content-type": "application/json", authorization: `Bearer ${d.token}` },
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function run(name: string, path: string, body: string) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const res = await once(path, body);
        if (res.status !== 200) throw new Error(`${name}: status ${res.status} ${res.text}`);
      }
    }),
  );
  const ms = performance.now() - t0;
  return { name, rps: (total / ms) * 1000 };
}

const DAEMON = "/com.seed.daemon.v1alpha.Daemon";
const mnemonic =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const data = Buffer.from("a blob of about the size of a small change".repeat(4)).toString("base64");
const cases = [
  () => run("GetInfo (baseline)", `${DAEMON}/GetInfo`, "{}"),
  () => run("SignData", `${DAEMON}/SignData`, JSON.stringify({ signingKeyName: "main", data })),
];
try {
  const reg = await once(
    `${DAEMON}/RegisterKey`,
    JSON.stringify({ mnemonic: mnemonic.split(" "), name: "main" }),
  );
  if (reg.status !== 200) throw new Error(`RegisterKey: ${reg.status} ${reg.text}`);
  // Warm-up, then three interleaved rounds so drift hits every row alike.
  for (const c of cases) await c();
  const rows = new Map<string, number[]>();
  for (let round = 0; round < 3; round++) {
    for (const c of cases) {
      const r = await c();
      rows.set(r.name, [...(rows.get(r.name) ?? []), r.rps]);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = mean(rows.get("GetInfo (baseline)") ?? [1]);
  console.log(`requests=${total} concurrency=${concurrency}`);
  for (const [name, rps] of rows) {
    console.log(
      `${name.padEnd(20)} ${mean(rps).toFixed(0).padStart(7)} req/s  ratio ${(mean(rps) / base).toFixed(2)}`,
    );
  }
} finally {
  agent.destroy();
  await d.stop();
}
