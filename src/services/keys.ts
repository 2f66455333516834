/**
 * Key methods of the Daemon service (issue 3): GenMnemonic, RegisterKey, ImportKey, ExportKey,
 * ListKeys, UpdateKey, DeleteKey, DeleteAllKeys and SignData.
 *
 * Seeds exist only inside the keystore and, for the length of one call, in a local buffer that
 * is zeroed when the call ends. Error messages come from `IdentityError` (secret-free by
 * contract) or from this module, and only ever quote key names and file paths.
 *
 * @module
 */

import { lstat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { AuditOutcome } from "../audit/audit.js";
import { codeName, toConnectError } from "../errors.js";
import {
  type Daemon,
  ExportKeyResponseSchema,
  GenMnemonicResponseSchema,
  ListKeysResponseSchema,
  NamedKeySchema,
  SignDataResponseSchema,
} from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { IdentityError } from "../identity/errors.js";
import { decodeHmkey, encodeHmkey, readHmkeyFile, writeHmkeyFile } from "../identity/hmkey.js";
import { keyFromMnemonic, sign } from "../identity/keys.js";
import { generateMnemonic } from "../identity/mnemonic.js";
import { principalToString } from "../identity/principal.js";
import { type NamedKeyInfo, validateKeyName } from "../store/keystore.js";
import { callerOf, type ServiceDeps } from "./context.js";

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

/** What an audited call may tell the record once it knows more (ImportKey learns its name late). */
interface AuditNote {
  keyName?: string | undefined;
  /** Extra text for the `reason` of a successful call. */
  detail?: string | undefined;
}

/**
 * Runs one audited key method and leaves exactly one record for it, whatever the outcome:
 * `ok`; `denied` for permission_denied (a wrong password) or public-only mode; `error` for the
 * rest. A failure's reason is the Connect code name and the secret-free message the client gets
 * (just `internal` for an unexpected error). `subject` (a file path) is appended when given.
 */
async function audited<T>(
  deps: ServiceDeps,
  ctx: HandlerContext,
  event: KeyAuditEvent,
  method: string,
  note: AuditNote,
  subject: string | undefined,
  run: () => T | Promise<T>,
): Promise<T> {
  const caller = callerOf(ctx);
  const withSubject = (reason: string | undefined) => {
    const parts = [reason, subject === undefined ? undefined : `file ${JSON.stringify(subject)}`];
    const text = parts.filter((p) => p !== undefined && p !== "").join("; ");
    return text === "" ? undefined : text;
  };
  const record = (outcome: AuditOutcome, reason: string | undefined) =>
    deps.audit.record({
      event,
      method,
      key_name: note.keyName,
      remote_addr: caller.remoteAddr,
      principal: caller.principal,
      outcome,
      reason: withSubject(reason),
    });
  if (deps.config.publicOnly) {
    record("denied", "failed_precondition: public-only mode");
    throw new ConnectError(PUBLIC_ONLY_MESSAGE, Code.FailedPrecondition);
  }
  let result: T;
  try {
    result = await run();
  } catch (err) {
    const ce = toConnectError(err);
    const outcome: AuditOutcome =
      ce.code === Code.PermissionDenied || ce.code === Code.Unauthenticated ? "denied" : "error";
    record(
      outcome,
      ce.code === Code.Internal ? "internal" : `${codeName(ce.code)}: ${ce.rawMessage}`,
    );
    throw err;
  }
  record("ok", note.detail);
  return result;
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
      const note: AuditNote = { keyName: req.name };
      return audited(deps, ctx, "key.register", "RegisterKey", note, undefined, () => {
        // The cheap check first: a bad name should not cost a key derivation.
        validateKeyName(req.name);
        // Seed joins the words with single spaces before BIP-39; splitting on any white space
        // accepts the same inputs and also one element holding the whole phrase.
        const words = req.mnemonic
          .join(" ")
          .split(/\s+/)
          .filter((w) => w !== "");
        const seed = keyFromMnemonic(words, req.passphrase);
        try {
          return namedKey(keystore.register(req.name, seed));
        } finally {
          seed.fill(0);
        }
      });
    },

    async importKey(req, ctx) {
      const note: AuditNote = { keyName: req.name === "" ? undefined : req.name };
      return audited(deps, ctx, "key.import", "ImportKey", note, req.filePath, async () => {
        const path = absolutePath(req.filePath);
        if (req.name !== "") validateKeyName(req.name);
        let json: string;
        try {
          json = await readHmkeyFile(path);
        } catch (err) {
          throw fileError(err, "read");
        }
        const decoded = await decodeHmkey(json, req.password);
        try {
          const name = req.name === "" ? principalToString(decoded.publicKey) : req.name;
          note.keyName = name;
          return namedKey(keystore.register(name, decoded.seed));
        } finally {
          decoded.seed.fill(0);
        }
      });
    },

    async exportKey(req, ctx) {
      const note: AuditNote = { keyName: req.name };
      return audited(deps, ctx, "key.export", "ExportKey", note, req.filePath, async () => {
        const name = requireName("name", req.name);
        const path = absolutePath(req.filePath);
        const info = keystore.get(name);
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
        const seed = keystore.getSeed(name);
        let contents: string;
        try {
          contents = await encodeHmkey(seed, req.password);
        } finally {
          seed.fill(0);
        }
        try {
          await writeHmkeyFile(path, contents);
        } catch (err) {
          throw fileError(err, "write");
        }
        return create(ExportKeyResponseSchema, { filePath: path, publicKey: info.publicKey });
      });
    },

    async updateKey(req, ctx) {
      const note: AuditNote = {
        keyName: req.currentName,
        detail: `new name ${JSON.stringify(req.newName)}`,
      };
      return audited(deps, ctx, "key.rename", "UpdateKey", note, undefined, () => {
        const current = requireName("current_name", req.currentName);
        return namedKey(keystore.rename(current, req.newName));
      });
    },

    async deleteKey(req, ctx) {
      const note: AuditNote = { keyName: req.name };
      return audited(deps, ctx, "key.delete", "DeleteKey", note, undefined, () => {
        keystore.delete(requireName("name", req.name));
        return create(EmptySchema);
      });
    },

    async deleteAllKeys(_req, ctx) {
      const note: AuditNote = {};
      return audited(deps, ctx, "key.delete_all", "DeleteAllKeys", note, undefined, () => {
        const count = keystore.deleteAll();
        note.detail = `deleted ${count} key${count === 1 ? "" : "s"}`;
        return create(EmptySchema);
      });
    },

    async signData(req, ctx) {
      const note: AuditNote = { keyName: req.signingKeyName };
      return audited(deps, ctx, "key.sign", "SignData", note, undefined, () => {
        const name = requireName("signing_key_name", req.signingKeyName);
        if (req.data.length === 0) throw invalid("data must not be empty");
        const seed = keystore.getSeed(name);
        try {
          return create(SignDataResponseSchema, { signature: sign(seed, req.data) });
        } finally {
          seed.fill(0);
        }
      });
    },
  };
}
