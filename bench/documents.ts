/**
 * Cost of document reads, as ratios against a baseline measured in the same run (these machines
 * are noisy). Spawns the real daemon on loopback (web token, one --cors-origin, an audit file as
 * a deployment would have it); bounded in count and time.
 *
 *   node --import tsx bench/documents.ts [requests=3000] [concurrency=16] [blocks=1000] [samples=200]
 *
 * 1. Throughput of GetDocument for a private document read through a 2-link AGENT chain (alice
 *    → agent → reader, the reader logged in with a forwarded principal and one login proof)
 *    against a public document with the same content read with the same headers. Goal: ≥ 0.8x.
 * 2. Sequential GetDocument latency (median, p95) of a document of `blocks` blocks made by as
 *    many changes against a one-change, one-block document; and, as information, how fast the
 *    big one was built (CreateDocumentChange per second).
 *
 * Reads go over Connect on HTTP/1.1 with binary protobuf, on a keep-alive agent, so the client
 * side (same machine, same cores) costs as little as it can.
 */

import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { Daemon } from "../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  type DocumentChange,
  DocumentChangeSchema,
  DocumentSchema,
  Documents,
  GetDocumentRequestSchema,
  ResourceVisibility,
} from "../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../src/identity/keys.js";
import { principalToString } from "../src/identity/principal.js";
import { clientFor, codeOf } from "../test/helpers/clients.js";
import { randomToken, removeDir, startDaemon, tempDir } from "../test/helpers/daemon.js";
import { loginProof } from "../test/helpers/login-proof.js";
import { interleave, load, type Reply, send } from "./lib.js";

const total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);
const blocks = Number(process.argv[4] ?? 1000);
const samples = Number(process.argv[5] ?? 200);
/** Private/public throughput the private-read path should keep. */
const GOAL = 0.8;

const SITE = "https://site.example";
const WEB = randomToken();
const ALICE_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const AGENT_WORDS =
  "legal winner thank year wave sausage worth useful legal winner thank yellow".split(" ");
// The reader is never registered: only this process knows its seed, as a browser would.
const READER_WORDS =
  "letter advice cage absurd amount doctor acoustic avoid letter advice cage above".split(" ");
const principalOf = (words: string[]) =>
  principalToString(publicKeyFromSeed(keyFromMnemonic(words)));
const ALICE = principalOf(ALICE_WORDS);
const AGENT = principalOf(AGENT_WORDS);
const READER_SEED = keyFromMnemonic(READER_WORDS);
const READER = principalToString(publicKeyFromSeed(READER_SEED));

const title = (t: string): DocumentChange =>
  create(DocumentChangeSchema, { op: { case: "setMetadata", value: { key: "title", value: t } } });
const paragraph = (id: string, text: string, leftSibling = ""): DocumentChange[] => [
  create(DocumentChangeSchema, {
    op: { case: "moveBlock", value: { blockId: id, parent: "", leftSibling } },
  }),
  create(DocumentChangeSchema, {
    op: { case: "replaceBlock", value: { id, type: "Paragraph", text } },
  }),
];
/** A small page: a title and a few paragraphs, the same for the public and the private one. */
const pageContent = (): DocumentChange[] => [
  title("Bench page"),
  ...Array.from({ length: 8 }, (_, i) =>
    paragraph(
      `p${i}`,
      `Paragraph ${i} of a page of ordinary length. `.repeat(3),
      i === 0 ? "" : `p${i - 1}`,
    ),
  ).flat(),
];

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const dir = tempDir("seed-bench-");
const auditFile = join(dir, "audit.jsonl");
const d = await startDaemon({
  dataDir: join(dir, "data"),
  env: { SEED_DAEMON_WEB_TOKEN: WEB },
  args: ["--log-level", "warn", "--cors-origin", SITE, "--audit-log", auditFile],
});
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const GET_DOCUMENT = "/com.seed.documents.v3alpha.Documents/GetDocument";

