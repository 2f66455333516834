// The daemon's executable as one file: `npm run build` runs this after tsc. Loading the CLI from
// hundreds of small ES modules made start-up mostly module resolution and file reads (about 3x
// slower than one bundled file); docs/architecture.md, "Start-up". The libraries the package
// exports (seed-daemon/client, /web) stay tsc's separate files. Native addons stay external.
import { build } from "esbuild";

await build({
  entryPoints: ["dist/cli/main.js"],
  // At dist/, the depth of dist/version.js, so the bundled `../package.json` still resolves.
  outfile: "dist/seed-daemon.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "@napi-rs/keyring"],
  // Some dependencies are CommonJS and call require(); give the ES module bundle one.
  banner: {
    js: 'import { createRequire as __seedCreateRequire } from "node:module"; const require = __seedCreateRequire(import.meta.url);',
  },
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: "linked",
  logLevel: "warning",
});
