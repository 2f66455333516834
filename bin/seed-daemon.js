#!/usr/bin/env node
import nodeModule from "node:module";
import { fileURLToPath } from "node:url";

// Node 22.1 and later can keep V8's compiled code of the bundle between starts, which saves most
// of its parse time. The cache lives inside the package, so whoever can write to it could already
// change the code itself; where the package is read-only (a container image) Node just skips it.
nodeModule.enableCompileCache?.(fileURLToPath(new URL("../dist/.compile-cache", import.meta.url)));

// The CLI bundled into one file by `npm run build` (scripts/bundle.mjs): it starts about 3x
// faster than loading dist/cli/main.js's hundreds of modules.
const { main } = await import("../dist/seed-daemon.js");

main(process.argv).then(
  (code) => {
    if (typeof code === "number") process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`seed-daemon: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
