import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** Names a Chromium-family browser goes by on PATH. */
const PATH_NAMES = ["chromium", "chromium-browser", "google-chrome"];
const DEBIAN_CHROMIUM = "/usr/bin/chromium";
const MAC_CHROME = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The browser the real-browser suites drive: `CHROMIUM_PATH` when set (and then only that), else
 * Debian's `/usr/bin/chromium`, a Chromium or Chrome on `PATH`, else the usual macOS Chrome.
 */
export function findBrowser(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM_PATH !== undefined && env.CHROMIUM_PATH !== "") {
    return isExecutable(env.CHROMIUM_PATH) ? env.CHROMIUM_PATH : undefined;
  }
  if (isExecutable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    for (const name of PATH_NAMES) {
      const candidate = join(dir, name);
      if (existsSync(candidate) && isExecutable(candidate)) return candidate;
    }
  }
  return process.platform === "darwin" && isExecutable(MAC_CHROME) ? MAC_CHROME : undefined;
}

/** Whether a missing browser must fail the run (CI, or asked for) rather than skip it. */
export function browserRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return (
    (env.CI !== undefined && env.CI !== "" && env.CI !== "false") ||
    env.SEED_TEST_REQUIRE_BROWSER === "1"
  );
}

const HOW_TO =
  "install one (Debian: apt-get install chromium) or set CHROMIUM_PATH=/path/to/chromium";

/**
 * The `skip` option of a real-browser suite: a reason when no browser is found and none is
 * required, else false (the suite runs, and fails in {@link launchBrowser} if there is none).
 */
export function browserSkip(env: NodeJS.ProcessEnv = process.env): string | false {
  if (findBrowser(env) !== undefined || browserRequired(env)) return false;
  return `no Chromium or Chrome found: ${HOW_TO}`;
}

/** Starts the browser headless with the flags a closed, loopback-only machine needs. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findBrowser();
  if (executablePath === undefined) {
    throw new Error(
      `the browser tests are required here (CI or SEED_TEST_REQUIRE_BROWSER=1) but no browser was found: ${HOW_TO}`,
    );
  }
  return chromium.launch({
    executablePath,
    headless: true,
    timeout: 30_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
