/**
 * Fuzz: seeded random requests against the real binary on both listeners. Methods, paths,
 * headers, Connect / gRPC / gRPC-web framings, protobuf and JSON mutations of valid requests,
 * raw HTTP/1.1 byte mutations, compression bombs and deadlines, with the full token, the web
 * token, a wrong one or none. Request `i` of seed `s` is a pure function of `(s, i)` (and the
 * daemon's ports and tokens), so a finding names its seed and index, and the same seed sends the
 * same requests again.
 *
 * Invariants: the daemon never dies and still answers `/health`; no answer is a server fault
 * (HTTP `5xx`, or `internal` / `unknown` / `data_loss` in any framing); nothing but `GET /health`
 * and a preflight succeeds without the token; the web token never succeeds outside its read
 * scope; the daemon's memory stays bounded, over the run and under a burst of password-protected
 * key imports ({@link RUN_BOUND_MIB}, {@link BURST_BOUND_MIB}).
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { Agent } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import {
  create,
  type DescMethod,
  type MessageInitShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { entropyToMnemonic } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { clientFor, codeOf } from "../helpers/clients.js";
import { randomToken, type TestDaemon } from "../helpers/daemon.js";
import { envelope } from "../helpers/http.js";
import {
  type Check,
  healthy,
  indent,
  KEEP,
  memoryKiB,
  nearMiss,
  Rng,
  type RunOptions,
  rawExchange,
  resetPeak,
  type ScenarioResult,
  show,
  sleep,
} from "./lib.js";
import {
  type Answer,
  CONTENT_TYPE,
  codeName,
  type Framing,
  h2Sessions,
  METHODS,
  outcomeOf,
  SERVER_FAULT_CODES,
  sendH1,
  sendH2,
} from "./protocol.js";
import { type Scope, withScope } from "./scope.js";
import { ACCOUNT, paragraph, WORDS } from "./state.js";

/**
 * Peak memory over the run allowed above VmRSS after the warm-up, in MiB. The run's own working
 * set is 24 requests in flight with bodies up to 64 KiB, and one argon2id derivation (64 MiB)
 * at a time: +40 MiB in the short form on 2 cores. The bound is generous, for GC timing; a leak
 * of 2 KiB per request breaks it over the long form's 100,000 requests.
 */
export const RUN_BOUND_MIB = 192;
/**
 * Peak memory allowed above VmRSS before the KDF burst, in MiB: one derivation's 64 MiB and half
 * as much again, what a daemon that runs derivations one at a time may need. Run side by side,
 * 24 of them climb by about 35 MiB a second on 2 cores (to 809 MiB).
 */
export const BURST_BOUND_MIB = 96;
/** The longest the KDF burst is watched: 3 to 6 times what an unbounded daemon takes to break it. */
const BURST_WINDOW_MS = 6_000;
/** The request size limit the fuzzed daemon runs with (small, so oversize bodies stay cheap). */
const MAX_REQUEST_BYTES = 64 * 1024;
const ALLOWED = "https://allowed.example.com";
/** Methods the web token may call (docs/security.md, "The three credentials"). */
const WEB_SCOPE = new Set([
  "GetInfo",
  "GetDocument",
  "ListDocuments",
  "ListDocumentChanges",
  "WatchDocuments",
  "GetCapability",
  "ListCapabilities",
  "ListCapabilitiesForDelegate",
]);
/** Requests in flight at once, and calls of the KDF burst. */
const CONCURRENCY = 24;
const H2_SESSIONS = 4;

type Auth = "master" | "web" | "wrong" | "none";
type Transport = "h1" | "h2" | "raw";

/** One generated request. */
interface FuzzCase {
  readonly index: number;
  readonly transport: Transport;
  readonly auth: Auth;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
  /** The RPC the path names, when it names one. */
  readonly rpc?: DescMethod;
  readonly framing?: Framing;
  /** Raw transport: the bytes on the wire. */
  readonly raw?: Uint8Array;
  readonly timeoutMs: number;
  /** The request carried a Connect or gRPC deadline of its own. */
  readonly deadline: boolean;
}

/** What the generator needs to know about the daemon under test. */
interface Target {
  readonly d: TestDaemon;
  readonly master: string;
  readonly web: string;
  readonly files: string;
  readonly seededVersion: string;
}

const gzipBomb = gzipSync(Buffer.alloc(8 * 1024 * 1024));

function mnemonicOf(rng: Rng): string[] {
  return entropyToMnemonic(rng.bytes(16), wordlist).split(" ");
}

