import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { parsePairableOrigin } from "../security/origin.js";
import {
  type CommonClientOptions,
  clientAction,
  output,
  table,
  withClientOptions,
} from "./client-command.js";

/** Options of `origins pair`. */
interface PairOptions extends CommonClientOptions {
  /** Human label stored with the pairing. */
  label?: string;
}

/** Told to the user every time a token is printed: there is no way to see it again. */
const SHOWN_ONCE_WARNING =
  "warning: this token is shown only once and cannot be retrieved later (the daemon keeps only " +
  "its hash); store it now. Pairing the origin again issues a new token and revokes this one.";

function isoTime(ts: Timestamp | undefined): string {
  return ts === undefined ? "" : timestampDate(ts).toISOString();
}

/** True for an `http://` origin whose host is not loopback. */
export function isPlainHttpRemote(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:") return false;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return !(
    host === "localhost" ||
    host.endsWith(".localhost") ||
    host === "::1" ||
    /^127\./.test(host)
  );
}

/** `seed-daemon origins …`: pair, list and revoke browser origins (master token only). */
export function registerOriginCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const origins = program
    .command("origins")
    .description("pair, list and revoke browser origins allowed to call the daemon");

  withClientOptions(
    origins
      .command("pair <origin>")
      .description(
        "pair a web origin (https://host[:port]) and print its origin-bound token, shown once",
      )
      .option("--label <label>", "human label for the origin", ""),
  ).action(
    clientAction(env, async (clients, opts: PairOptions, origin: string) => {
      const paired = await clients.daemon.pairOrigin({ origin, label: opts.label ?? "" });
      if (isPlainHttpRemote(paired.origin)) {
        process.stderr.write(
          `warning: ${paired.origin} is not HTTPS: anyone on the network path can read or change the page, and with it use this token\n`,
        );
      }
      const json = {
        origin: paired.origin,
        label: paired.label,
        createTime: isoTime(paired.createTime),
        token: paired.token,
      };
      const human = [
        `paired:  ${json.origin}`,
        ...(json.label === "" ? [] : [`label:   ${json.label}`]),
        `created: ${json.createTime}`,
        `token:   ${json.token}`,
        SHOWN_ONCE_WARNING,
      ].join("\n");
      output(opts, json, human);
    }),
  );

  withClientOptions(
    origins.command("list").description("list paired origins (never tokens)"),
  ).action(
    clientAction(env, async (clients, opts) => {
      const res = await clients.daemon.listPairedOrigins({});
      const list = res.origins.map((p) => ({
        origin: p.origin,
        label: p.label,
        createTime: isoTime(p.createTime),
      }));
      const human =
        list.length === 0
          ? "no paired origins"
          : table(
              ["ORIGIN", "PAIRED", "LABEL"],
              list.map((p) => [p.origin, p.createTime, p.label]),
            );
      output(opts, { origins: list }, human);
    }),
  );

  withClientOptions(
    origins
      .command("unpair <origin>")
      .description("revoke a paired origin and its token, with immediate effect"),
  ).action(
    clientAction(env, async (clients, opts, origin: string) => {
      await clients.daemon.unpairOrigin({ origin });
      // The RPC returns nothing; show the canonical form the daemon matched on.
      const parsed = parsePairableOrigin(origin);
      const canonical = parsed.ok ? parsed.origin : origin;
      output(opts, { origin: canonical, unpaired: true }, `unpaired: ${canonical}`);
    }),
  );
}
