import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { removeDir, runCli, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { rawHttp1 } from "../helpers/http.js";

const GET_INFO = "/com.seed.daemon.v1alpha.Daemon/GetInfo";
const TOKEN_RE = /sdo_[A-Za-z0-9_-]{43}/;

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.stop();
  if (d) removeDir(dirname(d.dataDir));
});

function cli(...args: string[]) {
  return runCli([...args, "--data-dir", d.dataDir]);
}

/** GetInfo with an origin-bound token from its origin, as a paired page would call it. */
async function getInfoStatus(token: string, origin: string): Promise<number> {
  const res = await rawHttp1({
    port: d.httpPort,
    method: "POST",
    path: GET_INFO,
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
      origin,
    },
    body: "{}",
  });
  return res.status;
}

/** A failed command: non-zero exit, nothing on stdout, exactly one line on stderr. */
function assertOneLineFailure(r: { code: number | null; stdout: string; stderr: string }): void {
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^seed-daemon: [^\n]+\n$/);
}

describe("seed-daemon origins", () => {
  const issued: string[] = [];

  test("list with nothing paired", async () => {
    const human = await cli("origins", "list");
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout, "no paired origins\n");
    const json = await cli("origins", "list", "--json");
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { origins: [] });
  });

  test("pair prints the normalised origin, the token once, and a warning", async () => {
    const r = await cli("origins", "pair", "HTTPS://App.Example.com/", "--label", "My app");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^paired: +https:\/\/app\.example\.com$/);
    assert.ok(lines.some((l) => /^label: +My app$/.test(l)));
    const tokenLines = lines.filter((l) => TOKEN_RE.test(l));
    assert.equal(tokenLines.length, 1, "the token is printed once");
    assert.match(r.stdout, /shown only once/);
    const token = TOKEN_RE.exec(r.stdout)?.[0] ?? "";
    issued.push(token);
    assert.equal(await getInfoStatus(token, "https://app.example.com"), 200);
  });

  test("pair --json prints {origin,label,createTime,token}", async () => {
    const r = await cli(
      "origins",
      "pair",
      "--json",
      "--label",
      "Second",
      "https://b.example.com:8443",
    );
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as Record<string, string>;
    assert.deepEqual(Object.keys(json).sort(), ["createTime", "label", "origin", "token"]);
    assert.equal(json.origin, "https://b.example.com:8443");
    assert.equal(json.label, "Second");
    assert.ok(!Number.isNaN(Date.parse(json.createTime ?? "")));
    assert.match(json.token ?? "", new RegExp(`^${TOKEN_RE.source}$`));
    issued.push(json.token ?? "");
    assert.equal(await getInfoStatus(json.token ?? "", "https://b.example.com:8443"), 200);
  });

  test("list shows origins, labels and times as a table or JSON, never tokens", async () => {
    const human = await cli("origins", "list");
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^ORIGIN +PAIRED +LABEL$/);
    assert.match(lines[1] ?? "", /^https:\/\/app\.example\.com +\S+Z +My app$/);
    assert.match(lines[2] ?? "", /^https:\/\/b\.example\.com:8443 +\S+Z +Second$/);
    const json = await cli("origins", "list", "--json");
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { origins: Record<string, string>[] };
    assert.deepEqual(
      parsed.origins.map((o) => [o.origin, o.label]),
      [
        ["https://app.example.com", "My app"],
        ["https://b.example.com:8443", "Second"],
      ],
    );
    for (const o of parsed.origins) assert.equal(o.token, undefined);
    for (const t of issued) {
      assert.ok(!human.stdout.includes(t));
      assert.ok(!json.stdout.includes(t));
    }
  });

  test("unpair revokes at once", async () => {
    const r = await cli("origins", "unpair", "https://app.example.com");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "unpaired: https://app.example.com\n");
    assert.equal(await getInfoStatus(issued[0] ?? "", "https://app.example.com"), 403);
    const json = await cli("origins", "unpair", "--json", "https://b.example.com:8443/");
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      origin: "https://b.example.com:8443",
      unpaired: true,
    });
    const list = await cli("origins", "list", "--json");
    assert.deepEqual(JSON.parse(list.stdout), { origins: [] });
  });

  test("unpairing an unknown origin fails with one line", async () => {
    const r = await cli("origins", "unpair", "https://never.example.com");
    assertOneLineFailure(r);
    assert.match(r.stderr, /not paired/);
  });

  test("an invalid origin fails with one line and nothing is stored", async () => {
    for (const origin of ["https://*.x.com", "null", "https://a.com/path"]) {
      const r = await cli("origins", "pair", origin);
      assertOneLineFailure(r);
      assert.match(r.stderr, /invalid/i);
    }
    const list = await cli("origins", "list", "--json");
    assert.deepEqual(JSON.parse(list.stdout), { origins: [] });
  });

  test("a wrong token fails with one line", async () => {
    const r = await runCli(["origins", "list", "--data-dir", d.dataDir], {
      env: { SEED_DAEMON_AUTH_TOKEN: "x".repeat(43) },
    });
    assertOneLineFailure(r);
    assert.match(r.stderr, /unauthenticated/);
  });

  test("no token ever reached the daemon output or the store file", () => {
    const out = d.output();
    const file = readFileSync(join(d.dataDir, "paired_origins.json"), "utf8");
    for (const t of issued) {
      assert.ok(!out.includes(t));
      assert.ok(!file.includes(t));
    }
  });
});
