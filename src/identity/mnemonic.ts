import { pbkdf2Sync } from "node:crypto";
import { generateMnemonic as bip39Generate, validateMnemonic as bip39Validate } from "@scure/bip39";
import { wordlist as english } from "@scure/bip39/wordlists/english.js";
import { IdentityError } from "./errors.js";

/** Word counts BIP-39 defines (128 to 256 bits of entropy in 32-bit steps). */
export const MNEMONIC_WORD_COUNTS: readonly number[] = [12, 15, 18, 21, 24];

/** Word count used when a caller asks for 0 (proto3 sends an unset `word_count` as 0). */
export const DEFAULT_MNEMONIC_WORD_COUNT = 12;

// A Set makes the per-word membership check O(1); the wordlist is 2048 entries.
const englishWords: ReadonlySet<string> = new Set(english);

/**
 * Generates a fresh BIP-39 English mnemonic from the platform CSPRNG.
 *
 * @param wordCount - 12, 15, 18, 21 or 24; 0 means {@link DEFAULT_MNEMONIC_WORD_COUNT}.
 * @returns the words, in order.
 * @throws {IdentityError} `invalid_argument` for any other word count.
 */
export function generateMnemonic(wordCount: number = DEFAULT_MNEMONIC_WORD_COUNT): string[] {
  const count = wordCount === 0 ? DEFAULT_MNEMONIC_WORD_COUNT : wordCount;
  if (!MNEMONIC_WORD_COUNTS.includes(count)) {
    throw new IdentityError(
      "invalid_argument",
      `word count must be one of ${MNEMONIC_WORD_COUNTS.join(", ")} (or 0 for ${DEFAULT_MNEMONIC_WORD_COUNT})`,
    );
  }
  // Every 3 words carry 32 bits of entropy plus 1 checksum bit.
  const strengthBits = (count / 3) * 32;
  return bip39Generate(english, strengthBits).split(" ");
}

/**
 * Checks that `words` is a valid BIP-39 English mnemonic: an allowed word count, every word in
 * the wordlist (exact, lower-case), and a matching checksum.
 *
 * Messages name a word's position but never the word: a rejected mnemonic is usually a real one
 * with a typo, and it must not end up in a log.
 *
 * @param words - the mnemonic, one word per element.
 * @throws {IdentityError} `invalid_argument` when the mnemonic is not valid.
 */
export function validateMnemonic(words: readonly string[]): void {
  if (!Array.isArray(words) || !MNEMONIC_WORD_COUNTS.includes(words.length)) {
    const got = Array.isArray(words) ? words.length : 0;
    throw new IdentityError(
      "invalid_argument",
      `invalid mnemonic: expected ${MNEMONIC_WORD_COUNTS.join(", ")} words, got ${got}`,
    );
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (typeof word !== "string" || !englishWords.has(word)) {
      throw new IdentityError(
        "invalid_argument",
        `invalid mnemonic: word ${i + 1} is not in the BIP-39 English wordlist`,
      );
    }
  }
  if (!bip39Validate(words.join(" "), english)) {
    throw new IdentityError("invalid_argument", "invalid mnemonic: checksum mismatch");
  }
}

/**
 * Computes the 64-byte BIP-39 seed: PBKDF2-HMAC-SHA512, 2048 rounds, password = the words joined
 * by single spaces, salt = "mnemonic" + passphrase, both NFKD-normalised.
 *
 * The mnemonic is validated first: BIP-39 would happily stretch a mistyped phrase, and the user
 * would silently end up with a different, empty account.
 *
 * @param words - a valid BIP-39 English mnemonic.
 * @param passphrase - optional BIP-39 passphrase ("25th word"); empty means none.
 * @returns the 64-byte seed; the caller should zero it once it is done with it.
 * @throws {IdentityError} `invalid_argument` when the mnemonic is not valid.
 */
export function mnemonicToSeed(words: readonly string[], passphrase = ""): Uint8Array {
  validateMnemonic(words);
  const password = Buffer.from(words.join(" ").normalize("NFKD"), "utf8");
  const salt = Buffer.from(`mnemonic${passphrase}`.normalize("NFKD"), "utf8");
  try {
    // node:crypto's native PBKDF2 is ~100x faster than a JS one and does not hold the event loop
    // for long at 2048 rounds.
    return new Uint8Array(pbkdf2Sync(password, salt, 2048, 64, "sha512"));
  } finally {
    password.fill(0);
    salt.fill(0);
  }
}
