import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The per-OS user data directory for seed-daemon (XDG on Linux, Application Support on macOS,
 * LOCALAPPDATA on Windows).
 */
export function defaultDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const home = env.HOME && env.HOME !== "" ? env.HOME : homedir();
  if (platform === "darwin") return join(home, "Library", "Application Support", "seed-daemon");
  if (platform === "win32") {
    return join(env.LOCALAPPDATA ?? join(home, "AppData", "Local"), "seed-daemon");
  }
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && xdg.startsWith("/") ? xdg : join(home, ".local", "share"), "seed-daemon");
}
