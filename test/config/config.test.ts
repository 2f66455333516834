import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { resolveConfig } from "../../src/config/config.js";
import { ConfigError } from "../../src/config/errors.js";
import { defaultConfigDir, defaultDataDir } from "../../src/config/paths.js";

test("defaults: loopback ports 55001/55002, 4 MiB, token in the data dir, default origins", () => {
  const c = resolveConfig({}, { HOME: "/home/u" });
  assert.deepEqual(c.httpAddr, { host: "127.0.0.1", port: 55001 });
  assert.deepEqual(c.grpcAddr, { host: "127.0.0.1", port: 55002 });
  assert.equal(c.maxRequestBytes, 4 * 1024 * 1024);
  assert.equal(c.authTokenPath, join(c.dataDir, "auth.token"));
  assert.deepEqual([...c.corsOrigins], ["null", "app://seed"]);
  assert.equal(c.publicOnly, false);
  assert.deepEqual([...c.warnings], []);
  assert.ok(Object.isFrozen(c));
});

test("per-OS data dirs", () => {
  assert.equal(defaultDataDir({ HOME: "/h" }, "linux"), "/h/.local/share/seed-daemon");
  assert.equal(defaultDataDir({ HOME: "/h", XDG_DATA_HOME: "/x" }, "linux"), "/x/seed-daemon");
  assert.equal(
    defaultDataDir({ HOME: "/h" }, "darwin"),
    "/h/Library/Application Support/seed-daemon",
  );
});

test("per-OS config dirs (a generated KEK lives there), never the default data dir", () => {
  assert.equal(defaultConfigDir({ HOME: "/h" }, "linux"), "/h/.config/seed-daemon");
  assert.equal(defaultConfigDir({ HOME: "/h", XDG_CONFIG_HOME: "/c" }, "linux"), "/c/seed-daemon");
  assert.equal(
    defaultConfigDir({ HOME: "/h", XDG_CONFIG_HOME: "rel" }, "linux"),
    "/h/.config/seed-daemon",
  );
  assert.equal(defaultConfigDir({ HOME: "/h" }, "darwin"), "/h/Library/Preferences/seed-daemon");
  assert.equal(
    defaultConfigDir({ HOME: "C:\\Users\\u", APPDATA: "C:\\Users\\u\\AppData\\Roaming" }, "win32"),
    join("C:\\Users\\u\\AppData\\Roaming", "seed-daemon"),
  );
  for (const platform of ["linux", "darwin", "win32"] as const) {
    const env = { HOME: "/h", APPDATA: "/h/AppData/Roaming", LOCALAPPDATA: "/h/AppData/Local" };
    assert.notEqual(defaultConfigDir(env, platform), defaultDataDir(env, platform), platform);
  }
});

test("env fallbacks, and flags win over env", () => {
  const env = {
    HOME: "/h",
    SEED_DAEMON_DATA_DIR: "/data",
    SEED_DAEMON_HTTP_ADDR: "0.0.0.0:1",
    SEED_DAEMON_GRPC_ADDR: "[::1]:2",
    SEED_DAEMON_ALLOWED_HOSTS: "a.example, B.example:9",
    SEED_DAEMON_CORS_ORIGINS: "https://x.example",
    SEED_DAEMON_PUBLIC_ONLY: "true",
  };
  const c = resolveConfig({}, env);
  assert.equal(c.dataDir, "/data");
  assert.deepEqual(c.httpAddr, { host: "0.0.0.0", port: 1 });
  assert.deepEqual(c.grpcAddr, { host: "::1", port: 2 });
  assert.deepEqual([...c.allowedHosts], ["a.example", "b.example:9"]);
  assert.deepEqual([...c.corsOrigins], ["null", "app://seed", "https://x.example"]);
  assert.equal(c.publicOnly, true);
  assert.equal(c.warnings.length, 1, "non-loopback bind warns");
  const f = resolveConfig(
    { dataDir: "/flag", httpAddr: "127.0.0.1:3", allowedHost: ["z.example"], corsOrigin: [] },
    env,
  );
  assert.equal(f.dataDir, "/flag");
  assert.deepEqual(f.httpAddr, { host: "127.0.0.1", port: 3 });
  assert.deepEqual([...f.allowedHosts], ["z.example"]);
});

test("deprecated port flags force 127.0.0.1 and warn", () => {
  const c = resolveConfig({ httpPort: "0", httpAddr: "0.0.0.0:9" }, { HOME: "/h" });
  assert.deepEqual(c.httpAddr, { host: "127.0.0.1", port: 0 });
  assert.match(c.warnings.join("\n"), /--http-port is deprecated/);
});

test("bad values throw a ConfigError naming the flag", () => {
  const cases: Array<[Parameters<typeof resolveConfig>[0], string]> = [
    [{ httpAddr: "localhost" }, "--http-addr"],
    [{ httpAddr: "[zz]:1" }, "--http-addr"],
    [{ grpcAddr: "1.2.3.4:70000" }, "--grpc-addr"],
    [{ grpcPort: "x" }, "--grpc-port"],
    [{ logLevel: "verbose" }, "--log-level"],
    [{ maxRequestBytes: "12" }, "--max-request-bytes"],
    [{ maxRequestBytes: "1e6" }, "--max-request-bytes"],
    [{ maxConnections: "0" }, "--max-connections"],
    [{ maxConnections: "many" }, "--max-connections"],
    [{ h2IdleTimeoutMs: "1" }, "--h2-idle-timeout-ms"],
    [{ allowedHost: ["a/b"] }, "--allowed-host"],
    [{ allowedHost: ["*.x"] }, "--allowed-host"],
    [{ httpAddr: "127.0.0.1:5", grpcAddr: "127.0.0.1:5" }, "--grpc-addr"],
    [{ dataDir: " " }, "--data-dir"],
  ];
  for (const [raw, flag] of cases) {
    assert.throws(
      () => resolveConfig(raw, { HOME: "/h" }),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith(flag),
      JSON.stringify(raw),
    );
  }
});

test("--max-connections (env SEED_DAEMON_MAX_CONNECTIONS) and the HTTP/2 idle bound", () => {
  const d = resolveConfig({}, { HOME: "/h" });
  assert.equal(d.maxConnections, 512);
  assert.equal(d.h2IdleTimeoutMs, 30_000);
  const env = { HOME: "/h", SEED_DAEMON_MAX_CONNECTIONS: "64" };
  assert.equal(resolveConfig({}, env).maxConnections, 64);
  assert.equal(resolveConfig({ maxConnections: "8" }, env).maxConnections, 8);
  assert.equal(resolveConfig({ h2IdleTimeoutMs: "250" }, env).h2IdleTimeoutMs, 250);
  assert.throws(
    () => resolveConfig({}, { HOME: "/h", SEED_DAEMON_MAX_CONNECTIONS: "-1" }),
    /--max-connections/,
  );
});
