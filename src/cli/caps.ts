/**
 * `seed-daemon caps …`: client subcommands that issue and list capabilities.
 *
 * A capability is signed by the space it grants rights in, so `create` names a local key and
 * the daemon takes the key's account as the space. Paths are typed and shown as in `docs`
 * (home is `/`; a capability on home that is not `--exact` covers the whole space). The role
 * and `--expires` are checked here, before anything is sent; accounts and paths are checked by
 * the daemon.
 *
 * @module
 */

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  type Capability,
  CapabilitySchema,
  Role,
} from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  allPages,
  CliError,
  type CommonClientOptions,
  clientAction,
  output,
  printable,
  table,
  withClientOptions,
} from "./client-command.js";
import {
  displayPath,
  documentPath,
  isoTime,
  localAccounts,
  messageJson,
  type PagedOptions,
  pageSizeOption,
} from "./docs.js";

interface CreateOptions extends CommonClientOptions {
  key?: string;
  delegate?: string;
  role?: Role;
  path?: string;
  exact?: boolean;
  label?: string;
  expires?: Date;
}

interface ListOptions extends PagedOptions {
  path?: string;
  delegate?: string;
  exact?: boolean;
}

const ROLES: ReadonlyMap<string, Role> = new Map([
  ["reader", Role.READER],
  ["writer", Role.WRITER],
  ["agent", Role.AGENT],
]);

/** Parses `--role`: reader, writer or agent, in any case. */
export function parseRole(value: string): Role {
  const role = ROLES.get(value.toLowerCase());
  if (role === undefined) throw new InvalidArgumentError("expected reader, writer or agent");
  return role;
}

/** How a role is shown: the `--role` spelling. */
function roleName(role: Role): string {
  for (const [name, r] of ROLES) if (r === role) return name;
  return "unspecified";
}

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const DURATION_RE = /^(?:\d{1,9}[smhdw])+$/;
const RFC3339_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
/** Latest expiry accepted: the end of year 9999, as RFC 3339 can write it. */
const MAX_EXPIRY_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const EXPIRES_HINT =
  "expected an RFC 3339 time with a zone (2030-01-31T12:00:00Z) or a duration (30d, 12h, 1w2d, 90m)";

/** True when the RFC 3339 fields name a real date and time (Date.parse rolls Feb 30 over). */
function validCalendar(m: RegExpExecArray): boolean {
  const [y, mo, d, h, mi, s, , oh = "0", om = "0"] = m.slice(1).map((x) => x ?? "0");
  const month = Number(mo);
  const daysInMonth = new Date(Date.UTC(Number(y), month, 0)).getUTCDate();
  return (
    month >= 1 &&
    month <= 12 &&
    Number(d) >= 1 &&
    Number(d) <= daysInMonth &&
    Number(h) <= 23 &&
    Number(mi) <= 59 &&
    Number(s) <= 59 &&
    Number(oh) <= 23 &&
    Number(om) <= 59
  );
}

/**
 * Parses `--expires`: an RFC 3339 time with a zone, or a duration from now made of whole
 * seconds, minutes, hours, days or weeks (`30d`, `12h`, `1w2d`). The result must be in the
 * future.
 */
export function parseExpiry(value: string, now = Date.now()): Date {
  let ms: number;
  if (DURATION_RE.test(value)) {
    let total = 0;
    for (const [, n = "0", unit = "s"] of value.matchAll(/(\d+)([smhdw])/g)) {
      total += Number(n) * (UNIT_MS[unit] ?? 0);
    }
    if (total === 0) throw new InvalidArgumentError("a duration must be longer than zero");
    ms = now + total;
  } else {
    const m = RFC3339_RE.exec(value);
    if (m === null || !validCalendar(m)) throw new InvalidArgumentError(EXPIRES_HINT);
    ms = Date.parse(value.toUpperCase());
    if (ms <= now) throw new InvalidArgumentError("the time is in the past");
  }
  if (!Number.isFinite(ms) || ms > MAX_EXPIRY_MS) {
    throw new InvalidArgumentError("the time is after the year 9999");
  }
  return new Date(ms);
}

