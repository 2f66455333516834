/**
 * A bad flag, environment variable or data-dir state that stops the daemon from starting.
 * The CLI prints `message` as one line and exits with code 2.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}