/** A valid request of each method, with values from `rng`. */
function sampleOf(
  m: DescMethod,
  rng: Rng,
  t: Target,
  i: number,
): MessageInitShape<DescMethod["input"]> {
  const name = `fz-${rng.int(64)}`;
  const path = `/fz/${rng.int(256)}`;
  switch (m.name) {
    case "GenMnemonic":
      return { wordCount: rng.pick([0, 12, 24, 13, -1, 1_000_000]) };
    case "RegisterKey":
      return { mnemonic: mnemonicOf(rng), name, passphrase: rng.chance(0.2) ? "p" : "" };
    case "ImportKey":
      return {
        filePath: join(t.files, "main.hmkey.json"),
        password: "pw",
        name: `imp-${rng.int(64)}`,
      };
    case "ExportKey":
      return { name: "main", filePath: join(t.files, `exp-${i}.json`), password: "pw" };
    case "UpdateKey":
      return { currentName: name, newName: `fz-${rng.int(64)}` };
    case "DeleteKey":
      return { name };
    case "SignData":
      return { signingKeyName: rng.chance(0.8) ? "main" : name, data: rng.bytes(rng.int(64)) };
    case "StoreBlobs":
      return { blobs: [{ cid: rng.chance(0.5) ? "" : "bafyreib", data: rng.bytes(rng.int(128)) }] };
    case "PairOrigin":
      return { origin: `https://fz${rng.int(128)}.example`, label: rng.string(rng.int(8), "abc ") };
    case "UnpairOrigin":
      return { origin: `https://fz${rng.int(128)}.example` };
    case "CreateDocumentChange": {
      const id = `b${rng.int(1_000_000)}`;
      return {
        account: ACCOUNT,
        path,
        signingKeyName: "main",
        baseVersion: rng.chance(0.2) ? t.seededVersion : "",
        changes: [
          { op: { case: "setMetadata", value: { key: "title", value: rng.string(8, "xyz") } } },
          { op: { case: "moveBlock", value: { blockId: id, parent: "", leftSibling: "" } } },
          {
            op: {
              case: "replaceBlock",
              value: { id, type: "Paragraph", text: rng.string(16, "ab ") },
            },
          },
        ],
      };
    }
    case "GetDocument":
      return {
        account: ACCOUNT,
        path: rng.chance(0.5) ? "/seeded" : path,
        version: rng.chance(0.3) ? t.seededVersion : "",
      };
    case "ListDocuments":
      return { account: ACCOUNT, pageSize: rng.int(50) };
    case "ListDocumentChanges":
      return { account: ACCOUNT, path: "/seeded", pageSize: rng.int(50) };
    case "DeleteDocument":
      return { account: ACCOUNT, path, signingKeyName: "main" };
    case "WatchDocuments":
      return { account: ACCOUNT };
    case "CreateCapability":
      return {
        signingKeyName: "main",
        delegate: ACCOUNT,
        account: ACCOUNT,
        path: "/seeded",
        role: rng.int(4),
      };
    case "GetCapability":
      return { id: "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy" };
    case "ListCapabilities":
      return { account: ACCOUNT, path: "/seeded" };
    case "ListCapabilitiesForDelegate":
      return { delegate: ACCOUNT };
    default:
      return {};
  }
}

/** Random JSON values of awkward kinds. */
function awkwardJson(rng: Rng): unknown {
  switch (rng.int(14)) {
    case 0:
      return null;
    case 1:
      return rng.pick([0, -1, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 1.5, 1e308]);
    case 2:
      return "x".repeat(rng.pick([0, 1, 300, 70_000]));
    case 3:
      return [];
    case 4:
      return {};
    case 5:
      return rng.chance(0.5);
    case 6:
      return "\u0000\ud800\uffff";
    case 7:
      return "NaN";
    case 8:
      return "-Infinity";
    case 9:
      return "1e400";
    case 10:
      return [[[[{}]]]];
    case 11:
      return "AAAA====";
    case 12:
      return rng.string(rng.int(40), "abcdefghijklmnopqrstuvwxyz/.-_%\\\"'");
    default:
      return { "@type": "type.googleapis.com/x", value: "AAAA" };
  }
}

