// @ts-check
/**
 * The reference web site in front of seed-daemon: plain `node:http` and `seed-daemon/web`, no
 * framework and no build step (`node examples/web/server.js` once `npm run build` made `dist/`).
 *
 * - `/hm/auth/{challenge,login,logout,capabilities}`: the login endpoints of the library.
 * - `GET /hm/auth/browser.js`: the library's browser module, as compiled; `GET /hm/auth/login.js`
 *   the page script that wires the Log in / Log out button; `GET /hm/auth/me`: `{principal}`.
 * - `GET /hm/<account>[/<path…>]`: the document as HTML, read from the daemon for the logged-in
 *   user (or anonymously). A document that does not exist and one this user may not read get the
 *   same 404 page.
 * - `GET /health`: `{"status":"ok"}` once listening (the compose healthcheck).
 *
 * Configured only by the environment: `DAEMON_URL`, `DAEMON_AUTH_TOKEN` (the daemon's web
 * token), `SEED_WEB_SESSION_SECRET` (at least 32 bytes), `SEED_WEB_ORIGIN` (the site's public
 * origin, one of the daemon's `--cors-origin` entries), `PORT` (default 8080, 0 picks a free one)
 * and `HOST` (default 127.0.0.1). The web token stays in this process: no response carries it.
 *
 * Start-up checks the daemon with `GetInfo` first and exits 1 with one line on stderr when it
 * cannot be reached or refuses the token (exit 2 for a bad setting); once listening it prints
 * `listening on http://<host>:<port>` on stdout. docs/web.md explains the whole setup.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAuthHandlers, createDaemonClient, toNodeHandler } from "seed-daemon/web";

/** @typedef {import("seed-daemon/web").WebSession} WebSession */
/** @typedef {import("seed-daemon/web").AuthHandlers} AuthHandlers */
/** @typedef {import("seed-daemon/web").DaemonClient} DaemonClient */

/**
 * The parts of a `BlockNode` the renderer reads (the generated message type has more).
 *
 * @typedef {object} BlockNodeLike
 * @property {{ type: string, text: string, attributes: Record<string, string> }} [block]
 * @property {BlockNodeLike[]} children
 */

/** How long start-up waits for the daemon's answer: the whole start stays under 5 s. */
const READY_TIMEOUT_MS = 3000;
/** How long a shutdown waits for open requests before closing their connections. */
const SHUTDOWN_GRACE_MS = 5000;
/** Blocks nested deeper than this are rendered at this depth, so no document can exhaust the stack. */
const MAX_NESTING = 32;

/** Headers of every response: nothing is framed, sniffed, or given a referrer. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** A base58btc `z…` principal, loosely: the daemon checks it exactly. */
const ACCOUNT_RE = /^z[1-9A-HJ-NP-Za-km-z]{1,63}$/;

/** Values that must never be printed (filled in once the settings are read). */
const secrets = /** @type {string[]} */ ([]);

/**
 * One line on stderr, with any secret blanked out.
 *
 * @param {string} text
 */
function warn(text) {
  let line = text.replace(/\s+/g, " ").trim();
  for (const s of secrets) if (s !== "") line = line.split(s).join("[redacted]");
  process.stderr.write(`seed-web: ${line}\n`);
}

/**
 * Prints one line on stderr and exits.
 *
 * @param {number} code
 * @param {string} text
 * @returns {never}
 */
function fail(code, text) {
  warn(text);
  process.exit(code);
}

/**
 * The settings from the environment, or exit 2 naming what is wrong.
 *
 * @param {NodeJS.ProcessEnv} env
 */
function readSettings(env) {
  const required = [
    "DAEMON_URL",
    "DAEMON_AUTH_TOKEN",
    "SEED_WEB_SESSION_SECRET",
    "SEED_WEB_ORIGIN",
  ];
  const missing = required.filter((k) => (env[k] ?? "") === "");
  if (missing.length > 0) {
    fail(2, `${missing.join(", ")} must be set (see examples/.env.example and docs/web.md)`);
  }
  const port = env.PORT ?? "8080";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    fail(2, "PORT must be a port number from 0 to 65535 (0 picks a free port)");
  }
  return {
    daemonUrl: /** @type {string} */ (env.DAEMON_URL),
    token: /** @type {string} */ (env.DAEMON_AUTH_TOKEN),
    sessionSecret: /** @type {string} */ (env.SEED_WEB_SESSION_SECRET),
    origin: /** @type {string} */ (env.SEED_WEB_ORIGIN),
    port: Number(port),
    host: env.HOST ?? "127.0.0.1",
  };
}

