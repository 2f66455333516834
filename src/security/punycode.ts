import { domainToASCII } from "node:url";

// RFC 3492 parameters for IDNA.
const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
const MAX_CODE_POINT = 0x10ffff;
/** DNS labels are at most 63 octets, so their decoded forms are short too. */
const MAX_LABEL_LENGTH = 63;

function adapt(delta: number, numPoints: number, firstTime: boolean): number {
  let d = firstTime ? Math.floor(delta / DAMP) : delta >> 1;
  d += Math.floor(d / numPoints);
  let k = 0;
  while (d > ((BASE - T_MIN) * T_MAX) >> 1) {
    d = Math.floor(d / (BASE - T_MIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - T_MIN + 1) * d) / (d + SKEW));
}

function digitOf(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 26; // 0-9
  if (c >= 0x61 && c <= 0x7a) return c - 0x61; // a-z
  return -1;
}

/** RFC 3492 decoding of a lower-case punycode string, or undefined when it is malformed. */
function decode(input: string): number[] | undefined {
  const out: number[] = [];
  const delim = input.lastIndexOf("-");
  for (let j = 0; j < Math.max(delim, 0); j++) {
    const c = input.charCodeAt(j);
    if (c >= 0x80) return undefined;
    out.push(c);
  }
  let n = INITIAL_N;
  let bias = INITIAL_BIAS;
  let i = 0;
  for (let pos = delim > 0 ? delim + 1 : 0; pos < input.length; ) {
    const oldi = i;
    let w = 1;
    for (let k = BASE; ; k += BASE) {
      if (pos >= input.length) return undefined;
      const digit = digitOf(input.charCodeAt(pos++));
      if (digit < 0) return undefined;
      i += digit * w;
      if (i > MAX_CODE_POINT * (MAX_LABEL_LENGTH + 1)) return undefined;
      const t = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
      if (digit < t) break;
      w *= BASE - t;
    }
    bias = adapt(i - oldi, out.length + 1, oldi === 0);
    n += Math.floor(i / (out.length + 1));
    i %= out.length + 1;
    if (n > MAX_CODE_POINT) return undefined;
    out.splice(i, 0, n);
    i++;
  }
  return out;
}

/**
 * Whether an `xn--` label is a well-formed IDNA A-label: its punycode decodes, the result holds a
 * non-ASCII character and no control character, is in NFC, and encodes back to the same label.
 *
 * The WHATWG URL parsers of different Node releases disagree on malformed labels (Node 20
 * refuses `xn--a`, Node 24 keeps it), so origins get this one rule on every runtime instead.
 *
 * @param label - One lower-case DNS label that starts with `xn--`.
 */
export function isValidALabel(label: string): boolean {
  if (!label.startsWith("xn--") || label.length > MAX_LABEL_LENGTH) return false;
  const points = decode(label.slice(4));
  if (points === undefined || points.length === 0) return false;
  if (!points.some((p) => p >= 0x80)) return false;
  if (points.some((p) => p < 0x20 || (p >= 0x7f && p < 0xa0) || (p >= 0xd800 && p <= 0xdfff))) {
    return false;
  }
  const unicode = String.fromCodePoint(...points);
  if (unicode.normalize("NFC") !== unicode) return false;
  return domainToASCII(unicode) === label;
}

/** Whether every `xn--` label of a host name is a well-formed A-label. */
export function hasValidALabels(hostname: string): boolean {
  for (const label of hostname.split(".")) {
    if (label.startsWith("xn--") && !isValidALabel(label)) return false;
  }
  return true;
}