/** A mutated JSON body. */
function mutateJson(text: string, rng: Rng): string {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(text) as Record<string, unknown>;
  } catch {
    obj = {};
  }
  const keys = Object.keys(obj);
  switch (rng.int(9)) {
    case 0: {
      const k = keys.length > 0 ? rng.pick(keys) : "x";
      obj[k] = awkwardJson(rng);
      return JSON.stringify(obj);
    }
    case 1:
      obj[rng.pick(["unknownField", "__proto__", "constructor", "", "\u0000"])] = awkwardJson(rng);
      return JSON.stringify(obj);
    case 2: {
      const depth = rng.pick([64, 1_000, 20_000, 100_000]);
      return `${"[".repeat(depth)}${"]".repeat(depth)}`;
    }
    case 3:
      return text.slice(0, rng.int(text.length + 1));
    case 4: {
      const at = rng.int(text.length + 1);
      return `${text.slice(0, at)}${rng.string(rng.range(1, 4), '{}[]",:\\\u0000x')}${text.slice(at)}`;
    }
    case 5:
      return rng.pick(["[]", '"s"', "1", "null", "true", "", " ", "{}{}"]);
    case 6:
      return keys.length > 0 ? `{${JSON.stringify(rng.pick(keys))}:1,${text.slice(1)}` : "{}";
    case 7: {
      const depth = rng.pick([64, 5_000, 50_000]);
      return `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    }
    default:
      return JSON.stringify(Object.fromEntries(keys.map((k) => [k, awkwardJson(rng)])));
  }
}

/** A mutated protobuf body. */
function mutateProto(bytes: Uint8Array, rng: Rng): Uint8Array {
  const b = Uint8Array.from(bytes);
  switch (rng.int(8)) {
    case 0:
      for (let n = rng.range(1, 4); n > 0 && b.length > 0; n--)
        b[rng.int(b.length)] = rng.next() & 0xff;
      return b;
    case 1:
      return b.subarray(0, rng.int(b.length + 1));
    case 2:
      return Buffer.concat([b, rng.bytes(rng.range(1, 32))]);
    case 3:
      // A field with a random tag and wire type, then junk.
      return Buffer.concat([
        b,
        Uint8Array.of(rng.next() & 0xff, rng.next() & 0xff),
        rng.bytes(rng.int(8)),
      ]);
    case 4:
      // A length-delimited field that claims far more than it has.
      return Buffer.concat([b, Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f), rng.bytes(4)]);
    case 5:
      // An overlong varint.
      return Buffer.concat([b, Uint8Array.of(0x08), Buffer.alloc(11, 0xff)]);
    case 6: {
      // Deep nesting of length-delimited field 1.
      const depth = rng.pick([32, 1_000, 10_000]);
      let inner: Uint8Array = Uint8Array.of();
      for (let i = 0; i < depth && inner.length < MAX_REQUEST_BYTES / 2; i++) {
        inner = Buffer.concat([Uint8Array.of(0x22), varint(inner.length), inner]);
      }
      return Buffer.concat([b, inner]);
    }
    default:
      return rng.bytes(rng.int(256));
  }
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** Framing of a message payload, possibly with mangled envelope fields. */
function frame(framing: Framing, payload: Uint8Array, rng: Rng): Uint8Array {
  if (framing === "connect-json" || framing === "connect-proto") return payload;
  const mangle = rng.chance(0.15);
  const flags = mangle ? rng.pick([0x01, 0x02, 0x80, 0xff, 0x03]) : 0;
  const declared =
    mangle && rng.chance(0.5)
      ? rng.pick([0, payload.length + 1, 0xffffffff, 2 ** 20])
      : payload.length;
  let out: Uint8Array = envelope(flags, payload, declared);
  if (rng.chance(0.05)) out = Buffer.concat([out, envelope(0, payload)]);
  if (rng.chance(0.03)) out = Buffer.concat([out, Uint8Array.of(0, 0, 0)]);
  if (framing === "connect-stream-json" || framing === "connect-stream-proto") {
    // A request stream may end with an end-stream message; an odd one probes the parser.
    if (rng.chance(0.05))
      out = Buffer.concat([
        out,
        envelope(0x02, Buffer.from(rng.pick(["{}", "x", '{"error":{}}']))),
      ]);
  }
  if (framing === "grpc-web-text") return Buffer.from(Buffer.from(out).toString("base64"));
  return out;
}

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-";
const PRINTABLE =
  " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/** Builds request `index` of the run from `seed`. */
function generate(seed: number, index: number, t: Target): FuzzCase {
  const rng = Rng.derive(seed, index);
  const transport: Transport = rng.chance(0.1) ? "raw" : rng.chance(0.4) ? "h2" : "h1";
  const port = transport === "h2" ? t.d.grpcPort : t.d.httpPort;
  const a = rng.float();
  const auth: Auth = a < 0.45 ? "master" : a < 0.6 ? "web" : a < 0.8 ? "wrong" : "none";
  const headers: Record<string, string> = {};

  // Target: mostly an RPC, else the server's own paths or junk.
  const pick = rng.float();
  let rpc: DescMethod | undefined;
  let path: string;
  if (pick < 0.78) {
    const m = rng.pick(METHODS);
    rpc = m.method;
    path = m.path;
  } else if (pick < 0.86) path = "/health";
  else if (pick < 0.9) path = "/metrics";
  else if (pick < 0.93)
    path = `/ipfs/${rng.pick(["bafkqaaa", "bafyreib", "x", "", "..%2f"])}${rng.string(rng.int(8), TOKEN_CHARS)}`;
  else path = `/${rng.string(rng.int(24), "abcdefghij./%-_~:@!$&'()*+,;=")}`;
  if (rng.chance(0.06)) {
    path = rng.pick([
      (p: string) => p.toUpperCase(),
      (p: string) => `${p}/`,
      (p: string) => `/${p}`,
      (p: string) => p.replace("/", "/%2F"),
      (p: string) => `${p}?${rng.string(rng.int(20), "ab=&%")}`,
      (p: string) => `${p}${"x".repeat(rng.pick([1000, 9000]))}`,
      (p: string) => `${p};x`,
    ])(path);
    if (!path.startsWith("/")) path = `/${path}`;
  }

  // ExportKey with the full token writes a file wherever `file_path` says, and the daemon may run
  // as root: its message is never mutated (the envelope and headers still are), so the path
  // stays inside the run's temp dir.
  const writesFiles = rpc?.name === "ExportKey" && auth === "master";

  // Framing and body.
  let framing: Framing | undefined;
  let body: Uint8Array | undefined;
  let method = "POST";
  if (rpc !== undefined) {
    const streaming = rpc.methodKind === "server_streaming";
    const f = rng.float();
    if (transport === "h2" && f < 0.3) framing = "grpc";
    else if (f < 0.12) framing = "grpc-web";
    else if (f < 0.16) framing = "grpc-web-text";
    else if (f < 0.2) framing = "grpc";
    else if (streaming) framing = rng.chance(0.5) ? "connect-stream-json" : "connect-stream-proto";
    else framing = rng.chance(0.6) ? "connect-json" : "connect-proto";
    const msg = create(rpc.input, sampleOf(rpc, rng, t, index));
    const json = framing.endsWith("json");
    let payload: Uint8Array = json
      ? Buffer.from(toJsonString(rpc.input, msg))
      : toBinary(rpc.input, msg);
    if (rng.chance(0.6) && !writesFiles) {
      payload = json
        ? Buffer.from(mutateJson(Buffer.from(payload).toString(), rng))
        : mutateProto(payload, rng);
    }
    body = frame(framing, payload, rng);
    headers["content-type"] = CONTENT_TYPE[framing];
    if (framing === "grpc" || rng.chance(0.05)) headers.te = "trailers";
    if (framing.startsWith("connect") && rng.chance(0.7))
      headers["connect-protocol-version"] = rng.chance(0.95) ? "1" : rng.pick(["2", "", "x"]);
    if (framing.startsWith("grpc-web") && rng.chance(0.5)) headers["x-grpc-web"] = "1";
    if (rng.chance(0.04)) {
      // A Connect GET: the message in the query.
      method = "GET";
      const q = json
        ? encodeURIComponent(Buffer.from(payload).toString())
        : Buffer.from(payload).toString("base64url");
      path = `${path}?connect=v1&encoding=${json ? "json" : "proto"}&message=${q}${json ? "" : "&base64=1"}`;
      body = undefined;
    }
  } else {
    method = rng.pick([
      "GET",
      "GET",
      "GET",
      "HEAD",
      "POST",
      "PUT",
      "DELETE",
      "OPTIONS",
      "PATCH",
      "TRACE",
      "PROPFIND",
      "X",
    ]);
    if (method !== "GET" && method !== "HEAD" && rng.chance(0.5)) body = rng.bytes(rng.int(512));
  }
  if (rng.chance(0.03)) method = rng.pick(["GET", "PUT", "DELETE", "OPTIONS", "PATCH"]);

  // Whole-body replacements (none for a file-writing call, see `writesFiles`).
  const r = writesFiles ? 1 : rng.float();
  if (r < 0.02) body = new Uint8Array();
  else if (r < 0.04) body = rng.bytes(rng.int(2048));
  else if (r < 0.05) body = rng.bytes(MAX_REQUEST_BYTES + rng.range(1, 4096));
  else if (r < 0.07 && body !== undefined) {
    const enc = rng.pick(["gzip", "br", "deflate", "zstd", "identity", "x"]);
    const bomb = rng.chance(0.5);
    const compressed = enc === "gzip" ? (bomb ? gzipBomb : gzipSync(body)) : rng.bytes(rng.int(64));
    if (framing === "grpc" || framing === "grpc-web") {
      headers["grpc-encoding"] = enc;
      body = envelope(rng.chance(0.9) ? 1 : 0, compressed);
    } else if (framing === "connect-stream-json" || framing === "connect-stream-proto") {
      headers["connect-content-encoding"] = enc;
      body = envelope(rng.chance(0.9) ? 1 : 0, compressed);
    } else {
      headers["content-encoding"] = enc;
      body = compressed;
    }
  }

  // Deadlines.
  let deadline = false;
  if (rng.chance(0.08)) {
    deadline = true;
    if (framing === "grpc" || framing?.startsWith("grpc-web")) {
      headers["grpc-timeout"] = rng.pick([
        "1n",
        "1m",
        "5m",
        "10S",
        "1H",
        "99999999H",
        "123456789S",
        "x",
        "",
        "-1m",
      ]);
    } else {
      headers["connect-timeout-ms"] = rng.pick([
        "0",
        "1",
        "5",
        "-5",
        "abc",
        "99999999999",
        "9999999999",
        "",
      ]);
    }
  }

  // Credentials.
  if (auth === "master") headers.authorization = `Bearer ${t.master}`;
  else if (auth === "web") headers.authorization = `Bearer ${t.web}`;
  else if (auth === "wrong") {
    const wrong = rng.pick([
      () => ({ authorization: `Bearer ${nearMiss(t.master)}` }),
      () => ({ authorization: `Bearer ${randomLike(rng)}` }),
      () => ({ authorization: `Basic ${Buffer.from(`x:${t.master}`).toString("base64")}` }),
      () => ({ authorization: t.master }),
      () => ({ authorization: `Bearer ${t.master}${t.master}` }),
      () => ({ authorization: "Bearer " }),
      () => ({ cookie: `token=${t.master}` }),
      () => ({ "x-auth-token": t.master }),
    ])();
    Object.assign(headers, wrong);
    if (rng.chance(0.2)) path = `${path}${path.includes("?") ? "&" : "?"}token=${t.master}`;
  }

  // Host, Origin and the rest.
  const hostValue = rng.chance(0.95)
    ? rng.pick([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`])
    : rng.pick([`evil.example:${port}`, "localhost", `127.0.0.1:${port + 1}`, `0.0.0.0:${port}`]);
  if (transport === "h2") headers[":authority"] = hostValue;
  else if (rng.chance(0.99)) headers.host = hostValue;
  const o = rng.float();
  if (o < 0.08) headers.origin = "null";
  else if (o < 0.16) headers.origin = ALLOWED;
  else if (o < 0.2)
    headers.origin = rng.pick(["https://evil.example", `${ALLOWED}.evil.com`, "app://seed", "x"]);
  if (headers.origin !== undefined && method === "OPTIONS") {
    headers["access-control-request-method"] = rng.pick(["POST", "GET", "DELETE"]);
    if (rng.chance(0.5)) headers["access-control-request-headers"] = "authorization,content-type";
  }
  if (rng.chance(0.05))
    headers["x-seed-principal"] = rng.chance(0.5) ? ACCOUNT : `z6Mk${randomLike(rng)}`;
  if (rng.chance(0.05))
    headers["x-seed-principal-proof"] = Buffer.from(rng.bytes(rng.int(200))).toString("base64url");
  if (rng.chance(0.05)) {
    headers["x-seed-capabilities"] = rng.chance(0.5)
      ? Buffer.from(Uint8Array.of(0x81, 0x58, 0x20, ...rng.bytes(32))).toString("base64url")
      : Buffer.from(rng.bytes(rng.int(300))).toString(rng.chance(0.5) ? "base64url" : "hex");
  }
  if (rng.chance(0.05)) headers["accept-encoding"] = rng.pick(["gzip", "br", "*", "x"]);
  for (let n = rng.chance(0.2) ? rng.range(1, 4) : 0; n > 0; n--) {
    const value = rng.string(rng.chance(0.05) ? rng.pick([4000, 9000]) : rng.int(40), PRINTABLE);
    headers[`x-${rng.string(rng.range(1, 12), TOKEN_CHARS)}`] = value.trim();
  }

  const stream = rpc?.methodKind === "server_streaming";
  const base = { index, transport, auth, method, path, headers, body, rpc, framing, deadline };
  if (transport !== "raw") return { ...base, timeoutMs: stream ? 400 : 10_000 };
  return { ...base, raw: rawBytes(method, path, headers, body, rng), timeoutMs: 2_000 };
}

