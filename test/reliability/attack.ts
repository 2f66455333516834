/**
 * Attack matrix: every class of refusal in docs/security.md, on both listeners, against the real
 * binary. Each case has the status the document gives it; where the document names none, the
 * case must be "refused": not `2xx`, and no data (an empty body or a bare `{code, message}`).
 * Every answer is also checked for the tokens in play, and refusals from a foreign Host or Origin
 * for `Access-Control-*` headers. After the matrix, nothing the cases tried may have changed
 * state, and the daemon's log may hold none of the secrets.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { generateMnemonic } from "../../src/identity/mnemonic.js";
import { clientFor } from "../helpers/clients.js";
import { ROOT, randomToken, type TestDaemon } from "../helpers/daemon.js";
import { envelope, GET_INFO_PATH, type RawRequest, rawHttp1, rawHttp2 } from "../helpers/http.js";
import { type RawH2Header, rawH2Exchange } from "../helpers/raw-h2.js";
import {
  type Check,
  check,
  nearMiss,
  type RunOptions,
  rawExchange,
  type ScenarioResult,
  show,
  within,
} from "./lib.js";
import { type Scope, withScope } from "./scope.js";

const SVC = "/com.seed.daemon.v1alpha.Daemon";
const ALLOWED = "https://allowed.example.com";
const PAIRED = "https://paired.example.com";
const ALLOWED_HOST = "seed.internal";
/**
 * The check of requests nghttp2 resets before the pipeline sees them (a repeated or malformed
 * Host on HTTP/2): docs/security.md documents the reset, and these cases expect it.
 */
const H2_LAYER = "h2 layer resets";
/** The compose service name docs/deployment.md allows in Docker. */
const DOCKER_HOST = "seed-daemon";

/** What a case saw. `headers` is empty when the exchange could not read them (raw h2c). */
interface Observed {
  readonly status: number | "reset" | "timeout";
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  /** Interim statuses before the answer (raw HTTP/1.1 only). */
  readonly interim?: readonly number[];
}

/** One case of the matrix. */
interface Case {
  readonly cls: string;
  readonly name: string;
  /**
   * The documented status, `reset` where the document says the HTTP/2 layer resets the stream,
   * `refused` (not 2xx, no data) where it names no status; for a control, the status it must get.
   */
  readonly expect: number | "refused" | "reset";
  /**
   * The check the case counts in, when not its class: keeps a known mismatch from hiding the
   * rest of its class.
   */
  readonly group?: string;
  /** A control shows the harness reaches the daemon; it is not a refusal. */
  readonly control?: boolean;
  /** A foreign Host or Origin: the answer must carry no `Access-Control-*` header. */
  readonly foreign?: boolean;
  /** The request asked for `100 Continue`: a refusal must come without one. */
  readonly noContinue?: boolean;
  readonly send: () => Promise<Observed>;
}

async function observe(p: Promise<{ status: number; headers: Observed["headers"]; body: string }>) {
  try {
    const r = await within(p, 5_000);
    if (r === "timeout") return { status: "timeout", headers: {}, body: "" } satisfies Observed;
    return { status: r.status, headers: r.headers, body: r.body } satisfies Observed;
  } catch {
    return { status: "reset", headers: {}, body: "" } satisfies Observed;
  }
}

/** A raw HTTP/1.1 exchange as an observation. */
async function observeRaw(port: number, bytes: string): Promise<Observed> {
  const o = await rawExchange(port, bytes);
  return o.kind === "response"
    ? { status: o.status, headers: o.headers, body: o.body, interim: o.interim ?? [] }
    : { status: o.kind, headers: {}, body: "" };
}

/** A raw h2c exchange as an observation (no headers: they are HPACK-encoded). */
async function observeRawH2(port: number, fields: RawH2Header[], body?: string): Promise<Observed> {
  const o = await rawH2Exchange(port, fields, body);
  return o.kind === "response"
    ? { status: o.status, headers: {}, body: o.body }
    : { status: o.kind, headers: {}, body: "" };
}

function isRefusalBody(body: string): boolean {
  const text = body.trim();
  if (text === "") return true;
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
    const keys = Object.keys(v);
    return (
      typeof (v as { code?: unknown }).code === "string" &&
      keys.every((k) => k === "code" || k === "message" || k === "details")
    );
  } catch {
    // A gRPC-web trailers-only body: one trailer frame, no message frame.
    return /^\x80/.test(text) && /grpc-status/.test(text);
  }
}

function hasCors(o: Observed): boolean {
  return Object.keys(o.headers).some((k) => k.toLowerCase().startsWith("access-control-"));
}

/**
 * What shows the daemon's insides: stack frames, source positions, library names, the install
 * path. (Paths the caller sent may be quoted back; keys.ts says so.)
 */