/** One Connect unary GetDocument in binary protobuf; throws on anything but 200. */
async function getDocument(headers: Record<string, string>, path: string): Promise<Reply> {
  const res = await send({
    port: d.httpPort,
    agent,
    path: GET_DOCUMENT,
    headers: {
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      ...headers,
    },
    body: toBinary(
      GetDocumentRequestSchema,
      create(GetDocumentRequestSchema, { account: ALICE, path }),
    ),
  });
  if (res.status !== 200) {
    throw new Error(`GetDocument ${path}: status ${res.status} ${res.body.toString("utf8")}`);
  }
  return res;
}

try {
  console.log(
    `node ${process.version}  cpus=${availableParallelism()}  requests=${total} concurrency=${concurrency} blocks=${blocks} samples=${samples}`,
  );
  const daemon = clientFor(Daemon, "connect", d, d.token);
  const docs = clientFor(Documents, "connect", d, d.token);
  const acl = clientFor(AccessControl, "connect", d, d.token);
  await daemon.registerKey({ name: "alice", mnemonic: ALICE_WORDS });
  await daemon.registerKey({ name: "agent", mnemonic: AGENT_WORDS });

  // --- 1. Private read through a 2-link AGENT chain vs a public read --------------------------
  const PUBLIC = "/bench/public";
  const PRIVATE = "/bench/private";
  for (const [path, visibility] of [
    [PUBLIC, ResourceVisibility.PUBLIC],
    [PRIVATE, ResourceVisibility.PRIVATE],
  ] as const) {
    await docs.createDocumentChange({
      account: ALICE,
      path,
      signingKeyName: "alice",
      visibility,
      changes: pageContent(),
    });
  }
  // Link 1: alice lets `agent` act as her; link 2: `agent` lets the reader act as it.
  await acl.createCapability({
    signingKeyName: "alice",
    account: ALICE,
    delegate: AGENT,
    role: Role.AGENT,
  });
  await acl.createCapability({
    signingKeyName: "agent",
    account: AGENT,
    delegate: READER,
    role: Role.AGENT,
  });
  // One proof for every call: the daemon caches verified proofs.
  const readerHeaders = {
    authorization: `Bearer ${WEB}`,
    "x-seed-principal": READER,
    "x-seed-principal-proof": loginProof(READER_SEED, SITE),
  };

  // The private read must really succeed through the chain, and must really be private.
  const anonymous = clientFor(Documents, "connect", d, WEB);
  const denied = await codeOf(anonymous.getDocument({ account: ALICE, path: PRIVATE }));
  if (denied !== Code.NotFound) throw new Error(`anonymous read of the private doc: ${denied}`);
  const asReader = clientFor(Documents, "connect", d, WEB, {
    "x-seed-principal": READER,
    "x-seed-principal-proof": readerHeaders["x-seed-principal-proof"],
  });
  const code = await codeOf(asReader.getDocument({ account: ALICE, path: PRIVATE }));
  if (code !== "ok") {
    throw new Error(`BUG: the reader cannot read the private doc through the AGENT chain: ${code}`);
  }
  // …and it was the chain that granted it, as the audit record of the read says.
  const granted = readFileSync(auditFile, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .findLast((r) => r.event === "document.read" && r.principal === READER);
  if (granted?.outcome !== "granted" || granted.reason !== "agent_chain") {
    throw new Error(
      `the private read was not granted by the AGENT chain: ${JSON.stringify(granted)}`,
    );
  }
  const priv = fromBinary(DocumentSchema, (await getDocument(readerHeaders, PRIVATE)).body);
  const pub = fromBinary(DocumentSchema, (await getDocument(readerHeaders, PUBLIC)).body);
  if (
    priv.visibility !== ResourceVisibility.PRIVATE ||
    priv.content.length !== pub.content.length ||
    priv.content.some((n, i) => n.block?.text !== pub.content[i]?.block?.text)
  ) {
    throw new Error("the private and the public doc do not have the same content");
  }

  const row = (name: string, path: string) => async () => ({
    name,
    rps: await load(total, concurrency, async () => {
      await getDocument(readerHeaders, path);
    }),
  });
  const rows = await interleave(
    [row("public, same headers", PUBLIC), row("private, AGENT chain", PRIVATE)],
    5,
  );
  const pubRps = rows.get("public, same headers") ?? 0;
  const privRps = rows.get("private, AGENT chain") ?? 0;
  const ratio = privRps / pubRps;
  console.log("\nGetDocument throughput (Connect HTTP/1.1, web token + principal + proof)");
  for (const [name, rps] of rows) {
    console.log(
      `  ${name.padEnd(22)} ${rps.toFixed(0).padStart(7)} req/s  ratio ${(rps / pubRps).toFixed(2)}`,
    );
  }
  console.log(
    `  private/public ${ratio.toFixed(2)}x  (goal >= ${GOAL}x) ${ratio >= GOAL ? "PASS" : "BELOW GOAL"}`,
  );

  // --- 2. A document of many changes vs one of one change -----------------------------------
  const BIG = "/bench/big";
  const SMALL = "/bench/small";
  await docs.createDocumentChange({
    account: ALICE,
    path: SMALL,
    signingKeyName: "alice",
    changes: paragraph("b0", "The only paragraph."),
  });
  const t0 = performance.now();
  let version = "";
  for (let i = 0; i < blocks; i++) {
    const doc = await docs.createDocumentChange({
      account: ALICE,
      path: BIG,
      signingKeyName: "alice",
      baseVersion: version,
      changes: paragraph(`b${i}`, `Paragraph ${i}.`, i === 0 ? "" : `b${i - 1}`),
    });
    version = doc.version;
  }
  const buildMs = performance.now() - t0;
  const master = { authorization: `Bearer ${d.token}` };
  const big = fromBinary(DocumentSchema, (await getDocument(master, BIG)).body);
  if (big.content.length !== blocks || big.content.some((n, i) => n.block?.id !== `b${i}`)) {
    throw new Error(`the big doc has ${big.content.length} blocks, not b0…b${blocks - 1} in order`);
  }

  // Warm-up, then one call of each in turn so drift hits both alike.
  for (let i = 0; i < 20; i++) {
    await getDocument(master, SMALL);
    await getDocument(master, BIG);
  }
  const lat = { small: [] as number[], big: [] as number[] };
  for (let i = 0; i < samples; i++) {
    for (const [key, path] of [
      ["small", SMALL],
      ["big", BIG],
    ] as const) {
      const s = performance.now();
      await getDocument(master, path);
      lat[key].push(performance.now() - s);
    }
  }
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95) };
  };
  const small = stats(lat.small);
  const large = stats(lat.big);
  console.log(`\nGetDocument latency, sequential (master token, ${samples} calls each)`);
  console.log(
    `  ${"1 change, 1 block".padEnd(26)} p50 ${small.p50.toFixed(2).padStart(7)} ms  p95 ${small.p95.toFixed(2).padStart(7)} ms`,
  );
  console.log(
    `  ${`${blocks} changes, ${blocks} blocks`.padEnd(26)} p50 ${large.p50.toFixed(2).padStart(7)} ms  p95 ${large.p95.toFixed(2).padStart(7)} ms`,
  );
  console.log(
    `  ${"ratio big/small".padEnd(26)} p50 ${(large.p50 / small.p50).toFixed(1)}x  p95 ${(large.p95 / small.p95).toFixed(1)}x  (response ${big.content.length} blocks)`,
  );
  console.log(
    `\nbuilding the ${blocks}-change doc: ${(buildMs / 1000).toFixed(1)} s, ${((blocks / buildMs) * 1000).toFixed(0)} CreateDocumentChange/s (sequential)`,
  );
} finally {
  agent.destroy();
  await d.stop();
  removeDir(dir);
}
