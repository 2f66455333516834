// The least that any daemon with seed-daemon's duties does before it is ready, for
// bench/startup.ts to measure in the same run: load the builtins it serves with (HTTP/1.1, h2c,
// crypto, compression), open a SQLite database in WAL mode with better-sqlite3, bind two loopback
// listeners, then write a ready line to fd 3 with the HTTP/1.1 listener's address, as the
// daemon's `--ready-fd` does. It answers every HTTP/1.1 request with 200 `{}`.
// Plain Node, no TypeScript, and CommonJS: no module loader's cost that a daemon could avoid.
//
//   node bench/startup-floor.cjs <dir>
require("node:crypto");
require("node:zlib");
const { writeSync } = require("node:fs");
const { createServer } = require("node:http");
const { createServer: createH2cServer } = require("node:http2");
const { join } = require("node:path");
const Database = require("better-sqlite3");

const db = new Database(join(process.argv[2], "floor.db"));
db.pragma("journal_mode = WAL");
db.prepare("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)").run();

const http = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json" }).end("{}");
});
const h2c = createH2cServer();
let bound = 0;
const ready = () => {
  if (++bound < 2) return;
  const httpAddr = `127.0.0.1:${http.address().port}`;
  writeSync(3, `${JSON.stringify({ ready: true, httpAddr })}\n`);
};
http.listen(0, "127.0.0.1", ready);
h2c.listen(0, "127.0.0.1", ready);
process.on("SIGTERM", () => process.exit(0));
