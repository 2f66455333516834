/** Longest piece of caller input an error message quotes. */
export const MAX_QUOTED = 128;

/**
 * Caller input as an error message may quote it: JSON-quoted (so control characters and quotes
 * are escaped) and cut to {@link MAX_QUOTED} characters with `…`, so an error never echoes
 * unbounded input.
 */
export function quoted(text: string): string {
  const cut = text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
  return JSON.stringify(cut);
}