function randomLike(rng: Rng): string {
  return rng.string(43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
}

/** The HTTP/1.1 bytes of a request, then corrupted in one of several ways. */
function rawBytes(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  rng: Rng,
): Uint8Array {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  const b = body ?? new Uint8Array();
  const kind = rng.int(12);
  if (kind === 0) lines.push("Transfer-Encoding: chunked");
  else if (kind === 1)
    lines.push(
      `Content-Length: ${rng.pick(["-1", "abc", "99999999999999999999", " 5", "0x10", "1e3"])}`,
    );
  else if (kind === 2) lines.push(`Content-Length: ${b.length + rng.range(1, 100)}`);
  else if (kind === 3) lines.push(`Content-Length: ${b.length}`, `Content-Length: ${b.length + 1}`);
  else lines.push(`Content-Length: ${b.length}`);
  lines.push("Connection: close");
  let head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  let payload: Uint8Array = b;
  if (kind === 0) {
    payload = Buffer.from(
      rng.pick([
        `${b.length.toString(16)}\r\n${Buffer.from(b).toString("latin1")}\r\n0\r\n\r\n`,
        "zz\r\nabc\r\n0\r\n\r\n",
        "ffffffffffffffff\r\nabc\r\n",
        "3;ext=1\r\nabc\r\n0\r\n\r\n",
        "3\r\nabc",
      ]),
      "latin1",
    );
  }
  const h = Uint8Array.from(head);
  const edit = (f: (text: string) => string) => Buffer.from(f(head.toString("latin1")), "latin1");
  switch (kind) {
    case 4:
      for (let n = rng.range(1, 3); n > 0; n--) h[rng.int(h.length)] = rng.next() & 0xff;
      head = Buffer.from(h);
      break;
    case 5:
      head = edit((x) => x.replaceAll("\r\n", "\n"));
      break;
    case 6:
      head = edit((x) => x.replace("\r\n", `\r\nX-Fold: a\r\n ${rng.string(8, "ab")}\r\n`));
      break;
    case 7: {
      const version = rng.pick(["HTTP/1.0", "HTTP/2.0", "HTTP/1.7", "HTTP/0.9", "HTTPS/1.1", ""]);
      head = edit((x) => x.replace("HTTP/1.1", version));
      break;
    }
    case 8: {
      const bad = `\r\nX-Bad${rng.pick([" ", "\u0000", "(", ""])}: v\u0001\r\nNoColon\r\n`;
      head = edit((x) => x.replace("\r\n", bad));
      break;
    }
    case 9: {
      // Two requests in one write; the second without the token.
      const second = Buffer.from(
        `GET /metrics HTTP/1.1\r\nHost: ${headers.host ?? ""}\r\n\r\n`,
        "latin1",
      );
      return Buffer.concat([head, payload, second]);
    }
    default:
      break;
  }
  return Buffer.concat([head, payload]);
}

/** How an answer is judged. */
interface Verdict {
  readonly outcome: string;
  readonly fault?: string;
  readonly unauthorisedSuccess?: string;
  readonly scopeEscape?: string;
  readonly hang?: boolean;
}

/** Encodings the daemon decompresses (connect-node's defaults), as docs/security.md lists them. */
const SUPPORTED_ENCODINGS = new Set(["gzip", "br", "identity"]);

/** True when a request names a body compression the daemon does not support. */
function unsupportedEncoding(headers: Readonly<Record<string, string | undefined>>): boolean {
  return ["content-encoding", "connect-content-encoding", "grpc-encoding"].some((h) => {
    const v = headers[h];
    return v !== undefined && !SUPPORTED_ENCODINGS.has(v.trim().toLowerCase());
  });
}

function pathOnly(path: string): string {
  const q = path.indexOf("?");
  return q === -1 ? path : path.slice(0, q);
}

function judge(c: FuzzCase, a: Answer): Verdict {
  const outcome = outcomeOf(a, c.rpc === undefined ? undefined : c.framing);
  const v: { -readonly [K in keyof Verdict]: Verdict[K] } = { outcome };
  if (a.kind === "timeout") {
    // A unary request sent whole, with no deadline of its own, should always be answered.
    const complete = c.transport !== "raw" && c.rpc?.methodKind !== "server_streaming";
    if (complete) v.hang = true;
    return v;
  }
  if (a.kind !== "response") return v;
  const status = a.status;
  if (status >= 500 || SERVER_FAULT_CODES.has(outcome)) {
    v.fault = `${status} ${outcome}`;
  }
  const ok2xx = status >= 200 && status < 300;
  const rpcOk = outcome === "ok";
  const success = c.rpc === undefined || c.framing === undefined ? ok2xx : ok2xx && rpcOk;
  // A preflight needs no token (docs/security.md): its 204 carries headers only.
  const preflight =
    c.method === "OPTIONS" &&
    c.headers["access-control-request-method"] !== undefined &&
    status === 204 &&
    a.body.length === 0;
  if (success && (c.auth === "none" || c.auth === "wrong")) {
    const exemptHealth =
      c.method === "GET" &&
      pathOnly(c.path) === "/health" &&
      a.body.toString() === '{"status":"ok"}';
    // A raw request's bytes may have been mangled into a different, tokenless one: only the
    // health answer's body is exempt there.
    const rawHealth = c.transport === "raw" && a.body.toString() === '{"status":"ok"}';
    if (!exemptHealth && !preflight && !rawHealth) v.unauthorisedSuccess = `${status} ${outcome}`;
  }
  if (success && !preflight && c.auth === "web") {
    if (c.rpc !== undefined && !WEB_SCOPE.has(c.rpc.name)) v.scopeEscape = `${status} ${outcome}`;
    if (pathOnly(c.path) === "/metrics") v.scopeEscape = `${status} metrics`;
  }
  return v;
}

/** A finding's description: the request (tokens named, not shown) and the answer. */
function describe(c: FuzzCase, a: Answer, seed: number, t: Target): string {
  const redact = (s: string) => s.replaceAll(t.master, "<token>").replaceAll(t.web, "<web-token>");
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, redact(v)]));
  const answer =
    a.kind === "response"
      ? `${a.status} ${JSON.stringify({ ...a.headers, ...a.trailers })} ${show(a.body, 200)}`
      : a.kind;
  const sent =
    c.raw === undefined
      ? show(c.body ?? "", 200)
      : show(redact(Buffer.from(c.raw).toString("latin1")), 300);
  return `seed ${seed} #${c.index} ${c.transport} ${c.auth} ${c.method} ${redact(c.path).slice(0, 120)} framing=${c.framing ?? "-"} headers=${JSON.stringify(headers).slice(0, 400)} body=${sent} -> ${answer}`;
}

