/**
 * Key methods of the Daemon service (issue 3): GenMnemonic, RegisterKey, ImportKey, ExportKey,
 * ListKeys, UpdateKey, DeleteKey, DeleteAllKeys and SignData.
 *
 * No seed passes through this module: the keystore derives, imports, signs and exports, and
 * this layer only moves names, files and signatures. Error messages come from `IdentityError`
 * (secret-free by contract) or from this module, and only ever quote key names and file paths.
 *
 * @module
 */

import { constants as fsConstants } from "node:fs";
import { access, lstat } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { AuditSubject } from "../audit/audit.js";
import {
  type Daemon,
  ExportKeyResponseSchema,
  GenMnemonicResponseSchema,
  ListKeysResponseSchema,
  NamedKeySchema,
  SignDataResponseSchema,
} from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { IdentityError } from "../identity/errors.js";
import { readHmkeyFile, writeHmkeyFile } from "../identity/hmkey.js";
import { generateMnemonic } from "../identity/mnemonic.js";
import { type NamedKeyInfo, validateKeyName } from "../store/keystore.js";
import { type AuditedCall, audited } from "./audited.js";
import type { ServiceDeps } from "./context.js";

/** Audit event names of the key methods. */
export type KeyAuditEvent =
  | "key.register"
  | "key.import"
  | "key.export"
  | "key.rename"
  | "key.delete"
  | "key.delete_all"
  | "key.sign";

/** Longest path the daemon accepts for ImportKey / ExportKey (Linux PATH_MAX). */
const MAX_PATH_LENGTH = 4096;

const PUBLIC_ONLY_MESSAGE =
  "the daemon runs in --public-only mode: only ListKeys and GenMnemonic are available";

function namedKey(info: NamedKeyInfo) {
  return create(NamedKeySchema, {
    publicKey: info.publicKey,
    name: info.name,
    accountId: info.accountId,
  });
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** A required name field: empty is invalid_argument, the rest is up to the keystore. */
function requireName(field: string, value: string): string {
  if (value === "") throw invalid(`${field} is required`);
  return value;
}

/**
 * A file path for ImportKey / ExportKey. The daemon's working directory means nothing to a
 * client (and may differ from the client's), so only absolute paths are accepted.
 */
function absolutePath(value: string): string {
  if (value === "") throw invalid("file_path is required");
  if (value.includes("\0")) throw invalid("file_path must not contain NUL characters");
  if (value.length > MAX_PATH_LENGTH) throw invalid("file_path is too long");
  if (!isAbsolute(value)) throw invalid("file_path must be an absolute path");
  return value;
}

/**
 * Turns a filesystem failure into a coded error; anything else is returned unchanged. Node's
 * own messages are not used: they are fine, but a coded message keeps the wording in one place.
 */
function fileError(err: unknown, access: "read" | "write"): unknown {
  if (err instanceof ConnectError || err instanceof IdentityError) return err;
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case "ENOENT":
      return new ConnectError(
        access === "write" ? "the directory of file_path does not exist" : "key file not found",
        Code.NotFound,
      );
    case "EACCES":
    case "EPERM":
      return new ConnectError(
        `the daemon is not allowed to ${access} file_path`,
        Code.PermissionDenied,
      );
    case "EEXIST":
    case "ELOOP":
      return new ConnectError("a file already exists at file_path", Code.AlreadyExists);
    case "ENOTDIR":
      return invalid("a parent of file_path is not a directory");
    case "EISDIR":
      return invalid("file_path is a directory");
    case "ENAMETOOLONG":
      return invalid("file_path is too long");
    case "EROFS":
      return new ConnectError("file_path is on a read-only file system", Code.FailedPrecondition);
    case "ENOSPC":
    case "EDQUOT":
      return new ConnectError("no space left to write file_path", Code.ResourceExhausted);
    default:
      return err;
  }
}

type KeyCall = AuditedCall<Extract<AuditSubject, { kind: "key" }>>;

/** An audited key call; every key method but ListKeys and GenMnemonic is refused in public-only mode. */
function keyCall(
  deps: ServiceDeps,
  event: KeyAuditEvent,
  method: string,
  name: string | undefined,
  file?: string,
): KeyCall {
  return {
    event,
    method,
    subject: { kind: "key", name, file },
    guard: () => {
      if (deps.config.publicOnly) {
        throw new ConnectError(PUBLIC_ONLY_MESSAGE, Code.FailedPrecondition);
      }
    },
  };
}

