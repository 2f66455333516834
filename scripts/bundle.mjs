// The daemon's executable as one file: `npm run build` runs this after tsc. Loading the CLI from
// hundreds of small ES modules made start-up mostly module resolution and file reads (about 3x
// slower than one bundled file); docs/architecture.md, "Start-up". The libraries the package
// exports (seed-daemon/client, /web) stay tsc's separate files. Native addons stay external.
//
// The bundle is not an ES module but the body of a CommonJS module inside its wrapper function,
// `(function (exports, require, module, __filename, __dirname) {...})`: bin/seed-daemon.js compiles
// it with vm.Script, which takes V8's code cache on every Node version (Node 20 has no compile
// cache for modules), and calls it.
import { rmSync } from "node:fs";
import { build } from "esbuild";

// Code caches of an earlier build are for other bytes; bin/seed-daemon.js would never read them.
rmSync("dist/.compile-cache", { recursive: true, force: true });

await build({
  entryPoints: ["dist/cli/main.js"],
  // At dist/, the depth of dist/version.js, so the bundled `../package.json` still resolves.
  outfile: "dist/seed-daemon.js",
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  external: ["better-sqlite3", "@napi-rs/keyring"],
  // The sources are ES modules, hence strict code; the wrapper keeps it so.
  banner: {
    js: '(function (exports, require, module, __filename, __dirname) {"use strict";const __seedImportMetaUrl = require("node:url").pathToFileURL(__filename).href;',
  },
  footer: { js: "})" },
  define: { "import.meta.url": "__seedImportMetaUrl" },
  minifyWhitespace: true,
  minifySyntax: true,
  // No keepNames (it cost ~6 ms of start-up and 1.5 MiB): names stay as written but for top-level
  // collisions between modules, which esbuild suffixes. Error names the code checks are set
  // explicitly by their classes (`this.name = ...`), never taken from a function's `name`.
  keepNames: false,
  legalComments: "linked",
  logLevel: "warning",
});