/** Requests that broke one invariant: how many, of which kinds, and the first few in full. */
class Findings {
  n = 0;
  readonly #kinds = new Map<string, number>();
  readonly #kept: string[] = [];

  add(kind: string, describe: () => string): void {
    this.n++;
    this.#kinds.set(kind, (this.#kinds.get(kind) ?? 0) + 1);
    if (this.#kept.length < KEEP) this.#kept.push(describe());
  }

  /** A check that holds when there are none. */
  check(id: string, pass: string, what: string): Check {
    if (this.n === 0) return { id, ok: true, detail: pass };
    const kinds = [...this.#kinds].map(([k, n]) => `${k} ×${n}`).join("; ");
    return { id, ok: false, detail: `${this.n} ${what}: ${kinds}\n${indent(this.#kept)}` };
  }
}

/** The peak memory of a run (VmHWM) over VmRSS after its warm-up, in MiB. */
interface Growth {
  readonly base: number;
  readonly peak: number;
  /** How long it was watched, in ms (the burst only). */
  readonly watchedMs?: number;
  /** True when VmHWM was reset at the base, so the peak is that of the run after it. */
  readonly exact: boolean;
}

function growthOf(g: Growth | undefined): number | undefined {
  return g === undefined ? undefined : g.peak - g.base;
}

function showGrowth(g: Growth | undefined, bound: number): string {
  if (g === undefined) return "not measured (no /proc)";
  const watched = g.watchedMs === undefined ? "" : ` over ${(g.watchedMs / 1000).toFixed(1)} s`;
  return `VmRSS ${g.base} MiB → peak ${g.peak} MiB${watched} (+${g.peak - g.base} MiB, bound +${bound} MiB${g.exact ? "" : ", VmHWM not reset: the peak may be older"})`;
}

/**
 * The KDF burst: {@link CONCURRENCY} valid ImportKey calls of the key file at once, each an
 * argon2id derivation of 64 MiB. It watches the daemon's peak memory until every call is
 * answered, the peak passes {@link BURST_BOUND_MIB} (a finding, no need to wait) or
 * {@link BURST_WINDOW_MS} pass. The calls still running are cut by the SIGKILL that follows.
 */
async function kdfBurst(t: Target): Promise<{ growth?: Growth; outcomes: Map<string, number> }> {
  const pid = t.d.proc.pid;
  const admin = clientFor(Daemon, "connect", t.d, t.master);
  const outcomes = new Map<string, number>();
  let answered = 0;
  const before = memoryKiB(pid);
  const exact = resetPeak(pid);
  for (let i = 0; i < CONCURRENCY; i++) {
    const call = admin.importKey({
      filePath: join(t.files, "main.hmkey.json"),
      password: "pw",
      name: `burst-${i}`,
    });
    void codeOf(call).then((code) => {
      const name = code === "ok" ? "ok" : codeName(code);
      outcomes.set(name, (outcomes.get(name) ?? 0) + 1);
      answered++;
    });
  }
  if (before === undefined) return { outcomes };
  const base = before.rss >> 10;
  let peak = base;
  const t0 = performance.now();
  while (answered < CONCURRENCY && performance.now() - t0 < BURST_WINDOW_MS) {
    await sleep(50);
    const m = memoryKiB(pid);
    if (m === undefined) break;
    peak = Math.max(peak, (exact ? m.hwm : m.rss) >> 10);
    if (peak - base > BURST_BOUND_MIB) break;
  }
  return { growth: { base, peak, exact, watchedMs: performance.now() - t0 }, outcomes };
}

/** Runs `opts.fuzz` requests, then the KDF burst. */
export async function fuzzScenario(opts: RunOptions): Promise<ScenarioResult> {
  return withScope("fuzz", (scope) => fuzzIn(scope, opts));
}

async function fuzzIn(scope: Scope, opts: RunOptions): Promise<ScenarioResult> {
  const files = join(scope.dir, "files");
  const master = randomToken();
  const web = randomToken();
  const d = await scope.daemon({
    token: master,
    env: { SEED_DAEMON_WEB_TOKEN: web },
    args: ["--cors-origin", ALLOWED, "--max-request-bytes", String(MAX_REQUEST_BYTES)],
  });
  mkdirSync(files, { mode: 0o700 });
  const admin = clientFor(Daemon, "connect", d, master);
  const docs = clientFor(Documents, "connect", d, master);
  const ensureMain = () => codeOf(admin.registerKey({ name: "main", mnemonic: WORDS }));
  await ensureMain();
  await admin.exportKey({ name: "main", filePath: join(files, "main.hmkey.json"), password: "pw" });
  const seeded = await docs.createDocumentChange({
    account: ACCOUNT,
    path: "/seeded",
    signingKeyName: "main",
    changes: paragraph("b", "seeded", "", "seeded"),
  });
  const t: Target = { d, master, web, files, seededVersion: seeded.version };

  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const sessions = h2Sessions(d.grpcPort, H2_SESSIONS);
  scope.defer(() => {
    sessions.destroy();
    agent.destroy();
  });

  const counts = { resets: 0, timeouts: 0, notSent: 0, documented501: 0 };
  const outcomes = new Map<string, number>();
  // Server faults in two classes: `501` (Connect's `unimplemented`) and the rest. A `501` is
  // documented, as the protocols require it, only for a body compressed with an encoding the
  // daemon does not support (docs/security.md, "Error messages"); any other one is a fault.
  const found = {
    unimplemented: new Findings(),
    fault: new Findings(),
    unauthorised: new Findings(),
    scope: new Findings(),
    hang: new Findings(),
  };
  const inFlight = new Map<number, FuzzCase>();
  /** Time spent waiting on answers, by RPC (or first path segment): where the run goes. */
  const timeByTarget = new Map<string, { n: number; ms: number }>();
  let sent = 0;
  let next = 0;
  let dead: string | undefined;
  let run: Growth | undefined;
  const warmup = Math.min(500, Math.floor(opts.fuzz / 10));
  /** VmRSS in MiB every tenth of the run: a leak climbs, a working set levels off. */
  const rssSamples: number[] = [];
  const sampleEvery = Math.max(1, Math.floor(opts.fuzz / 10));
  const pid = d.proc.pid;
  const started = Date.now();

  const one = async (c: FuzzCase) => {
    const t0 = performance.now();
    const r = {
      method: c.method,
      path: c.path,
      headers: c.headers,
      body: c.body,
      timeoutMs: c.timeoutMs,
    };
    const a: Answer =
      c.transport === "h1"
        ? await sendH1(d.httpPort, agent, r)
        : c.transport === "h2"
          ? await sendH2(sessions.get(c.index), r)
          : await rawExchange(d.httpPort, c.raw ?? new Uint8Array(), c.timeoutMs).then(
              (o): Answer =>
                o.kind === "response"
                  ? { ...o, trailers: {}, body: Buffer.from(o.body, "latin1") }
                  : o.kind === "reset"
                    ? { kind: "reset", error: "closed" }
                    : o,
            );
    if (a.kind === "reset" && a.error.startsWith("not sent")) {
      counts.notSent++;
      return;
    }
    sent++;
    const key = c.rpc?.name ?? pathOnly(c.path).split("/")[1] ?? "";
    const spent = timeByTarget.get(key) ?? { n: 0, ms: 0 };
    spent.n++;
    spent.ms += performance.now() - t0;
    timeByTarget.set(key, spent);
    const v = judge(c, a);
    const full = () => describe(c, a, opts.seed, t);
    if (process.env.RELIABILITY_SHOW_OUTCOME === v.outcome) opts.log(full());
    outcomes.set(v.outcome, (outcomes.get(v.outcome) ?? 0) + 1);
    if (a.kind === "reset") counts.resets++;
    if (a.kind === "timeout") counts.timeouts++;
    const target = c.rpc?.name ?? pathOnly(c.path).slice(0, 30);
    if (v.fault !== undefined) {
      const is501 = a.kind === "response" && a.status === 501;
      if (is501 && unsupportedEncoding(c.headers)) counts.documented501++;
      else {
        (is501 ? found.unimplemented : found.fault).add(
          `${v.fault} on ${target} (${c.framing ?? c.transport}${c.deadline ? ", with a client deadline" : ""})`,
          full,
        );
      }
    }
    if (v.unauthorisedSuccess !== undefined)
      found.unauthorised.add(`${v.unauthorisedSuccess} on ${target}`, full);
    if (v.scopeEscape !== undefined) found.scope.add(`${v.scopeEscape} on ${target}`, full);
    if (v.hang) found.hang.add(target, full);
  };

  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < opts.fuzz && dead === undefined) {
        const i = next++;
        const c = generate(opts.seed, i, t);
        inFlight.set(i, c);
        await one(c);
        inFlight.delete(i);
        if (i === warmup) {
          const m = memoryKiB(pid);
          if (m !== undefined)
            run = { base: m.rss >> 10, peak: m.rss >> 10, exact: resetPeak(pid) };
        }
        if (i % sampleEvery === 0) rssSamples.push((memoryKiB(pid)?.rss ?? 0) >> 10);
        if (i > 0 && i % 1000 === 0) {
          if (
            d.proc.exitCode !== null ||
            d.proc.signalCode !== null ||
            !(await healthy(d.httpPort))
          ) {
            dead ??= `after request #${i}: exit ${d.proc.exitCode ?? d.proc.signalCode}`;
          }
          // Deleted and renamed keys come back, so signing paths keep being reached.
          if (i % 5000 === 0) await ensureMain();
          if (i % 10_000 === 0) {
            opts.log(`fuzz: ${i}/${opts.fuzz}, ${found.fault.n + found.unimplemented.n} faults`);
          }
        }
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const alive = d.proc.exitCode === null && d.proc.signalCode === null;
  const answers = alive && (await healthy(d.httpPort));
  const end = memoryKiB(pid);
  if (run !== undefined && end !== undefined) run = { ...run, peak: end.hwm >> 10 };
  const burst = alive ? await kdfBurst(t) : { outcomes: new Map<string, number>() };
  // The burst's queued derivations would hold a SIGTERM stop for its whole drain window.
  d.proc.kill("SIGKILL");
  const inFlightAtDeath =
    dead === undefined
      ? []
      : [...inFlight.values()].map((c) =>
          describe(c, { kind: "reset", error: "daemon gone" }, opts.seed, t),
        );
  const log = d.output();

  const runGrowth = growthOf(run);
  const burstGrowth = growthOf(burst.growth);
  const rssOk =
    runGrowth !== undefined &&
    runGrowth <= RUN_BOUND_MIB &&
    burstGrowth !== undefined &&
    burstGrowth <= BURST_BOUND_MIB;
  const burstOutcomes = [...burst.outcomes].map(([k, n]) => `${k} ×${n}`).join(", ");
  const fine = alive && answers && dead === undefined;
  const checks: Check[] = [
    {
      id: "fuzz.no-crash",
      ok: fine,
      detail: fine
        ? "the daemon is alive and answers /health"
        : `the daemon died or stopped answering ${dead ?? ""}; in flight:\n${indent(inFlightAtDeath)}\n      log tail: ${show(log.slice(-1500), 1500)}`,
    },
    found.fault.check(
      "fuzz.no-server-fault",
      "no 500/502/503/504, internal, unknown or data_loss",
      "server faults",
    ),
    found.unimplemented.check(
      "fuzz.no-501",
      "no 501 but for an unsupported compression",
      "server faults",
    ),
    found.unauthorised.check(
      "fuzz.no-unauthorised-success",
      "nothing but GET /health and preflights succeeded without the token",
      "successes without the token",
    ),
    found.scope.check(
      "fuzz.web-token-scope",
      "the web token succeeded only on its read RPCs",
      "web-token successes outside its scope",
    ),
    {
      id: "fuzz.rss-bounded",
      ok: rssOk,
      detail: `the run: ${showGrowth(run, RUN_BOUND_MIB)}; the KDF burst of ${CONCURRENCY} ImportKey: ${showGrowth(burst.growth, BURST_BOUND_MIB)}, ${burst.outcomes.size === 0 ? "no call answered yet" : `answered ${burstOutcomes}`}`,
    },
  ];
  const top = [...outcomes].sort((x, y) => y[1] - x[1]);
  const slowest = [...timeByTarget]
    .sort((x, y) => y[1].ms - x[1].ms)
    .slice(0, 6)
    .map(([k, v]) => `${k} ${(v.ms / v.n).toFixed(0)} ms avg ×${v.n}`);
  const hangs = found.hang.check("fuzz.hangs", "", "complete unary requests got no answer in 10 s");
  const details = [
    `  outcomes: ${top.map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `  most waited on: ${slowest.join(", ")}`,
    `  VmRSS every 10% of the run: ${rssSamples.join(", ")} MiB, then ${(end?.rss ?? 0) >> 10} MiB (VmHWM ${(end?.hwm ?? 0) >> 10} MiB)`,
    `  ${(sent / seconds).toFixed(0)} req/s over ${seconds.toFixed(0)} s; resets ${counts.resets}, timeouts ${counts.timeouts} (streams and raw bodies cut by the client), not sent by Node's client ${counts.notSent}; 501 for an unsupported compression (documented) ${counts.documented501}`,
    ...(hangs.ok ? [] : [`  note (not a failure): ${hangs.detail}`]),
  ];
  const faultCount = found.fault.n + found.unimplemented.n;
  return {
    scenario: "fuzz",
    requests: sent,
    failures: faultCount + found.unauthorised.n + found.scope.n + (fine ? 0 : 1) + (rssOk ? 0 : 1),
    figures: `seed ${opts.seed}; ${faultCount} 5xx-class, ${found.unauthorised.n} tokenless successes, ${found.scope.n} scope escapes, peak RSS +${runGrowth ?? "?"} MiB (KDF burst +${burstGrowth ?? "?"} MiB), ${(sent / seconds).toFixed(0)} req/s`,
    checks,
    details,
  };
}
