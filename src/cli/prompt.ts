/**
 * Reading secrets (mnemonics, passphrases, passwords) for the CLI: from piped stdin, or from a
 * terminal prompt that does not echo. Never from argv: the command line of a process is visible
 * to every user of the machine (`ps`, `/proc/<pid>/cmdline`) and lands in shell history.
 *
 * @module
 */

import { StringDecoder } from "node:string_decoder";
import { CliError } from "./client-command.js";

/** Most bytes read from stdin for secrets: a few lines of text, never a file. */
export const MAX_SECRET_INPUT_BYTES = 64 * 1024;

/** Streams the helpers read from and prompt on; the process's own by default. */
export interface PromptStreams {
  /** Where secrets come from. */
  readonly input?: NodeJS.ReadStream;
  /** Where prompts go: stderr, so stdout stays clean for `--json`. */
  readonly output?: NodeJS.WritableStream;
}

/** True when stdin is an interactive terminal (secrets are then prompted for). */
export function stdinIsTTY(input: NodeJS.ReadStream = process.stdin): boolean {
  return input.isTTY === true;
}

/**
 * Reads stdin to its end.
 *
 * @param maxBytes - more than this is refused instead of buffered.
 * @param what - what the input is, for the error message.
 * @throws {CliError} when stdin holds more than `maxBytes`.
 */
export async function readAllStdin(
  maxBytes: number,
  what: string,
  input: NodeJS.ReadStream = process.stdin,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of input) {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
      total += buf.length;
      chunks.push(buf);
      if (total > maxBytes) {
        input.destroy();
        throw new CliError(`${what} on stdin is larger than ${maxBytes} bytes`, 2);
      }
    }
    return Buffer.concat(chunks);
  } finally {
    for (const c of chunks) c.fill(0);
  }
}

/**
 * Reads piped stdin as text and returns its first `count` lines (`\n` or `\r\n` separated);
 * missing lines are empty strings. Nothing is trimmed but the line ends: a passphrase may
 * legitimately start or end with a space.
 */
export async function readStdinLines(
  count: number,
  input: NodeJS.ReadStream = process.stdin,
): Promise<string[]> {
  const buf = await readAllStdin(MAX_SECRET_INPUT_BYTES, "input", input);
  try {
    const lines = buf.toString("utf8").split("\n", count);
    return Array.from({ length: count }, (_, i) => (lines[i] ?? "").replace(/\r$/, ""));
  } finally {
    buf.fill(0);
  }
}

/**
 * Asks for a secret on the terminal with echo turned off (raw mode). Enter or Ctrl-D ends the
 * input, Backspace deletes, Ctrl-U clears, Ctrl-C aborts; arrow keys and other escape
 * sequences are ignored.
 *
 * @param question - shown on `output` before reading.
 * @throws {CliError} when stdin is not a terminal, or with exit code 130 on Ctrl-C.
 */
export function promptSecret(question: string, streams: PromptStreams = {}): Promise<string> {
  const input = streams.input ?? process.stdin;
  const output = streams.output ?? process.stderr;
  if (!stdinIsTTY(input) || typeof input.setRawMode !== "function") {
    return Promise.reject(new CliError("cannot prompt: stdin is not a terminal", 2));
  }
  return new Promise((resolve, reject) => {
    const chars: string[] = [];
    const decoder = new StringDecoder("utf8");
    const wasRaw = input.isRaw;
    // 0: normal, 1: after ESC, 2: inside a CSI/SS3 sequence (skip up to its final byte).
    let escState = 0;
    const finish = (err?: Error) => {
      input.off("data", onData);
      input.setRawMode(wasRaw);
      input.pause();
      output.write("\n");
      if (err === undefined) resolve(chars.join(""));
      else reject(err);
      chars.length = 0;
    };
    const onData = (data: Buffer | string) => {
      const text = typeof data === "string" ? data : decoder.write(data);
      if (typeof data !== "string") data.fill(0);
      for (const ch of text) {
        if (escState === 1) {
          escState = ch === "[" || ch === "O" ? 2 : 0;
          continue;
        }
        if (escState === 2) {
          if (ch >= "@" && ch <= "~") escState = 0;
          continue;
        }
        switch (ch) {
          case "\r":
          case "\n":
          case "\u0004":
            finish();
            return;
          case "\u0003":
            finish(new CliError("aborted", 130));
            return;
          case "\u007f":
          case "\b":
            chars.pop();
            break;
          case "\u0015":
            chars.length = 0;
            break;
          case "\u001b":
            escState = 1;
            break;
          default:
            if (ch >= " ") chars.push(ch);
        }
      }
    };
    output.write(question);
    input.setRawMode(true);
    input.on("data", onData);
    input.resume();
  });
}

/**
 * A new secret typed twice on the terminal (a typo in a new password or passphrase is not
 * recoverable). An empty first answer is returned as is, without asking again.
 *
 * @throws {CliError} when the two answers differ.
 */
export async function promptNewSecret(
  question: string,
  streams: PromptStreams = {},
): Promise<string> {
  const first = await promptSecret(question, streams);
  if (first === "") return first;
  const second = await promptSecret("repeat: ", streams);
  if (second !== first) throw new CliError("the two entries do not match", 2);
  return first;
}

/**
 * One secret line: prompted without echo when stdin is a terminal, else the first line of
 * stdin.
 */
export async function readSecretLine(
  question: string,
  streams: PromptStreams = {},
): Promise<string> {
  const input = streams.input ?? process.stdin;
  if (stdinIsTTY(input)) return promptSecret(question, streams);
  const [line] = await readStdinLines(1, input);
  return line ?? "";
}