const INTERNALS = new RegExp(
  `\\n\\s+at |\\.[jt]s:\\d+|SqliteError|better-sqlite3|node:internal|${ROOT.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
);

/** A request to one listener (its port is the listener's). */
type Send = Omit<RawRequest, "port">;

/** One listener of a daemon, speaking its own protocol through Node's client. */
interface Listener {
  readonly name: "h1" | "h2";
  readonly port: number;
  send(r: Send): Promise<Observed>;
}

function listenersOf(x: TestDaemon): Listener[] {
  return [
    { name: "h1", port: x.httpPort, send: (r) => observe(rawHttp1({ ...r, port: x.httpPort })) },
    { name: "h2", port: x.grpcPort, send: (r) => observe(rawHttp2({ ...r, port: x.grpcPort })) },
  ];
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A POST with a JSON body unless `headers` name another content type. */
function post(
  path: string,
  headers: Record<string, string> = {},
  body: string | Uint8Array = "{}",
  host?: string,
): Send {
  return {
    method: "POST",
    path,
    headers: { "content-type": "application/json", ...headers },
    body,
    host,
  };
}

/** An OPTIONS request (a preflight when `headers` say so). */
function options(headers: Record<string, string>, host?: string, path = GET_INFO_PATH): Send {
  return { method: "OPTIONS", path, headers, host };
}

/** The headers of a browser's preflight of a Connect call from `origin`. */
function preflightHeaders(origin: string) {
  return {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type",
  };
}

/** A raw HTTP/1.1 request: its lines, an empty line, the body. */
function raw(lines: readonly string[], body = ""): string {
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** Raw HTTP/1.1 GetInfo with the given header lines, body and framing lines. */
function rawGetInfo(lines: readonly string[], body = "{}", framing = [`Content-Length: 2`]) {
  return raw(
    [
      `POST ${GET_INFO_PATH} HTTP/1.1`,
      ...lines,
      "Content-Type: application/json",
      ...framing,
      "Connection: close",
    ],
    body,
  );
}

/** The tokens in play. */
interface Tokens {
  readonly master: string;
  readonly web: string;
  readonly paired: string;
  readonly docker: string;
}

/** What the leak cases send and look for. */
interface Planted {
  readonly secretFile: string;
  readonly marker: string;
  readonly tag: string;
  readonly mnemonic: string;
  readonly passphrase: string;
  readonly password: string;
}

/** Builds the matrix against the started daemons; `docker` is set up as the compose service. */
function buildCases(d: TestDaemon, docker: TestDaemon, t: Tokens, files: Planted): Case[] {
  const cases: Case[] = [];
  const inClass =
    (cls: string) =>
    (c: Omit<Case, "cls">): void => {
      cases.push({ ...c, cls });
    };
  const listeners = listenersOf(d);
  const words = files.mnemonic.split(" ");

  // Controls: the harness reaches the daemon on both listeners and both daemons.
  const control = inClass("control");
  for (const [who, x, token] of [
    ["loopback", d, t.master],
    ["docker", docker, t.docker],
  ] as const) {
    for (const l of listenersOf(x)) {
      const yes = { expect: 200, control: true } as const;
      control({
        ...yes,
        name: `${who} ${l.name} GET /health`,
        send: () => l.send({ path: "/health" }),
      });
      control({
        ...yes,
        name: `${who} ${l.name} GetInfo with the token`,
        send: () => l.send(post(GET_INFO_PATH, bearer(token))),
      });
    }
  }
  for (const l of listeners) {
    control({
      name: `${l.name} preflight from ${ALLOWED}`,
      expect: 204,
      control: true,
      send: () => l.send(options(preflightHeaders(ALLOWED))),
    });
    control({
      name: `${l.name} GET /health?x (the query is not part of the path: exempt as documented)`,
      expect: 200,
      control: true,
      send: () => l.send({ path: "/health?x" }),
    });
  }

  // 1. DNS rebinding: the browser sends the attacker's name as Host, with or without Origin.
  const rebinding = inClass("rebinding");
  const rebound = [
    "evil.example",
    "attacker.test",
    "rebind.evil.example",
    "127.0.0.1.nip.io",
    "localtest.me",
  ];
  for (const l of listeners) {
    for (const name of rebound) {
      const host = `${name}:${l.port}`;
      for (const origin of [undefined, `http://${host}`]) {
        const o: Record<string, string> = origin === undefined ? {} : { origin };
        const requests: [string, Send][] = [
          ["GET /health", { host, path: "/health", headers: o }],
          ["preflight", options(preflightHeaders(origin ?? ALLOWED), host)],
          [
            "GetInfo with the token",
            post(GET_INFO_PATH, { ...o, ...bearer(t.master) }, "{}", host),
          ],
          [
            "GET /metrics with the token",
            { host, path: "/metrics", headers: { ...o, ...bearer(t.master) } },
          ],
          ["ListKeys without a token", post(`${SVC}/ListKeys`, o, "{}", host)],
        ];
        for (const [what, r] of requests) {
          rebinding({
            name: `${l.name} Host ${host}${origin === undefined ? "" : ` Origin ${origin}`}: ${what}`,
            expect: 403,
            foreign: true,
            send: () => l.send(r),
          });
        }
      }
    }
  }

  // 2. Host matrix: look-alike and malformed Host values, each on /health, an RPC and a preflight.
  const hostMatrix = inClass("host matrix");
  for (const l of listeners) {
    const p = l.port;
    const other = l.port === d.httpPort ? d.grpcPort : d.httpPort;
    const hosts = [
      `0.0.0.0:${p}`,
      `[::]:${p}`,
      `:${p}`,
      `foo.localhost:${p}`,
      `localhost.evil.example:${p}`,
      `localhost.:${p}`,
      `127.0.0.1.:${p}`,
      `127.1:${p}`,
      `2130706433:${p}`,
      `0x7f000001:${p}`,
      `0177.0.0.1:${p}`,
      `127.0.0.2:${p}`,
      `[::ffff:127.0.0.1]:${p}`,
      `[0:0:0:0:0:0:0:1]:${p}`,
      `localhost:0${p}`,
      `localhost:${p}0`,
      `localhost:${p}:${p}`,
      `localhost:${p}/`,
      `user@localhost:${p}`,
      `localhost:${p}@evil.example`,
      `localhost:${other}`,
      `localhost`,
      `127.0.0.1`,
      `${ALLOWED_HOST}.evil.example:${p}`,
      `x.${ALLOWED_HOST}:${p}`,
      `${ALLOWED_HOST}:1`,
      `${ALLOWED_HOST}`,
    ];
    for (const host of hosts) {
      // nghttp2 resets a stream whose `:authority` is no authority (a `/` in it) before the
      // pipeline sees it, as docs/security.md says; these count in a check of their own. The
      // nghttp2 of Node 22 and later also resets userinfo (`@`), which Node 20's lets through to
      // the Host gate's 403: refused either way, so those cases only need a refusal.
      const h2 = l.name === "h2";
      const group = h2 && host.includes("/") ? H2_LAYER : undefined;
      const expect = group !== undefined ? "reset" : h2 && host.includes("@") ? "refused" : 403;
      const requests: [string, Send][] = [
        ["GET /health", { host, path: "/health", headers: { origin: "app://seed" } }],
        ["GetInfo with the token", post(GET_INFO_PATH, bearer(t.master), "{}", host)],
        ["preflight from app://seed", options(preflightHeaders("app://seed"), host)],
      ];
      for (const [what, r] of requests) {
        hostMatrix({
          name: `${l.name} Host ${JSON.stringify(host)}: ${what}`,
          expect,
          group,
          foreign: true,
          send: () => l.send(r),
        });
      }
    }
  }
  const h1 = d.httpPort;
  const good = `127.0.0.1:${h1}`;
  for (const [name, bytes, expect] of [
    ["missing Host, HTTP/1.1", raw(["GET /health HTTP/1.1", "Connection: close"]), 403],
    ["missing Host, HTTP/1.0", raw(["GET /health HTTP/1.0"]), 403],
    ["empty Host", raw(["GET /health HTTP/1.1", "Host:", "Connection: close"]), 403],
    [
      "absolute-form target to loopback, Host evil.example",
      raw([`GET http://${good}/health HTTP/1.1`, `Host: evil.example:${h1}`, "Connection: close"]),
      403,
    ],
    [
      "absolute-form target to evil.example, Host loopback (not the /health path: bearer)",
      raw(["GET http://evil.example/health HTTP/1.1", `Host: ${good}`, "Connection: close"]),
      401,
    ],
  ] as const) {
    hostMatrix({
      name: `h1 ${name}`,
      expect,
      foreign: expect === 403,
      send: () => observeRaw(h1, bytes),
    });
  }

  // 3. Origin look-alikes: the preflight and the actual request (with the token) are both refused.
  const lookAlike = inClass("origin look-alikes");
  const lookAlikes = [
    "https://evil.example",
    "http://localhost:3000",
    `${ALLOWED}.evil.com`,
    "http://allowed.example.com",
    `${ALLOWED}:8443`,
    `${ALLOWED}:80`,
    "https://xallowed.example.com",
    "https://allowed.example.co",
    "https://allowed-example.com",
    `${ALLOWED}.`,
    `${ALLOWED}..`,
    `${ALLOWED}%2e`,
    `${ALLOWED}@evil.com`,
    `${ALLOWED}:443.evil.com`,
    `https://evil.com/${ALLOWED}`,
    `https://evil.com?${ALLOWED}`,
    "https://evil.com#allowed.example.com",
    "https://xn--allwed-9ua.example.com",
    "wss://allowed.example.com",
    "ftp://allowed.example.com",
    "file://",
    "file:///etc/passwd",
    `${PAIRED}.evil.com`,
    "http://paired.example.com",
    `${PAIRED}:444`,
    "app://seed.evil.com",
    "app://seedx",
    "app://evil",
    "app://seed:1",
    "app://seed@evil",
    "nul",
    "nullx",
    "undefined",
    "*",
    "",
    "https://",
    "//allowed.example.com",
    "allowed.example.com",
    `${ALLOWED} https://evil.com`,
    `${ALLOWED}, https://evil.com`,
  ];
  for (const l of listeners) {
    for (const origin of lookAlikes) {
      const o = JSON.stringify(origin);
      const foreign = { expect: 403, foreign: true } as const;
      lookAlike({
        ...foreign,
        name: `${l.name} preflight from ${o}`,
        send: () => l.send(options(preflightHeaders(origin))),
      });
      lookAlike({
        ...foreign,
        name: `${l.name} GetInfo with the token from ${o}`,
        send: () => l.send(post(GET_INFO_PATH, { origin, ...bearer(t.master) })),
      });
    }
    // A paired token only counts from its own origin, and never from `null` or without one.
    for (const origin of [ALLOWED, "null", "app://seed", undefined]) {
      const o: Record<string, string> = origin === undefined ? {} : { origin };
      lookAlike({
        name: `${l.name} paired token from ${origin ?? "no Origin"}`,
        expect: 401,
        send: () => l.send(post(`${SVC}/ListKeys`, { ...o, ...bearer(t.paired) })),
      });
    }
  }

  // 4. Preflight rules.
  const preflight = inClass("preflight");
  const evil = "https://evil.example";
  for (const l of listeners) {
    // A preflight is answered by the pipeline, never by a handler: after the matrix the keys
    // are still there (attack.no-state-change).
    preflight({
      name: `${l.name} preflight of DeleteAllKeys from ${ALLOWED} (204, no handler runs)`,
      expect: 204,
      control: true,
      send: () =>
        l.send({
          ...options(
            { ...preflightHeaders(ALLOWED), ...bearer(t.master) },
            undefined,
            `${SVC}/DeleteAllKeys`,
          ),
          body: "{}",
        }),
    });
    const refusals: [string, number | "refused", boolean, Send][] = [
      [
        "foreign origin asking for private network access",
        403,
        true,
        options({ ...preflightHeaders(evil), "access-control-request-private-network": "true" }),
      ],
      [
        "foreign origin with the token",
        403,
        true,
        options({ ...preflightHeaders(evil), ...bearer(t.master) }),
      ],
      ...["DELETE", "PUT", "GET"].map((method): [string, number, boolean, Send] => [
        `foreign origin, Access-Control-Request-Method ${method}`,
        403,
        true,
        options({ origin: evil, "access-control-request-method": method }),
      ]),
      [
        "allowed origin, bad Host",
        403,
        true,
        options(preflightHeaders(ALLOWED), `evil.example:${l.port}`),
      ],
      [
        "OPTIONS from an allowed origin without Access-Control-Request-Method (not a preflight)",
        "refused",
        false,
        options({ origin: ALLOWED }),
      ],
      [
        "OPTIONS without Origin (bearer applies)",
        401,
        false,
        options({ "access-control-request-method": "POST" }),
      ],
      [
        "OPTIONS /health without Origin (only GET /health is exempt)",
        401,
        false,
        options({}, undefined, "/health"),
      ],
    ];
    for (const [name, expect, foreign, r] of refusals) {
      preflight({ name: `${l.name} ${name}`, expect, foreign, send: () => l.send(r) });
    }
  }

  // 5. text/plain CSRF: simple requests a foreign page can send without a preflight.
  const csrf = inClass("text/plain CSRF");
  const csrfTargets: [string, string][] = [
    [`${SVC}/GetInfo`, "{}"],
    [`${SVC}/DeleteAllKeys`, "{}"],
    [`${SVC}/PairOrigin`, JSON.stringify({ origin: evil, label: "csrf" })],
    [`${SVC}/RegisterKey`, JSON.stringify({ name: "csrf", mnemonic: words })],
  ];
  const simpleTypes = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
  ];
  for (const l of listeners) {
    for (const [path, body] of csrfTargets) {
      for (const ct of simpleTypes) {
        const what = `${l.name} ${path.slice(path.lastIndexOf("/") + 1)} ${ct}`;
        const from = (headers: Record<string, string>) => () =>
          l.send(post(path, { "content-type": ct, ...headers }, body));
        csrf({
          name: `${what} from ${evil}`,
          expect: 403,
          foreign: true,
          send: from({ origin: evil }),
        });
        csrf({
          name: `${what} from ${evil} with the token in a cookie`,
          expect: 403,
          foreign: true,
          send: from({ origin: evil, cookie: `token=${t.master}` }),
        });
        for (const origin of ["null", ALLOWED, undefined]) {
          csrf({
            name: `${what} from ${origin ?? "no Origin"} without a token`,
            expect: 401,
            send: from(origin === undefined ? {} : { origin }),
          });
        }
      }
    }
  }

  // 6. Token transports other than `Authorization: Bearer`, wrong tokens, and the narrower
  // credentials outside their scope (docs/security.md: `permission_denied`).
  const transport = inClass("token transports");
  const near = [nearMiss(t.master), t.master.slice(0, -1), `${t.master}x`, `x${t.master}`];
  const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;
  const header = (name: string, value: string) => ({ headers: { [name]: value } });
  const transports: [string, { path?: string; headers: Record<string, string> }][] = [
    ...["token", "access_token", "authorization", "bearer", "auth", "key"].map(
      (q): [string, { path: string; headers: Record<string, string> }] => [
        `query ?${q}=`,
        {
          path: `${GET_INFO_PATH}?${q}=${q === "authorization" ? "Bearer%20" : ""}${t.master}`,
          headers: {},
        },
      ],
    ),
    ...["token", "authorization", "seed_token", "auth_token", "session"].map(
      (c): [string, { headers: Record<string, string> }] => [
        `cookie ${c}=`,
        header("cookie", `${c}=${c === "authorization" ? "Bearer " : ""}${t.master}`),
      ],
    ),
    ["Basic user:token", header("authorization", basic(`user:${t.master}`))],
    ["Basic token:", header("authorization", basic(`${t.master}:`))],
    ["Basic token", header("authorization", `Basic ${t.master}`)],
    ...["Token", "Digest", "MAC", "OAuth", "Bearer:", "Bearer="].map(
      (s): [string, { headers: Record<string, string> }] => [
        `scheme ${s}`,
        header("authorization", `${s}${/[:=]$/.test(s) ? "" : " "}${t.master}`),
      ],
    ),
    ["no scheme", header("authorization", t.master)],
    ["Bearer<TAB>token", header("authorization", `Bearer\t${t.master}`)],
    ["Bearer token token", header("authorization", `Bearer ${t.master} ${t.master}`)],
    ['Bearer "token"', header("authorization", `Bearer "${t.master}"`)],
    ["Bearer token,Bearer token", header("authorization", `Bearer ${t.master},Bearer ${t.master}`)],
    ["empty Bearer", header("authorization", "Bearer ")],
    ...["x-auth-token", "x-seed-token", "x-authorization", "authentication"].map(
      (h): [string, { headers: Record<string, string> }] => [
        `header ${h}`,
        header(h, `Bearer ${t.master}`),
      ],
    ),
    ["Proxy-Authorization", header("proxy-authorization", `Bearer ${t.master}`)],
    ...near.map((tok, i): [string, { headers: Record<string, string> }] => [
      `near-miss token #${i + 1}`,
      { headers: bearer(tok) },
    ]),
    ["the web and full tokens run together", { headers: bearer(`${t.web}${t.master}`) }],
  ];
  const emptyFrame = envelope(0, new Uint8Array());
  for (const l of listeners) {
    const grpcCt = l.name === "h2" ? "application/grpc+proto" : "application/grpc-web+proto";
    const grpc = (headers: Record<string, string>) =>
      post(GET_INFO_PATH, { "content-type": grpcCt, te: "trailers", ...headers }, emptyFrame);
    const requests: [string, number, Send][] = [
      ...transports.map(([name, r]): [string, number, Send] => [
        name,
        401,
        post(r.path ?? GET_INFO_PATH, r.headers),
      ]),
      [`${grpcCt} with the token in a cookie`, 401, grpc({ cookie: `token=${t.master}` })],
      ...(l.name === "h2"
        ? [
            [
              "gRPC authorization-bin metadata",
              401,
              grpc({ "authorization-bin": Buffer.from(`Bearer ${t.master}`).toString("base64") }),
            ] as [string, number, Send],
          ]
        : []),
      [
        "web token calling RegisterKey",
        403,
        post(`${SVC}/RegisterKey`, bearer(t.web), JSON.stringify({ name: "web", mnemonic: words })),
      ],
      ["web token calling ListKeys", 403, post(`${SVC}/ListKeys`, bearer(t.web))],
      [
        "paired token calling SignData from its origin",
        403,
        post(
          `${SVC}/SignData`,
          { origin: PAIRED, ...bearer(t.paired) },
          JSON.stringify({ signingKeyName: "main", data: "AAAA" }),
        ),
      ],
      [
        "paired token calling PairOrigin from its origin",
        403,
        post(
          `${SVC}/PairOrigin`,
          { origin: PAIRED, ...bearer(t.paired) },
          JSON.stringify({ origin: evil }),
        ),
      ],
    ];
    for (const [name, expect, r] of requests)
      transport({ name: `${l.name} ${name}`, expect, send: () => l.send(r) });
  }

  // 7. Leaks on error: handler failures with the full token must not echo secrets or internals.
  const leaks = inClass("leaks on error");
  const DOCS = "/com.seed.documents.v3alpha.Documents";
  const failing: [string, string, unknown][] = [
    [
      "ImportKey of a file holding a secret",
      `${SVC}/ImportKey`,
      { filePath: files.secretFile, password: files.password, name: "imported" },
    ],
    [
      "ImportKey of the data dir's database",
      `${SVC}/ImportKey`,
      { filePath: join(d.dataDir, "seed.db"), password: files.password, name: "imported" },
    ],
    [
      "ImportKey of /proc/self/environ (holds the token)",
      `${SVC}/ImportKey`,
      { filePath: "/proc/self/environ", password: files.password, name: "imported" },
    ],
    [
      "RegisterKey with an invalid mnemonic",
      `${SVC}/RegisterKey`,
      { mnemonic: [files.marker, ...words.slice(1)], passphrase: files.passphrase, name: "leak" },
    ],
    [
      "RegisterKey with a valid mnemonic and an invalid name",
      `${SVC}/RegisterKey`,
      { mnemonic: words, passphrase: files.passphrase, name: `\u0000${files.tag}` },
    ],
    [
      "ExportKey to a missing directory",
      `${SVC}/ExportKey`,
      { name: "main", filePath: `/nonexistent-${files.tag}/key.json`, password: files.password },
    ],
    [
      "ExportKey of an unknown key",
      `${SVC}/ExportKey`,
      { name: `unknown-${files.tag}`, filePath: "/nonexistent/key.json", password: files.password },
    ],
    [
      "SignData with an unknown key",
      `${SVC}/SignData`,
      { signingKeyName: files.tag, data: "AAAA" },
    ],
    ["malformed JSON holding the token", `${SVC}/GetInfo`, `{"token":"${t.master}"`],
    [
      "GetDocument with the token as account and path",
      `${DOCS}/GetDocument`,
      { account: t.master, path: `/${t.master}` },
    ],
    [
      "GetDocument with a huge path",
      `${DOCS}/GetDocument`,
      {
        account: "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        path: `/${files.tag.repeat(2000)}`,
      },
    ],
    [
      "CreateCapability for an unknown delegate",
      "/com.seed.documents.v3alpha.AccessControl/CreateCapability",
      { signingKeyName: "main", delegate: files.tag, account: files.tag, path: "", role: 1 },
    ],
    ["unknown method", `${SVC}/${files.tag}`, "{}"],
  ];
  for (const [name, path, body] of failing) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    for (const l of listeners) {
      leaks({
        name: `${l.name} ${name}`,
        expect: "refused",
        send: () => l.send(post(path, bearer(t.master), text)),
      });
    }
  }

  // 8. Exemption path variants: only exactly `GET /health` is tokenless; `/metrics` is master-only.
  const exemption = inClass("exemption paths");
  const notHealth = [
    "/health/",
    "/HEALTH",
    "/Health",
    "//health",
    "/health/.",
    "/./health",
    "/%68ealth",
    "/health%2f",
    "/health;x",
    "/health%00",
    "/health..",
    "/../health",
    "/health/x",
    "/metrics",
    "/metrics/",
    "/METRICS",
    "/metrics?x",
    "/ipfs/bafkqaaa",
  ];
  for (const l of listeners) {
    const requests: [string, number | "refused", Send][] = [
      ...notHealth.map((path): [string, number, Send] => [
        `GET ${path} without a token`,
        401,
        { path },
      ]),
      ...["HEAD", "POST", "PUT", "DELETE"].map((method): [string, number, Send] => [
        `${method} /health without a token`,
        401,
        { method, path: "/health" },
      ]),
      ["GET /metrics with the web token", 403, { path: "/metrics", headers: bearer(t.web) }],
      [
        "GET /metrics with the paired token from its origin",
        "refused",
        { path: "/metrics", headers: { origin: PAIRED, ...bearer(t.paired) } },
      ],
      ...["/metrics/", "/METRICS", "//metrics"].map((path): [string, "refused", Send] => [
        `GET ${path} with the token (not the metrics route)`,
        "refused",
        { path, headers: bearer(t.master) },
      ]),
    ];
    for (const [name, expect, r] of requests)
      exemption({ name: `${l.name} ${name}`, expect, send: () => l.send(r) });
  }

  // 9. Docker: forwarded headers must not stand in for Host, and the token still stops a LAN
  // client that sends an allowed Host.
  const dockerClass = inClass("docker forwarded headers");
  for (const l of listenersOf(docker)) {
    const p = l.port;
    const forwarded: Record<string, string>[] = [
      { "x-forwarded-host": `127.0.0.1:${p}` },
      { "x-forwarded-host": `localhost:${p}` },
      { "x-forwarded-host": `${DOCKER_HOST}:${p}` },
      { forwarded: `for=127.0.0.1;host=localhost:${p};proto=http` },
      { "x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1" },
      { "x-original-host": `localhost:${p}` },
      { "x-host": `localhost:${p}` },
      { "x-forwarded-server": `localhost:${p}`, "x-forwarded-port": String(p) },
    ];
    const host = `evil.example:${p}`;
    const requests: [string, number, boolean, Send][] = [
      ...forwarded.flatMap((f): [string, number, boolean, Send][] => {
        const what = `Host ${host} + ${Object.entries(f)
          .map(([k, v]) => `${k}: ${v}`)
          .join(", ")}`;
        return [
          [`${what}: GET /health`, 403, true, { host, path: "/health", headers: f }],
          [
            `${what}: GetInfo with the token`,
            403,
            true,
            post(GET_INFO_PATH, { ...f, ...bearer(t.docker) }, "{}", host),
          ],
        ];
      }),
      ...[
        `0.0.0.0:${p}`,
        `172.17.0.2:${p}`,
        `192.168.1.10:${p}`,
        DOCKER_HOST,
        `${DOCKER_HOST}:${p + 1}`,
      ].map((h): [string, number, boolean, Send] => [
        `Host ${h}: GET /health`,
        403,
        true,
        { host: h, path: "/health" },
      ]),
      ...[`${DOCKER_HOST}:${p}`, `localhost:${p}`].map((h): [string, number, boolean, Send] => [
        `Host ${h} + X-Forwarded-For 127.0.0.1, no token: ListKeys`,
        401,
        false,
        post(`${SVC}/ListKeys`, { "x-forwarded-for": "127.0.0.1" }, "{}", h),
      ]),
    ];
    for (const [name, expect, foreign, r] of requests) {
      dockerClass({ name: `${l.name} ${name}`, expect, foreign, send: () => l.send(r) });
    }
  }

  // 10. Duplicate headers.
  const duplicate = inClass("duplicate headers");
  const wrong = near[0] ?? "x";
  const hostLine = `Host: ${good}`;
  const authLine = (token: string) => `Authorization: Bearer ${token}`;
  const dupH1: [string, string, number | "refused"][] = [
    ["two Host, both loopback", rawGetInfo([hostLine, hostLine, authLine(t.master)]), 403],
    [
      "two Host, loopback then evil",
      rawGetInfo([hostLine, `Host: evil.example:${h1}`, authLine(t.master)]),
      403,
    ],
    [
      "two Host, evil then loopback",
      rawGetInfo([`Host: evil.example:${h1}`, hostLine, authLine(t.master)]),
      403,
    ],
    [
      "two Authorization, valid then wrong",
      rawGetInfo([hostLine, authLine(t.master), authLine(wrong)]),
      401,
    ],
    [
      "two Authorization, wrong then valid",
      rawGetInfo([hostLine, authLine(wrong), authLine(t.master)]),
      401,
    ],
    [
      "two Origin, allowed then evil",
      rawGetInfo([hostLine, `Origin: ${ALLOWED}`, `Origin: ${evil}`, authLine(t.master)]),
      "refused",
    ],
    [
      "two Origin, evil then allowed",
      rawGetInfo([hostLine, `Origin: ${evil}`, `Origin: ${ALLOWED}`, authLine(t.master)]),
      "refused",
    ],
    [
      "two Content-Length",
      rawGetInfo([hostLine, authLine(t.master)], "{}x", ["Content-Length: 2", "Content-Length: 3"]),
      "refused",
    ],
    [
      "Content-Length and Transfer-Encoding",
      rawGetInfo([hostLine, authLine(t.master)], "2\r\n{}\r\n0\r\n\r\n", [
        "Content-Length: 2",
        "Transfer-Encoding: chunked",
      ]),
      "refused",
    ],
  ];
  for (const [name, bytes, expect] of dupH1) {
    duplicate({
      name: `h1 ${name}`,
      expect,
      foreign: name.includes("evil"),
      send: () => observeRaw(h1, bytes),
    });
  }
  const h2 = d.grpcPort;
  const loop2 = `127.0.0.1:${h2}`;
  const evil2 = `evil.example:${h2}`;
  const fields = (authority: string | undefined, ...more: RawH2Header[]): RawH2Header[] => [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", GET_INFO_PATH],
    ...(authority === undefined ? [] : [[":authority", authority] as const]),
    ["content-type", "application/json"],
    ...more,
  ];
  const auth = (token: string): RawH2Header => ["authorization", `Bearer ${token}`];
  const dupH2: [string, RawH2Header[], number | "refused" | "reset", string?][] = [
    ["two authorization, valid then wrong", fields(loop2, auth(t.master), auth(wrong)), 401],
    ["two authorization, wrong then valid", fields(loop2, auth(wrong), auth(t.master)), 401],
    [":authority loopback, host evil.example", fields(loop2, ["host", evil2], auth(t.master)), 403],
    [":authority evil.example, host loopback", fields(evil2, ["host", loop2], auth(t.master)), 403],
    ["two :authority", fields(loop2, [":authority", evil2], auth(t.master)), "reset", H2_LAYER],
    [
      "two host, loopback then evil",
      fields(undefined, ["host", loop2], ["host", evil2], auth(t.master)),
      "reset",
      H2_LAYER,
    ],
    [
      "two origin, allowed then evil",
      fields(loop2, ["origin", ALLOWED], ["origin", evil], auth(t.master)),
      "refused",
    ],
  ];
  for (const [name, f, expect, group] of dupH2) {
    duplicate({ name: `h2 ${name}`, expect, group, send: () => observeRawH2(h2, f, "{}") });
  }
  // The same mismatch on GET /health, the one tokenless path, with Node's own client.
  duplicate({
    name: "h2 GET /health, :authority loopback, host evil.example",
    expect: 403,
    foreign: true,
    send: () => observe(rawHttp2({ port: h2, path: "/health", headers: { host: evil2 } })),
  });

  // 11. Limits (docs/security.md, "Limits"): `Expect: 100-continue` gets its refusal with no
  // `100 Continue`; oversized headers and declared oversized bodies get their documented codes.
  const limits = inClass("limits");
  for (const [name, lines, expect] of [
    ["no token", [hostLine], 401],
    ["a wrong token", [hostLine, authLine(wrong)], 401],
    ["a foreign Host and the token", [`Host: evil.example:${h1}`, authLine(t.master)], 403],
    ["a foreign Origin and the token", [hostLine, `Origin: ${evil}`, authLine(t.master)], 403],
  ] as const) {
    limits({
      name: `h1 Expect: 100-continue with ${name}, body never sent`,
      expect,
      noContinue: true,
      foreign: expect === 403,
      send: () => observeRaw(h1, rawGetInfo([...lines, "Expect: 100-continue"], "")),
    });
  }
  for (const [name, extra] of [
    ["one 20 KiB header", [`X-Big: ${"a".repeat(20 * 1024)}`]],
    [
      "600 headers of 40 bytes",
      Array.from({ length: 600 }, (_, i) => `X-H${i}: ${"b".repeat(32)}`),
    ],
  ] as const) {
    for (const token of [[], [authLine(t.master)]]) {
      limits({
        name: `h1 ${name}${token.length > 0 ? " with the token" : ""}`,
        expect: 431,
        send: () =>
          observeRaw(
            h1,
            raw(["GET /health HTTP/1.1", hostLine, ...token, ...extra, "Connection: close"]),
          ),
      });
    }
  }
  for (const [name, kib, expect] of [
    ["one 20 KiB header", 20, 431],
    ["one 80 KiB header (over the header list size)", 80, "reset"],
  ] as const) {
    limits({
      name: `h2 ${name}`,
      expect,
      send: () =>
        observe(
          rawHttp2({ port: h2, path: "/health", headers: { "x-big": "a".repeat(kib * 1024) } }),
        ),
    });
  }
  const declared = `Content-Length: ${5 * 2 ** 20}`;
  for (const [name, target, token, expect] of [
    ["GET /health declaring a 5 MiB body", "GET /health HTTP/1.1", [], 413],
    [
      "POST to an unknown path with the token, declaring 5 MiB",
      "POST /nope HTTP/1.1",
      [authLine(t.master)],
      413,
    ],
    [
      "GET /metrics with the token, declaring 5 MiB",
      "GET /metrics HTTP/1.1",
      [authLine(t.master)],
      413,
    ],
    [
      "GetInfo (Connect) with the token, declaring 5 MiB",
      `POST ${GET_INFO_PATH} HTTP/1.1`,
      [authLine(t.master)],
      429,
    ],
  ] as const) {
    limits({
      name: `h1 ${name}, body never sent`,
      expect,
      send: () =>
        observeRaw(
          h1,
          raw([
            target,
            hostLine,
            ...token,
            "Content-Type: application/json",
            declared,
            "Connection: close",
          ]),
        ),
    });
  }
  return cases;
}