function capabilityText(cap: Capability): string {
  return [
    `created:  ${cap.id}`,
    `account:  ${cap.account}`,
    `delegate: ${cap.delegate}`,
    `role:     ${roleName(cap.role)}`,
    `path:     ${displayPath(cap.path)}`,
    `exact:    ${cap.isExact ? "yes" : "no"}`,
    ...(cap.label === "" ? [] : [`label:    ${printable(cap.label)}`]),
    `expires:  ${cap.expireTime === undefined ? "never" : isoTime(cap.expireTime)}`,
    `issued:   ${isoTime(cap.createTime)}`,
  ].join("\n");
}

/** Registers `seed-daemon caps …`. */
export function registerCapabilityCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const caps = program
    .command("caps")
    .description("issue and list capabilities: signed grants of access to a space's documents");

  withClientOptions(
    caps
      .command("create")
      .description("issue a capability signed by a local key, in that key's account (its space)")
      .requiredOption("--key <name>", "name of the local key that signs it")
      .requiredOption("--delegate <account>", "account (z6Mk…) that receives it")
      .requiredOption("--role <role>", "reader, writer or agent", parseRole)
      .option("--path <path>", "path it grants, and everything under it (default: / = home)")
      .option("--exact", "only the path itself, not the documents under it")
      .option("--label <text>", "public label", "")
      .option(
        "--expires <when>",
        "expiry: an RFC 3339 time or a duration from now (30d, 12h, 1w2d)",
        (value: string) => parseExpiry(value),
      ),
  ).action(
    clientAction(env, async (clients, opts: CreateOptions) => {
      const cap = await clients.accessControl.createCapability({
        signingKeyName: opts.key ?? "",
        delegate: opts.delegate ?? "",
        // Empty: the daemon takes the signing key's account.
        account: "",
        path: documentPath(opts.path),
        role: opts.role ?? Role.ROLE_UNSPECIFIED,
        noRecursive: opts.exact === true,
        label: opts.label ?? "",
        ...(opts.expires !== undefined && { expireTime: timestampFromDate(opts.expires) }),
      });
      output(opts, messageJson(CapabilitySchema, cap), capabilityText(cap));
    }),
  );

  withClientOptions(
    caps
      .command("list [account]")
      .description(
        "list the capabilities of an account's space (default: every local key's account), " +
          "or with --delegate those delegated to an account",
      )
      .option("--path <path>", "only those that apply to this path (default: all)")
      .option("--exact", "with --path: only those for exactly that path, not inherited ones")
      .addOption(
        new Option(
          "--delegate <account>",
          "only those delegated to this account (an [account] argument filters them by space)",
        ).conflicts(["path", "exact"]),
      )
      .addOption(pageSizeOption()),
  ).action(
    clientAction(env, async (clients, opts: ListOptions, account: string | undefined) => {
      const pageSize = opts.pageSize ?? 0;
      let list: Capability[];
      if (opts.delegate !== undefined) {
        const delegate = opts.delegate;
        list = await allPages(
          (pageToken) =>
            clients.accessControl.listCapabilitiesForDelegate({ delegate, pageToken, pageSize }),
          (res) => res.capabilities,
        );
        if (account !== undefined) list = list.filter((c) => c.account === account);
      } else {
        // "*" is every capability of the space, whatever its path.
        const path = opts.path === undefined || opts.path === "*" ? "*" : documentPath(opts.path);
        if (opts.exact === true && path === "*") {
          // The daemon ignores ignore_inherited for "*": refuse rather than list everything.
          throw new CliError("--exact needs a --path other than *", 2);
        }
        const accounts = account === undefined ? await localAccounts(clients) : [account];
        list = [];
        for (const a of accounts) {
          list.push(
            ...(await allPages(
              (pageToken) =>
                clients.accessControl.listCapabilities({
                  account: a,
                  path,
                  ignoreInherited: opts.exact === true,
                  pageToken,
                  pageSize,
                }),
              (res) => res.capabilities,
            )),
          );
        }
      }
      const human =
        list.length === 0
          ? "no capabilities"
          : table(
              ["ID", "ROLE", "DELEGATE", "PATH", "EXACT", "EXPIRES", "LABEL"],
              list.map((c) => [
                c.id,
                roleName(c.role),
                c.delegate,
                displayPath(c.path),
                c.isExact ? "yes" : "no",
                c.expireTime === undefined ? "never" : isoTime(c.expireTime),
                printable(c.label),
              ]),
            );
      output(opts, { capabilities: list.map((c) => messageJson(CapabilitySchema, c)) }, human);
    }),
  );
}
