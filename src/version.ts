import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// This file sits one level below the package root in src/ and dist/, and so does the bundled
// executable (dist/seed-daemon.js) that inlines it: paths relative to it hold in all three.
const ROOT_URL = new URL("..", import.meta.url);

/** The package's root directory (where package.json and bin/ are). */
export const PACKAGE_ROOT: string = fileURLToPath(ROOT_URL);

/** The daemon's version, from package.json. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("package.json", ROOT_URL), "utf8")) as {
    version: string;
  }
).version;
