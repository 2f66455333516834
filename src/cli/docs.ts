/**
 * `seed-daemon docs …`: client subcommands that read documents from the running daemon.
 *
 * Paths are typed and shown the way Seed writes them: `/a/b`, with the home document (the
 * wire's empty path) shown as `/`. On input `/` and an omitted path both mean home, and a
 * missing leading `/` is added (`notes` is `/notes`); anything else is left to the daemon, which
 * refuses a malformed path. Tables and the text form of a document escape control characters
 * (see {@link printable}); `--json` prints the daemon's messages as proto JSON, every field
 * present.
 *
 * @module
 */

import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  type BlockNode,
  type Document,
  DocumentChangeInfoSchema,
  DocumentListItemSchema,
  DocumentSchema,
  ResourceVisibility,
} from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import {
  allPages,
  type CommonClientOptions,
  clientAction,
  output,
  printable,
  table,
  withClientOptions,
} from "./client-command.js";
import type { DaemonClients } from "./connect.js";

/** Options of the list commands: `--page-size` is hidden, for tests and slow links. */
export interface PagedOptions extends CommonClientOptions {
  pageSize?: number;
}

interface GetOptions extends CommonClientOptions {
  version?: string;
}

interface HistoryOptions extends PagedOptions {
  version?: string;
}

/** A path as the user typed it, as the daemon wants it: `""` and `/` are home (`""`). */
export function documentPath(input: string | undefined): string {
  if (input === undefined || input === "" || input === "/") return "";
  return input.startsWith("/") ? input : `/${input}`;
}

/** A wire path as tables show it: home is `/`. */
export function displayPath(path: string): string {
  return path === "" ? "/" : printable(path);
}

/** RFC 3339 in UTC, or `""` for an absent time. */
export function isoTime(ts: Timestamp | undefined): string {
  return ts === undefined ? "" : timestampDate(ts).toISOString();
}

/** A message as proto JSON with every field present (so a home document's `path` is `""`). */
export function messageJson<D extends DescMessage>(schema: D, message: MessageShape<D>) {
  return toJson(schema, message, { alwaysEmitImplicit: true });
}

/** Parses the hidden `--page-size`. */
export function parsePageSize(value: string): number {
  if (!/^[1-9]\d{0,3}$/.test(value)) throw new InvalidArgumentError("expected 1 to 9999");
  return Number(value);
}

/** The hidden `--page-size` option the list commands share. */
export function pageSizeOption(): Option {
  return new Option("--page-size <n>", "entries per RPC page (default: the daemon's)")
    .argParser(parsePageSize)
    .hideHelp();
}

/** The accounts of the daemon's keys, in ListKeys order, each once. */
export async function localAccounts(clients: DaemonClients): Promise<string[]> {
  const res = await clients.daemon.listKeys({});
  return [...new Set(res.keys.map((k) => k.accountId))];
}

function visibilityName(v: ResourceVisibility): string {
  switch (v) {
    case ResourceVisibility.PUBLIC:
      return "public";
    case ResourceVisibility.PRIVATE:
      return "private";
    default:
      return "unspecified";
  }
}

/** The lines of a (possibly multi-line) text, each made printable. */
function textLines(text: string): string[] {
  return text.split(/\r\n|\n|\r/).map(printable);
}

/**
 * The block tree as indented text: one `Type #id: text` line per block (a link after the text
 * in `<…>`, further lines of a multi-line text aligned under its first), children two spaces
 * deeper than their parent.
 */
export function blockTree(nodes: readonly BlockNode[], depth = 1): string[] {
  const out: string[] = [];
  for (const node of nodes) {
    const indent = "  ".repeat(depth);
    const block = node.block;
    const head = `${printable(block?.type || "Block")} #${printable(block?.id ?? "")}`;
    const [first = "", ...rest] = textLines(block?.text ?? "");
    const link = block?.link ? ` <${printable(block.link)}>` : "";
    out.push(`${indent}${head}:${first === "" ? "" : ` ${first}`}${link}`.trimEnd());
    // Continuation lines line up under the first line's text, right of any child's `Type`.
    const under = " ".repeat(indent.length + head.length + 2);
    for (const line of rest) out.push(`${under}${line}`.trimEnd());
    out.push(...blockTree(node.children, depth + 1));
  }
  return out;
}

