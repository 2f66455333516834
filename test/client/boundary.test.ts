import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, test } from "node:test";
import * as client from "../../src/client/index.js";
import { ROOT } from "../helpers/daemon.js";

const SRC = join(ROOT, "src");

/** Relative import specifiers of a source file (static imports and re-exports). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/g)) {
    if (m[1] !== undefined) out.push(m[1]);
  }
  return out;
}

describe("seed-daemon/client module boundary", () => {
  test("no file of src/client/ imports anything of the daemon but src/wire.ts and src/gen/", () => {
    const seen = new Set<string>();
    const queue = readdirSync(join(SRC, "client"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => join(SRC, "client", f));
    assert.ok(queue.includes(join(SRC, "client", "index.ts")));
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of relativeImports(file)) {
        const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
        assert.ok(existsSync(target), `${relative(ROOT, file)} imports ${spec}`);
        const rel = relative(SRC, target);
        const allowed = rel === "wire.ts" || rel.startsWith("gen/") || rel.startsWith("client/");
        assert.ok(allowed, `${relative(ROOT, file)} imports ${rel}`);
        queue.push(target);
      }
    }
    assert.ok(seen.has(join(SRC, "client", "sidecar.ts")));
  });

  test("the entry exports the documented API", () => {
    for (const name of [
      "createDaemonTransport",
      "createDaemonClients",
      "readLocalDaemon",
      "LocalDaemonError",
      "spawnDaemon",
      "SpawnDaemonError",
      "bearerInterceptor",
    ]) {
      assert.equal(typeof (client as Record<string, unknown>)[name], "function", name);
    }
    assert.equal(typeof client.documentsV3alpha.Documents, "object");
  });

  test("createDaemonTransport refuses what would leak or cannot work", () => {
    for (const opts of [
      { baseUrl: "not a url", token: "t".repeat(43) },
      { baseUrl: "ftp://127.0.0.1:1", token: "t".repeat(43) },
      { baseUrl: "http://user:pw@127.0.0.1:1", token: "t".repeat(43) },
      { baseUrl: "http://127.0.0.1:1", token: "" },
      { baseUrl: "http://127.0.0.1:1", token: "with space" },
      { baseUrl: "http://127.0.0.1:1", token: "line\nbreak" },
      {
        baseUrl: "http://127.0.0.1:1",
        token: "t".repeat(43),
        protocol: "grpc",
        httpVersion: "1.1",
      },
    ] as const) {
      assert.throws(() => client.createDaemonTransport(opts), TypeError, JSON.stringify(opts));
    }
  });
});
