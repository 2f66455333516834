/**
 * A minimal HTTP/2 (h2c) client on a raw socket, for header sets Node's HTTP/2 client refuses to
 * send (a field twice, such as two `authorization` fields): frames, a hand-encoded HPACK block,
 * a frame reader that acknowledges SETTINGS and PING, and one request/response exchange. Also
 * {@link settleOnce}, the resolver with a deadline that raw exchanges are built on.
 *
 * @module
 */

import { connect as netConnect, type Socket } from "node:net";

/**
 * A resolver that settles once: the first call wins, and `onTimeout()` is the value once
 * `msecs` pass. `cleanup` runs when it settles, however.
 */
export function settleOnce<T>(
  resolve: (value: T) => void,
  msecs: number,
  onTimeout: () => T,
  cleanup: () => void = () => {},
): (value: T) => void {
  let settled = false;
  const finish = (value: T) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    cleanup();
    resolve(value);
  };
  const timer = setTimeout(() => finish(onTimeout()), msecs);
  timer.unref();
  return finish;
}

/** A header field of a raw h2c request, in order; duplicates allowed. */
export type RawH2Header = readonly [name: string, value: string];

/** The answer of a raw h2c exchange. */
export type RawH2Outcome =
  | { readonly kind: "response"; readonly status: number; readonly body: string }
  | { readonly kind: "reset"; readonly detail: string }
  | { readonly kind: "timeout" };

/** An HPACK string length: an integer with a 7-bit prefix, Huffman bit clear (RFC 7541 §5.1). */
function hpackLength(n: number): number[] {
  if (n < 127) return [n];
  const out = [127];
  let rest = n - 127;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  out.push(rest);
  return out;
}

/** One HTTP/2 frame: the 9-byte header, then `payload`. */
export function h2Frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** What an h2c client sends first: the connection preface and an empty SETTINGS frame. */
export const H2_PREFACE = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
  h2Frame(0x4, 0, 0),
]);

/** A frame as {@link readH2Frames} hands it on. */
export interface H2Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/**
 * Reads the frames of a raw h2c connection as they arrive, acknowledges SETTINGS and PING as a
 * polite client does, and hands every frame to `onFrame`.
 */
export function readH2Frames(socket: Socket, onFrame: (f: H2Frame) => void): void {
  let buf = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const f: H2Frame = {
        type: buf[3] ?? 0,
        flags: buf[4] ?? 0,
        stream: buf.readUInt32BE(5) & 0x7fffffff,
        payload: buf.subarray(9, 9 + len),
      };
      buf = buf.subarray(9 + len);
      const ackable = f.type === 0x4 || f.type === 0x6;
      if (ackable && (f.flags & 0x1) === 0) {
        socket.write(h2Frame(f.type, 0x1, 0, f.type === 0x6 ? f.payload : undefined));
      }
      onFrame(f);
    }
  });
}

/** Huffman codes of the digits (RFC 7541, appendix B), enough to read a `:status` value. */
const DIGIT_CODES: readonly (readonly [bits: string, digit: string])[] = [
  ["00000", "0"],
  ["00001", "1"],
  ["00010", "2"],
  ["011001", "3"],
  ["011010", "4"],
  ["011011", "5"],
  ["011100", "6"],
  ["011101", "7"],
  ["011110", "8"],
  ["011111", "9"],
];

/** `:status` from the first field of a response header block, or undefined. */
function statusOf(block: Uint8Array): number | undefined {
  let at = 0;
  // Dynamic table size updates may come first.
  while (at < block.length && ((block[at] ?? 0) & 0xe0) === 0x20) at++;
  const first = block[at] ?? 0;
  const STATIC: Record<number, number> = {
    8: 200,
    9: 204,
    10: 206,
    11: 304,
    12: 400,
    13: 404,
    14: 500,
  };
  if (first & 0x80) return STATIC[first & 0x7f];
  const index = first & 0x40 ? first & 0x3f : first & 0x0f;
  if (index < 8 || index > 14) return undefined;
  const lenByte = block[at + 1] ?? 0;
  const len = lenByte & 0x7f;
  const value = block.subarray(at + 2, at + 2 + len);
  if ((lenByte & 0x80) === 0) return Number(Buffer.from(value).toString("latin1"));
  let bits = "";
  for (const b of value) bits += b.toString(2).padStart(8, "0");
  let digits = "";
  while (bits.length > 0) {
    const code = DIGIT_CODES.find(([c]) => bits.startsWith(c));
    if (code === undefined) break;
    digits += code[1];
    bits = bits.slice(code[0].length);
  }
  return digits.length === 3 ? Number(digits) : undefined;
}

/**
 * One request over a fresh h2c connection, with the header block encoded by hand (HPACK
 * literals, no Huffman), so any field may repeat. Reads the response's `:status` and body.
 */
export function rawH2Exchange(
  port: number,
  fields: readonly RawH2Header[],
  body?: string,
  msecs = 5_000,
): Promise<RawH2Outcome> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    let status: number | undefined;
    let data = "";
    const answer = (): RawH2Outcome => {
      if (status !== undefined) return { kind: "response", status, body: data };
      // A refusal is JSON with a known code even when `:status` could not be decoded.
      const code = /"code":"([a-z_]+)"/.exec(data)?.[1];
      const byCode: Record<string, number> = { unauthenticated: 401, permission_denied: 403 };
      const s = code === undefined ? undefined : byCode[code];
      return s === undefined
        ? { kind: "reset", detail: "no response" }
        : { kind: "response", status: s, body: data };
    };
    const finish = settleOnce(
      resolve,
      msecs,
      (): RawH2Outcome => (status === undefined ? { kind: "timeout" } : answer()),
      () => socket.destroy(),
    );
    socket.on("connect", () => {
      const block: number[] = [];
      for (const [name, value] of fields) {
        block.push(0x00, ...hpackLength(Buffer.byteLength(name)), ...Buffer.from(name));
        block.push(...hpackLength(Buffer.byteLength(value)), ...Buffer.from(value));
      }
      socket.write(
        Buffer.concat([
          H2_PREFACE,
          h2Frame(0x1, 0x4 | (body === undefined ? 0x1 : 0), 1, Uint8Array.from(block)),
          ...(body === undefined ? [] : [h2Frame(0x0, 0x1, 1, Buffer.from(body))]),
        ]),
      );
    });
    readH2Frames(socket, ({ type, flags, stream, payload }) => {
      if (stream !== 1) {
        if (type === 0x7)
          finish(status === undefined ? { kind: "reset", detail: "goaway" } : answer());
        return;
      }
      if (type === 0x1) status ??= statusOf(payload);
      if (type === 0x0) data += payload.toString("utf8");
      if (type === 0x3) {
        const rst: RawH2Outcome = { kind: "reset", detail: `rst ${payload.readUInt32BE(0)}` };
        finish(status === undefined ? rst : answer());
      } else if ((type === 0x0 || type === 0x1) && (flags & 0x1) !== 0) finish(answer());
    });
    socket.on("error", () => finish(answer()));
    socket.on("close", () => finish(answer()));
  });
}
