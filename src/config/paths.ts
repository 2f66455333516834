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
  return join(xdg?.startsWith("/") ? xdg : join(home, ".local", "share"), "seed-daemon");
}

/**
 * The per-OS user config directory for seed-daemon: where a generated key-encryption key lives
 * (`src/identity/kek.ts`), outside the data dir so that a copy of the data dir holds no usable
 * key. Linux and the BSDs: `$XDG_CONFIG_HOME/seed-daemon` (when absolute) or
 * `~/.config/seed-daemon`; Windows: `%APPDATA%\seed-daemon`; macOS:
 * `~/Library/Preferences/seed-daemon`, because `~/Library/Application Support/seed-daemon` is
 * the default data dir there.
 */
export function defaultConfigDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const home = env.HOME && env.HOME !== "" ? env.HOME : homedir();
  if (platform === "darwin") return join(home, "Library", "Preferences", "seed-daemon");
  if (platform === "win32") {
    return join(env.APPDATA ?? join(home, "AppData", "Roaming"), "seed-daemon");
  }
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg?.startsWith("/") ? xdg : join(home, ".config"), "seed-daemon");
}
