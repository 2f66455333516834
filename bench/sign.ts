/**
 * Cost of SignData over RPC, as a ratio against GetInfo measured in the same run (these machines
 * are noisy). GetInfo goes through the same pipeline, interceptors and protobuf, so the ratio is
 * what signing itself (key lookup, audit record, Ed25519) adds. Spawns the real daemon on
 * loopback; bounded in count and time.
 *
 *   node --import tsx bench/sign.ts [requests=3000] [concurrency=16]
 */
import { Agent } from "node:http";
import { startDaemon } from "../test/helpers/daemon.js";
import { interleave, load, send } from "./lib.js";

const total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);

// The audit log goes to a file too, as a deployment would have it; pino output is silenced by
// the log level, so the bench measures the daemon rather than the pipe to this process.
const d = await startDaemon({ args: ["--log-level", "warn"] });
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

async function once(path: string, body: string) {
  const res = await send({
    port: d.httpPort,
    agent,
    path,
    headers: { "content-type": "application/json", authorization: `Bearer ${d.token}` },
    body,
  });
  return { status: res.status, text: res.body.toString("utf8") };
}

async function run(name: string, path: string, body: string) {
  const rps = await load(total, concurrency, async () => {
    const res = await once(path, body);
    if (res.status !== 200) throw new Error(`${name}: status ${res.status} ${res.text}`);
  });
  return { name, rps };
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
  const rows = await interleave(cases, 3);
  const base = rows.get("GetInfo (baseline)") ?? 1;
  console.log(`requests=${total} concurrency=${concurrency}`);
  for (const [name, rps] of rows) {
    console.log(
      `${name.padEnd(20)} ${rps.toFixed(0).padStart(7)} req/s  ratio ${(rps / base).toFixed(2)}`,
    );
  }
} finally {
  agent.destroy();
  await d.stop();
}
