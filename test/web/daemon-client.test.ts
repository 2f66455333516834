import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  DocumentChangeSchema,
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic } from "../../src/identity/keys.js";
import { createAuthHandlers, createDaemonClient } from "../../src/web/index.js";
import { clientFor, codeOf } from "../helpers/clients.js";
import { randomToken, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { b64, capability, login, newKey, page, post } from "./helpers.js";

const SITE = "https://site.example";
const WEB = randomToken();
const ALICE_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const ALICE = newKey(keyFromMnemonic(ALICE_WORDS));

const title = (t: string) =>
  create(DocumentChangeSchema, { op: { case: "setMetadata", value: { key: "title", value: t } } });

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function readyError(client: { ready(): Promise<void> }): Promise<Error> {
  try {
    await client.ready();
  } catch (err) {
    return err as Error;
  }
  assert.fail("ready() resolved");
}

describe("createDaemonClient against the real daemon", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", SITE],
    });
    await clientFor(Daemon, "connect", d, d.token).registerKey({
      name: "alice",
      mnemonic: ALICE_WORDS,
    });
  });
  after(async () => {
    await d.stop();
  });

  test("ready() resolves with the web token", async () => {
    const client = createDaemonClient({ baseUrl: `http://${d.httpAddr}/`, token: WEB });
    assert.equal(client.baseUrl, `http://${d.httpAddr}`);
    await client.ready();
    const info = await client.daemon.getInfo({});
    assert.ok(info);
    const bare = createDaemonClient({ baseUrl: d.httpAddr, token: WEB });
    await bare.ready();
  });

  test("ready() with a wrong token: one line naming the address, never the token", async () => {
    const wrong = randomToken();
    const err = await readyError(
      createDaemonClient({ baseUrl: `http://${d.httpAddr}`, token: wrong }),
    );
    assert.match(err.message, /^the daemon at http:\/\/127\.0\.0\.1:\d+ refused the token/);
    assert.ok(err.message.includes(d.httpAddr));
    assert.equal(err.message.includes("\n"), false);
    assert.equal(err.message.includes(wrong), false);
    assert.equal(JSON.stringify(err).includes(wrong), false);
    assert.equal(err.cause, undefined);
  });

  test("ready() with nothing listening: one line naming the address, never the token", async () => {
    const port = await closedPort();
    const err = await readyError(
      createDaemonClient({ baseUrl: `http://127.0.0.1:${port}`, token: WEB }),
    );
    assert.match(
      err.message,
      new RegExp(`^cannot reach the daemon at http://127\\.0\\.0\\.1:${port}`),
    );
    assert.equal(err.message.includes("\n"), false);
    assert.equal(err.message.includes(WEB), false);
  });

  test("ready() against a server that never answers gives up after the deadline", async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => {
      sockets.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    try {
      const err = await readyError(
        createDaemonClient({
          baseUrl: `http://127.0.0.1:${port}`,
          token: WEB,
          readyTimeoutMs: 300,
        }),
      );
      assert.equal(
        err.message,
        `cannot reach the daemon at http://127.0.0.1:${port} (no answer within 300 ms): is it running, and is this its --http-addr?`,
      );
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test("a malformed base URL or token is refused at creation, without quoting the token", () => {
    const bad = "tok en";
    assert.throws(
      () => createDaemonClient({ baseUrl: `http://${d.httpAddr}`, token: bad }),
      (e: Error) => e instanceof TypeError && !e.message.includes(bad),
    );
    assert.throws(
      () => createDaemonClient({ baseUrl: `http://${d.httpAddr}`, token: "" }),
      TypeError,
    );
    assert.throws(
      () => createDaemonClient({ baseUrl: `http://user:${WEB}@${d.httpAddr}`, token: WEB }),
      (e: Error) => e instanceof TypeError && !e.message.includes(WEB),
    );
    assert.throws(() => createDaemonClient({ baseUrl: "ftp://x", token: WEB }), TypeError);
  });

  test("forSession reaches a private document the browser user may read; anonymous does not", async () => {
    const docs = clientFor(Documents, "connect", d, d.token);
    await docs.createDocumentChange({
      account: ALICE.principal,
      path: "/private/plans",
      signingKeyName: "alice",
      visibility: ResourceVisibility.PRIVATE,
      changes: [title("Plans")],
    });
    await docs.createDocumentChange({
      account: ALICE.principal,
      path: "/secret/notes",
      signingKeyName: "alice",
      visibility: ResourceVisibility.PRIVATE,
      changes: [title("Notes")],
    });
    const browser = newKey();
    await clientFor(AccessControl, "connect", d, d.token).createCapability({
      signingKeyName: "alice",
      account: ALICE.principal,
      delegate: browser.principal,
      path: "/private",
      role: Role.READER,
    });

    const auth = createAuthHandlers({ sessionSecret: randomBytes(32), origin: SITE });
    const { cookie } = await login(auth, browser);
    const session = await auth.session(page(SITE, cookie));
    assert.ok(session);

    const daemon = createDaemonClient({ baseUrl: `http://${d.httpAddr}`, token: WEB });
    const doc = await daemon
      .forSession(session)
      .documents.getDocument({ account: ALICE.principal, path: "/private/plans" });
    assert.equal(doc.metadata.title, "Plans");
    assert.equal(
      await codeOf(
        daemon.documents.getDocument({ account: ALICE.principal, path: "/private/plans" }),
      ),
      Code.NotFound,
    );
    assert.equal(
      await codeOf(
        daemon.forSession(undefined).documents.getDocument({
          account: ALICE.principal,
          path: "/private/plans",
        }),
      ),
      Code.NotFound,
    );
    // The web token still may not write, session or not.
    assert.equal(
      await codeOf(
        daemon.forSession(session).documents.createDocumentChange({
          account: ALICE.principal,
          path: "/x",
          signingKeyName: "alice",
          changes: [title("x")],
        }),
      ),
      Code.PermissionDenied,
    );

    // A capability the daemon never stored, handed to the session, is forwarded with each call.
    const notes = { account: ALICE.principal, path: "/secret/notes" };
    assert.equal(
      await codeOf(daemon.forSession(session).documents.getDocument(notes)),
      Code.NotFound,
    );
    const cap = capability(ALICE, browser.principal, "/secret");
    const added = await auth.capabilities(
      post(SITE, "/hm/auth/capabilities", { capabilities: [b64(cap)] }, { cookie }),
    );
    assert.equal(added.status, 200);
    const withCap = await auth.session(page(SITE, cookie));
    assert.ok(withCap);
    const read = await daemon.forSession(withCap).documents.getDocument(notes);
    assert.equal(read.metadata.title, "Notes");
    assert.equal(await codeOf(daemon.documents.getDocument(notes)), Code.NotFound);

    // A session whose proof was made for another origin is refused by the daemon itself.
    const elsewhere = createAuthHandlers({
      sessionSecret: randomBytes(32),
      origin: "https://other.example",
    });
    const other = await login(elsewhere, browser);
    const otherSession = await elsewhere.session(page("https://other.example", other.cookie));
    assert.ok(otherSession);
    assert.equal(
      await codeOf(daemon.forSession(otherSession).documents.getDocument(notes)),
      Code.Unauthenticated,
    );
  });
});