/**
 * Key methods of the Daemon service.
 *
 * In `--public-only` mode every method except ListKeys and GenMnemonic (neither reads a secret
 * nor changes anything) fails with `failed_precondition`, and the refusal is audited.
 */
export function keyService(deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  const { keystore } = deps;
  return {
    genMnemonic(req) {
      return create(GenMnemonicResponseSchema, { mnemonic: generateMnemonic(req.wordCount) });
    },

    listKeys() {
      return create(ListKeysResponseSchema, { keys: keystore.list().map(namedKey) });
    },

    async registerKey(req, ctx) {
      const call = keyCall(deps, "key.register", "RegisterKey", req.name);
      return audited(deps, ctx, call, () => {
        // Seed joins the words with single spaces before BIP-39; splitting on any white space
        // accepts the same inputs and also one element holding the whole phrase.
        const words = req.mnemonic
          .join(" ")
          .split(/\s+/)
          .filter((w) => w !== "");
        return namedKey(keystore.registerMnemonic(req.name, words, req.passphrase));
      });
    },

    async importKey(req, ctx) {
      const name = req.name === "" ? undefined : req.name;
      const call = keyCall(deps, "key.import", "ImportKey", name, req.filePath);
      return audited(deps, ctx, call, async () => {
        const path = absolutePath(req.filePath);
        if (name !== undefined) validateKeyName(name);
        let json: string;
        try {
          json = await readHmkeyFile(path);
        } catch (err) {
          throw fileError(err, "read");
        }
        const key = await keystore.importHmkey(json, req.password, name, ctx.signal);
        call.subject.name = key.name;
        return namedKey(key);
      });
    },

    async exportKey(req, ctx) {
      const call = keyCall(deps, "key.export", "ExportKey", req.name, req.filePath);
      return audited(deps, ctx, call, async () => {
        const name = requireName("name", req.name);
        const path = absolutePath(req.filePath);
        keystore.get(name);
        // Fail before the (slow, with a password) encoding; O_EXCL in writeHmkeyFile still
        // closes the race with a file created in between.
        const existing = await lstat(path).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code === "ENOENT") return false;
            throw fileError(err, "write");
          },
        );
        if (existing)
          throw new ConnectError("a file already exists at file_path", Code.AlreadyExists);
        // A directory that is missing, not a directory, not writable or read-only fails the
        // write anyway: say so now, not after a derivation that would hold the queue a second.
        await access(dirname(path), fsConstants.W_OK | fsConstants.X_OK).catch((err: unknown) => {
          throw fileError(err, "write");
        });
        const exported = await keystore.exportHmkey(name, req.password, undefined, ctx.signal);
        try {
          await writeHmkeyFile(path, exported.contents);
        } catch (err) {
          throw fileError(err, "write");
        }
        return create(ExportKeyResponseSchema, {
          filePath: path,
          publicKey: exported.key.publicKey,
        });
      });
    },

    async updateKey(req, ctx) {
      const call = keyCall(deps, "key.rename", "UpdateKey", req.currentName);
      call.detail = `new name ${JSON.stringify(req.newName)}`;
      return audited(deps, ctx, call, () => {
        const current = requireName("current_name", req.currentName);
        return namedKey(keystore.rename(current, req.newName));
      });
    },

    async deleteKey(req, ctx) {
      const call = keyCall(deps, "key.delete", "DeleteKey", req.name);
      return audited(deps, ctx, call, () => {
        keystore.delete(requireName("name", req.name));
        return create(EmptySchema);
      });
    },

    async deleteAllKeys(_req, ctx) {
      const call = keyCall(deps, "key.delete_all", "DeleteAllKeys", undefined);
      return audited(deps, ctx, call, () => {
        const count = keystore.deleteAll();
        call.detail = `deleted ${count} key${count === 1 ? "" : "s"}`;
        return create(EmptySchema);
      });
    },

    async signData(req, ctx) {
      const call = keyCall(deps, "key.sign", "SignData", req.signingKeyName);
      return audited(deps, ctx, call, () => {
        const name = requireName("signing_key_name", req.signingKeyName);
        if (req.data.length === 0) throw invalid("data must not be empty");
        return create(SignDataResponseSchema, { signature: keystore.sign(name, req.data) });
      });
    },
  };
}
