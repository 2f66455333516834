import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { State } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { clientAction, output, withClientOptions } from "./client-command.js";

/**
 * `seed-daemon info`: state, version, start time and the keystore's KEK source (never the key)
 * of the running daemon.
 */
export function registerInfoCommand(program: Command, env: NodeJS.ProcessEnv): void {
  withClientOptions(program.command("info").description("show the running daemon's info")).action(
    clientAction(env, async (clients, opts) => {
      const info = await clients.daemon.getInfo({});
      const startTime = info.startTime ? timestampDate(info.startTime).toISOString() : "";
      const json = {
        state: State[info.state],
        version: info.version,
        startTime,
        publicOnly: info.publicOnly,
        kekSource: info.kekSource,
        address: clients.baseUrl,
      };
      output(
        opts,
        json,
        `state:       ${json.state}\nversion:     ${json.version}\nstarted:     ${startTime}\npublic-only: ${json.publicOnly}\nkek source:  ${json.kekSource || "unknown"}\naddress:     ${clients.baseUrl}`,
      );
    }),
  );
}
