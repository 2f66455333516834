/**
 * The flood's attacker, run as its own process so its load does not share an event loop with
 * the authorised client it competes with. Argument: JSON `{httpPort, grpcPort, total,
 * concurrency, wrongToken}`. Sends `total` requests the daemon must refuse (a wrong token, no
 * token, a foreign Host, a foreign Host with a wrong token), split between the HTTP/1.1
 * listener (keep-alive) and the h2c one (a few shared sessions), and prints one JSON line with
 * the count of each status.
 *
 * @module
 */
import { Agent } from "node:http";
import { GET_INFO_PATH } from "../helpers/http.js";
import { type Answer, h2Sessions, sendH1, sendH2 } from "./protocol.js";

/** What the flood scenario passes in. */
export interface AttackerArgs {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly total: number;
  readonly concurrency: number;
  readonly wrongToken: string;
}

/** What the attacker prints: the count of each status (or `reset`, `timeout`), and its time. */
export interface AttackerReport {
  readonly statuses: Record<string, number>;
  readonly seconds: number;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? "{}") as AttackerArgs;
  const agent = new Agent({ keepAlive: true, maxSockets: a.concurrency });
  const sessions = h2Sessions(a.grpcPort, 4);
  const statuses: Record<string, number> = {};
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: a.concurrency }, async () => {
      while (next < a.total) {
        const i = next++;
        const h2 = i % 3 === 2;
        const port = h2 ? a.grpcPort : a.httpPort;
        const kind = i % 4;
        const host = kind === 2 || kind === 3 ? `evil.example:${port}` : `127.0.0.1:${port}`;
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (kind === 0 || kind === 3) headers.authorization = `Bearer ${a.wrongToken}`;
        headers[h2 ? ":authority" : "host"] = host;
        const r = { method: "POST", path: GET_INFO_PATH, headers, body: "{}", timeoutMs: 10_000 };
        const ans: Answer = h2 ? await sendH2(sessions.get(i), r) : await sendH1(port, agent, r);
        const key = ans.kind === "response" ? String(ans.status) : ans.kind;
        statuses[key] = (statuses[key] ?? 0) + 1;
      }
    }),
  );
  sessions.destroy();
  agent.destroy();
  const report: AttackerReport = { statuses, seconds: (Date.now() - t0) / 1000 };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