/** Checks one case's observation; returns why it failed, or undefined. */
function judge(
  c: Case,
  o: Observed,
  secrets: readonly string[],
  files: { marker: string },
): string | undefined {
  const status = o.status;
  const text = `${JSON.stringify(o.headers)}\n${o.body}`;
  if (c.control) {
    return status === c.expect ? undefined : `expected ${c.expect}, got ${status} ${show(o.body)}`;
  }
  // Silence is no refusal: every request must be answered (or reset) within 5 s.
  if (status === "timeout") return "no answer within 5 s";
  for (const s of secrets) {
    if (s.length > 0 && text.includes(s))
      return `the answer holds a secret (${s.slice(0, 4)}…): ${show(text)}`;
  }
  if (text.includes(files.marker))
    return `the answer echoes the caller's secret marker: ${show(text)}`;
  if (INTERNALS.test(o.body)) return `the answer shows internals: ${show(o.body)}`;
  if (c.expect === "reset") {
    return status === "reset"
      ? undefined
      : `expected the HTTP/2 layer's reset, got ${status} ${show(o.body)}`;
  }
  if (c.noContinue && (o.interim ?? []).includes(100)) {
    return `100 Continue sent before the refusal (${status})`;
  }
  if (c.foreign && hasCors(o))
    return `CORS headers on a foreign refusal: ${show(JSON.stringify(o.headers))}`;
  if (typeof status === "number" && status >= 200 && status < 300) {
    return `not refused: ${status} ${show(o.body)}`;
  }
  if (!isRefusalBody(o.body)) return `refused with data: ${status} ${show(o.body)}`;
  if (c.expect === "refused") return undefined;
  if (status !== c.expect) return `expected ${c.expect}, got ${status} ${show(o.body)}`;
  if (status === 401 && Object.keys(o.headers).length > 0) {
    const www = String(o.headers["www-authenticate"] ?? "");
    if (!/^Bearer\b/.test(www)) return `401 without WWW-Authenticate: Bearer (${show(www)})`;
  }
  return undefined;
}