/**
 * HTML text or attribute value with every markup character escaped.
 *
 * @param {string} s
 */
function esc(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A response with the security headers added (the handler's own headers win).
 *
 * @param {BodyInit | null} body
 * @param {number} status
 * @param {Record<string, string>} headers
 */
function respond(body, status, headers) {
  return new Response(body, { status, headers: { ...SECURITY_HEADERS, ...headers } });
}

/**
 * @param {number} status
 * @param {unknown} value
 */
function json(status, value) {
  return respond(JSON.stringify(value), status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
  });
}

/**
 * A whole page. The button's label and `data-action` say what a click does; login.js acts on it.
 *
 * @param {number} status
 * @param {{ title: string, body: string, principal: string | undefined }} page
 */
function html(status, { title, body, principal }) {
  const signedIn = principal !== undefined;
  const who = signedIn
    ? `<span id="seed-principal" title="your key on this site">${esc(principal)}</span> `
    : "";
  const text = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<script type="module" src="/hm/auth/login.js"></script>
</head>
<body>
<header>${who}<button type="button" id="seed-auth" data-action="${signedIn ? "logout" : "login"}">${signedIn ? "Log out" : "Log in"}</button>
<p id="seed-auth-error" role="alert" hidden></p>
</header>
<main>
${body}
</main>
</body>
</html>
`;
  // no-store: a page may hold a private document, and it depends on the session cookie.
  return respond(text, status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
  });
}

/**
 * A script the page loads (served as it is on disk).
 *
 * @param {string} body
 */
function script(body) {
  return respond(body, 200, {
    "content-type": "text/javascript; charset=utf-8",
    "cache-control": "no-cache",
  });
}

/**
 * The one page for a document that is missing and for one this user may not read.
 *
 * @param {WebSession | undefined} session
 */
function notFound(session) {
  return html(404, {
    title: "Not found",
    body: "<h1>Not found</h1>\n<p>There is no document here, or you may not read it.</p>",
    principal: session?.principal,
  });
}

/**
 * A block's children: a list when the block says so (`childrenType`), else a plain group.
 *
 * @param {BlockNodeLike} node
 * @param {number} depth
 * @returns {string}
 */
function renderChildren(node, depth) {
  if (node.children.length === 0) return "";
  if (depth >= MAX_NESTING) return node.children.map((c) => renderNode(c, depth)).join("");
  const kind = node.block?.attributes.childrenType;
  if (kind === "Ordered" || kind === "Unordered") {
    const tag = kind === "Ordered" ? "ol" : "ul";
    const items = node.children.map((c) => `<li>${renderNode(c, depth + 1)}</li>`).join("");
    return `<${tag}>${items}</${tag}>`;
  }
  return `<div class="children">${node.children.map((c) => renderNode(c, depth + 1)).join("")}</div>`;
}

/**
 * One block and its children. Only the text is shown, escaped; a real site would also render
 * annotations, links and media.
 *
 * @param {BlockNodeLike} node
 * @param {number} depth
 * @returns {string}
 */
function renderNode(node, depth) {
  const text = esc(node.block?.text ?? "");
  const children = renderChildren(node, depth);
  switch (node.block?.type) {
    case "Heading": {
      const level = Math.min(depth + 2, 6);
      return `<section><h${level}>${text}</h${level}>${children}</section>`;
    }
    case "Code":
      return `<pre><code>${text}</code></pre>${children}`;
    default:
      return `${text === "" ? "" : `<p>${text}</p>`}${children}`;
  }
}

/**
 * The account and document path of `/hm/<account>[/<seg>…]`, decoded; undefined for anything
 * else (a malformed account, an empty or undecodable segment, a segment holding `/`).
 *
 * @param {string} pathname
 * @returns {{ account: string, path: string } | undefined}
 */
function documentAddress(pathname) {
  const raw = pathname.slice("/hm/".length).replace(/\/$/, "").split("/");
  /** @type {string[]} */
  const segments = [];
  for (const s of raw) {
    let decoded;
    try {
      decoded = decodeURIComponent(s);
    } catch {
      return undefined;
    }
    if (decoded === "" || decoded.includes("/")) return undefined;
    segments.push(decoded);
  }
  const [account, ...rest] = segments;
  if (account === undefined || !ACCOUNT_RE.test(account)) return undefined;
  return { account, path: rest.length === 0 ? "" : `/${rest.join("/")}` };
}

/**
 * The site's Fetch API handler.
 *
 * @param {{ auth: AuthHandlers, daemon: DaemonClient, browserJs: string, loginJs: string }} site
 * @returns {(req: Request) => Promise<Response>}
 */
function createSite({ auth, daemon, browserJs, loginJs }) {
  /**
   * @param {Request} req
   * @param {WebSession | undefined} session
   * @param {{ account: string, path: string }} address
   */
  async function documentPage(req, session, address) {
    let doc;
    try {
      doc = await daemon.forSession(session).documents.getDocument(address, { signal: req.signal });
    } catch (err) {
      const e = ConnectError.from(err);
      // The daemon answers a private document this user may not read exactly like a missing one.
      if (e.code === Code.NotFound || e.code === Code.InvalidArgument) return notFound(session);
      if (e.code === Code.Unauthenticated && session !== undefined) {
        return html(401, {
          title: "Log in again",
          body: "<h1>Log in again</h1>\n<p>The document server no longer accepts this login. Log out, then log in again.</p>",
          principal: session.principal,
        });
      }
      warn(`GetDocument failed: ${Code[e.code] ?? e.code}`);
      return html(503, {
        title: "Unavailable",
        body: "<h1>Unavailable</h1>\n<p>The document server cannot be reached. Try again later.</p>",
        principal: session?.principal,
      });
    }
    const title = doc.metadata.title || doc.metadata.name || doc.path || doc.account;
    const body = `<article>\n<h1>${esc(title)}</h1>\n${doc.content.map((n) => renderNode(n, 0)).join("\n")}\n</article>`;
    return html(200, { title, body, principal: session?.principal });
  }

  return async function handle(req) {
    const handled = await auth.handle(req);
    if (handled !== undefined) {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) handled.headers.set(k, v);
      return handled;
    }
    const { pathname } = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return respond("method not allowed", 405, {
        allow: "GET, HEAD",
        "content-type": "text/plain; charset=utf-8",
      });
    }
    switch (pathname) {
      case "/health":
        return json(200, { status: "ok" });
      case "/hm/auth/browser.js":
        return script(browserJs);
      case "/hm/auth/login.js":
        return script(loginJs);
      case "/hm/auth/me":
        return json(200, { principal: (await auth.session(req))?.principal ?? null });
      case "/":
        return html(200, {
          title: "Seed documents",
          body: "<h1>Seed documents</h1>\n<p>Documents are at <code>/hm/&lt;account&gt;/&lt;path&gt;</code>; an account's home document is <code>/hm/&lt;account&gt;</code>.</p>",
          principal: (await auth.session(req))?.principal,
        });
    }
    const session = await auth.session(req);
    const address = pathname.startsWith("/hm/") ? documentAddress(pathname) : undefined;
    if (address === undefined) return notFound(session);
    return documentPage(req, session, address);
  };
}

async function main() {
  const settings = readSettings(process.env);
  secrets.push(settings.token, settings.sessionSecret);

  /** @type {AuthHandlers} */
  let auth;
  /** @type {DaemonClient} */
  let daemon;
  try {
    auth = createAuthHandlers({ sessionSecret: settings.sessionSecret, origin: settings.origin });
    daemon = createDaemonClient({
      baseUrl: settings.daemonUrl,
      token: settings.token,
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
  } catch (err) {
    fail(2, err instanceof Error ? err.message : String(err));
  }

  let browserJs;
  let loginJs;
  try {
    // Through the package's exports, as a site that depends on seed-daemon would find it.
    browserJs = readFileSync(
      createRequire(import.meta.url).resolve("seed-daemon/web/browser"),
      "utf8",
    );
    loginJs = readFileSync(new URL("./login.js", import.meta.url), "utf8");
  } catch {
    fail(2, "cannot read dist/web/browser.js or examples/web/login.js: run `npm run build` first");
  }

  try {
    await daemon.ready();
  } catch (err) {
    fail(1, err instanceof Error ? err.message : String(err));
  }

  const server = createServer(
    toNodeHandler(createSite({ auth, daemon, browserJs, loginJs }), {
      origin: auth.origin,
      maxBodyBytes: 64 * 1024,
      onError: (err) => warn(`request failed: ${err instanceof Error ? err.name : "error"}`),
    }),
  );
  server.once("error", (err) =>
    fail(1, `cannot listen on ${settings.host}:${settings.port}: ${err.message}`),
  );
  server.listen(settings.port, settings.host, () => {
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : settings.port;
    const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
    process.stdout.write(`listening on http://${host}:${port}\n`);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, SHUTDOWN_GRACE_MS).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

await main();
