#!/usr/bin/env node
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

// The CLI bundled into one file by `npm run build` (scripts/bundle.mjs): it starts about 3x
// faster than loading dist/cli/main.js's hundreds of modules. The bundle is a CommonJS module body
// in its wrapper function; compiling it here with vm.Script lets V8 reuse the code it compiled on
// an earlier start (its code cache), on Node 20 as on later versions, which saves most of the
// parse and compile time. The cache lives inside the package, so whoever can write to it could
// already change the code itself; where the package is read-only (a container image) no cache is
// written and every start compiles. docs/architecture.md, "Start-up".
const BUNDLE = fileURLToPath(new URL("../dist/seed-daemon.js", import.meta.url));
const CACHE_DIR = join(dirname(BUNDLE), ".compile-cache");
const DIGEST_BYTES = 32;

const sha256 = (...parts) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
};

/** The cached code in `file`, or undefined if there is none or it is torn. */
function readCache(file) {
  let data;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  // V8 checks its version and flags but, in release builds, not the payload: a digest guards
  // against a torn or damaged file (not against an attacker: see above).
  const payload = data.subarray(DIGEST_BYTES);
  return sha256(payload).equals(data.subarray(0, DIGEST_BYTES)) ? payload : undefined;
}

function writeCache(file, script) {
  try {
    const payload = script.createCachedData();
    mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.concat([sha256(payload), payload]));
    renameSync(tmp, file);
  } catch {
    // A read-only package: every start compiles.
  }
}

/** Compiles the bundle (with the code cache when there is a fitting one) into its wrapper. */
function compileBundle() {
  const source = readFileSync(BUNDLE);
  // V8 takes a cache for a source of the same length; the name pins the bytes, the Node version
  // and the V8 flags the cache is for.
  const flags = `${process.version} ${process.arch} ${process.execArgv} ${process.env.NODE_OPTIONS}`;
  const key = sha256(source, flags).toString("hex").slice(0, 32);
  const file = join(CACHE_DIR, `${key}.v8`);
  const cachedData = readCache(file);
  const script = new vm.Script(source.toString("utf8"), {
    filename: BUNDLE,
    cachedData,
    importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    // Taken once start-up is over (or at exit, for a shorter run), so that it also holds the
    // functions compiled lazily until then.
    let pending = true;
    const write = () => {
      if (pending) writeCache(file, script);
      pending = false;
    };
    setTimeout(write, 1000).unref();
    process.once("exit", write);
  }
  return script.runInThisContext();
}

const bundle = { exports: {} };
compileBundle()(bundle.exports, createRequire(BUNDLE), bundle, BUNDLE, dirname(BUNDLE));
const { main } = bundle.exports;

main(process.argv).then(
  (code) => {
    if (typeof code === "number") process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`seed-daemon: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