/** Runs the attack matrix (its size does not depend on the run's counts). */
export function attackMatrix(opts: RunOptions): Promise<ScenarioResult> {
  return withScope("attack", (scope) => attackIn(scope, opts));
}

/** Per class (or group): its cases, how they fared, and the failures in full. */
interface ClassRow {
  cases: number;
  asDocumented: number;
  refused: number;
  readonly failed: string[];
}

async function attackIn(scope: Scope, opts: RunOptions): Promise<ScenarioResult> {
  const master = randomToken();
  const web = randomToken();
  const dockerToken = randomToken();
  // `marker` is secret (file contents, a mnemonic word); `tag` marks names and paths, which the
  // daemon may quote back to the caller who sent them.
  const letters = (n: number) =>
    randomToken()
      .replace(/[^a-z]/g, "")
      .slice(0, n);
  const files = {
    secretFile: join(scope.dir, "secret.json"),
    marker: `secretmarker${letters(10)}`,
    tag: `tag${letters(8)}`,
    mnemonic: generateMnemonic(12).join(" "),
    passphrase: `pass-${randomToken()}`,
    password: `pw-${randomToken()}`,
  };
  writeFileSync(
    files.secretFile,
    `{"version":"${files.marker}","secret":"${files.marker}"}\n${files.marker}\n`,
    { mode: 0o600 },
  );
  // Debug level: the log then holds every refusal too, and must still hold no secret.
  const d = await scope.daemon({
    token: master,
    env: { SEED_DAEMON_WEB_TOKEN: web },
    args: ["--cors-origin", ALLOWED, "--allowed-host", ALLOWED_HOST],
    logLevel: "debug",
  });
  // docs/deployment.md's compose service, with the service name allowed. It runs on loopback:
  // the Host gate depends on the listener's port and the allowed names, never on the bound
  // address (allowedHostSet in src/security/host-gate.ts), so a 0.0.0.0 bind would only expose
  // the run's daemon to the network.
  const docker = await scope.daemon({
    token: dockerToken,
    env: { SEED_DAEMON_ALLOWED_HOSTS: DOCKER_HOST },
    logLevel: "debug",
  });
  const admin = clientFor(Daemon, "connect", d, master);
  await admin.registerKey({ name: "main", mnemonic: generateMnemonic(12) });
  const paired = (await admin.pairOrigin({ origin: PAIRED, label: "attack" })).token;
  const state = async () => ({
    keys: (await admin.listKeys({})).keys.map((k) => k.name).sort(),
    origins: (await admin.listPairedOrigins({})).origins.map((o) => o.origin).sort(),
  });
  const before = await state();
  const cases = buildCases(d, docker, { master, web, paired, docker: dockerToken }, files);
  const secrets = [
    master,
    web,
    paired,
    dockerToken,
    nearMiss(master),
    files.passphrase,
    files.password,
    files.mnemonic,
    JSON.stringify(files.mnemonic.split(" ")).slice(1, -1),
  ];
  const byClass = new Map<string, ClassRow>();
  let requests = 0;
  let failures = 0;
  // A few in flight at once: the matrix is about answers, not load.
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let c = cases[next++]; c !== undefined; c = cases[next++]) {
        const o = await c.send();
        requests++;
        const why = judge(c, o, secrets, files);
        if (process.env.RELIABILITY_VERBOSE === "1") {
          opts.log(
            `${c.cls} | ${c.name} | ${o.status}${o.interim?.length ? ` after ${o.interim.join(",")}` : ""} | ${why ?? "ok"}`,
          );
        }
        const key = c.group ?? c.cls;
        const row = byClass.get(key) ?? { cases: 0, asDocumented: 0, refused: 0, failed: [] };
        byClass.set(key, row);
        row.cases++;
        if (why !== undefined) {
          failures++;
          row.failed.push(`${c.name}: ${why}`);
        } else if (c.expect === "refused") row.refused++;
        else row.asDocumented++;
      }
    }),
  );
  const details: string[] = [];
  const checks: Check[] = [];
  for (const [cls, row] of byClass) {
    details.push(
      `  ${cls.padEnd(20)} ${String(row.cases).padStart(4)} cases: ${row.asDocumented} with the documented status, ${row.refused} refused (no status documented)${row.failed.length === 0 ? "" : `, ${row.failed.length} FAILED`}`,
    );
    checks.push(
      check(
        `attack.${cls.replace(/[^a-z0-9]+/gi, "-")}`,
        row.failed,
        `${row.cases} cases`,
        `of ${row.cases} cases failed`,
      ),
    );
  }
  const after = await state();
  checks.push(
    check(
      "attack.no-state-change",
      JSON.stringify(after) === JSON.stringify(before)
        ? []
        : [`before ${JSON.stringify(before)}`, `after ${JSON.stringify(after)}`],
      "keys and paired origins unchanged by the matrix",
      "states differ",
    ),
  );
  const metrics = await rawHttp1({
    port: d.httpPort,
    path: "/metrics",
    headers: { authorization: `Bearer ${master}` },
  });
  const logs = `${d.output()}\n${docker.output()}`;
  const leaked = [...secrets, files.marker].filter((s) => `${logs}\n${metrics.body}`.includes(s));
  checks.push(
    check(
      "attack.log-leaks",
      [
        ...(metrics.status === 200 ? [] : [`/metrics answered ${metrics.status}, not 200`]),
        ...leaked.map((s) => `a secret starting ${s.slice(0, 4)}`),
      ],
      `debug logs (${logs.length} bytes) and /metrics (${metrics.status}, ${metrics.body.length} bytes) hold no secret`,
      "secrets in the logs or /metrics",
    ),
  );
  const down = [d, docker].filter((x) => x.proc.exitCode !== null || x.proc.signalCode !== null);
  checks.push(
    check(
      "attack.alive",
      down.map((x) => `the daemon on ${x.httpAddr} exited`),
      "both daemons up",
    ),
  );
  opts.log(`attack matrix: ${requests} cases`);
  return {
    scenario: "attack matrix",
    requests,
    failures,
    figures: `${byClass.size} classes, ${requests} cases, ${failures} not refused as documented`,
    checks,
    details,
  };
}