/** The text form of `docs get`: fields, metadata, then the block tree. */
export function documentText(doc: Document): string {
  const metadata = Object.entries(doc.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = [
    `account:    ${doc.account}`,
    `path:       ${displayPath(doc.path)}`,
    `visibility: ${visibilityName(doc.visibility)}`,
    `version:    ${doc.version}`,
    `authors:    ${doc.authors.join(", ")}`,
    `created:    ${isoTime(doc.createTime)}`,
    `updated:    ${isoTime(doc.updateTime)}`,
  ];
  if (metadata.length === 0) lines.push("metadata:   (none)");
  else {
    lines.push("metadata:");
    for (const [k, v] of metadata) {
      const [first = "", ...rest] = textLines(v);
      const key = `  ${printable(k)}: `;
      const under = " ".repeat(key.length);
      lines.push(`${key}${first}`.trimEnd(), ...rest.map((l) => `${under}${l}`.trimEnd()));
    }
  }
  if (doc.content.length === 0) lines.push("content:    (empty)");
  else lines.push("content:", ...blockTree(doc.content));
  return lines.join("\n");
}

/** Registers `seed-daemon docs …`. */
export function registerDocCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const docs = program
    .command("docs")
    .description("list documents, show one, and show its history (home is shown as /)");

  withClientOptions(
    docs
      .command("list [account]")
      .description("list an account's documents, or those of every local key's account")
      .addOption(pageSizeOption()),
  ).action(
    clientAction(env, async (clients, opts: PagedOptions, account: string | undefined) => {
      const accounts = account === undefined ? await localAccounts(clients) : [account];
      const items = [];
      for (const a of accounts) {
        items.push(
          ...(await allPages(
            (pageToken) =>
              clients.documents.listDocuments({
                account: a,
                pageToken,
                pageSize: opts.pageSize ?? 0,
              }),
            (res) => res.documents,
          )),
        );
      }
      const human =
        items.length === 0
          ? "no documents"
          : table(
              ["ACCOUNT", "PATH", "TITLE", "VISIBILITY", "UPDATED", "VERSION"],
              items.map((d) => [
                d.account,
                displayPath(d.path),
                printable(d.metadata.title ?? ""),
                visibilityName(d.visibility),
                isoTime(d.updateTime),
                d.version,
              ]),
            );
      output(opts, { documents: items.map((d) => messageJson(DocumentListItemSchema, d)) }, human);
    }),
  );

  withClientOptions(
    docs
      .command("get <account> [path]")
      .description("show a document's metadata and blocks (path: /a/b; default: home)")
      .option("--version <version>", "show this version instead of the current one"),
  ).action(
    clientAction(env, async (clients, opts: GetOptions, account: string, path?: string) => {
      const doc = await clients.documents.getDocument({
        account,
        path: documentPath(path),
        version: opts.version ?? "",
      });
      output(opts, messageJson(DocumentSchema, doc), documentText(doc));
    }),
  );

  withClientOptions(
    docs
      .command("history <account> [path]")
      .description("list a document's changes, newest first (path: /a/b; default: home)")
      .option("--version <version>", "list from this version instead of the current one")
      .addOption(pageSizeOption()),
  ).action(
    clientAction(env, async (clients, opts: HistoryOptions, account: string, path?: string) => {
      const changes = await allPages(
        (pageToken) =>
          clients.documents.listDocumentChanges({
            account,
            path: documentPath(path),
            version: opts.version ?? "",
            pageToken,
            pageSize: opts.pageSize ?? 0,
          }),
        (res) => res.changes,
      );
      const human =
        changes.length === 0
          ? "no changes"
          : table(
              ["ID", "AUTHOR", "TIME", "DEPS"],
              changes.map((c) => [c.id, c.author, isoTime(c.createTime), String(c.deps.length)]),
            );
      output(
        opts,
        { changes: changes.map((c) => messageJson(DocumentChangeInfoSchema, c)) },
        human,
      );
    }),
  );
}
