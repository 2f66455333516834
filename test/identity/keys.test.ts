import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mnemonicToSeedSync } from "@scure/bip39";
import nacl from "tweetnacl";
import { IdentityError } from "../../src/identity/errors.js";
import {
  keyFromMnemonic,
  publicKeyFromSeed,
  SEED_ACCOUNT_PATH,
  sign,
  signingKeyFromSeed,
  verify,
} from "../../src/identity/keys.js";
import { generateMnemonic, mnemonicToSeed, validateMnemonic } from "../../src/identity/mnemonic.js";
import { principalToString } from "../../src/identity/principal.js";
import { derivePath, masterKeyFromSeed, parsePath } from "../../src/identity/slip10.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

const ABANDON_ABOUT = [...Array<string>(11).fill("abandon"), "about"];

function isInvalidArgument(err: unknown): boolean {
  return err instanceof IdentityError && err.code === "invalid_argument";
}

describe("Seed account key from a mnemonic", () => {
  it("matches the documented vector (abandon x11 about, no passphrase)", () => {
    const seed = keyFromMnemonic(ABANDON_ABOUT, "");
    assert.equal(
      principalToString(publicKeyFromSeed(seed)),
      "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f",
    );
    assert.equal(SEED_ACCOUNT_PATH, "m/44'/104109'/0'");
  });

  it("gives a different account for a different BIP-39 passphrase", () => {
    const a = publicKeyFromSeed(keyFromMnemonic(ABANDON_ABOUT, ""));
    const b = publicKeyFromSeed(keyFromMnemonic(ABANDON_ABOUT, "x"));
    assert.notEqual(hex(a), hex(b));
  });

  it("rejects an invalid mnemonic instead of deriving some key", () => {
    assert.throws(() => keyFromMnemonic(Array<string>(12).fill("abandon")), isInvalidArgument);
  });
});

describe("BIP-39", () => {
  it("computes the published seed (abandon x11 about, passphrase TREZOR)", () => {
    assert.equal(
      hex(mnemonicToSeed(ABANDON_ABOUT, "TREZOR")),
      "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
    );
  });

  it("agrees with @scure/bip39, NFKD-normalising the passphrase", () => {
    const words = generateMnemonic(24);
    // "é" precomposed vs decomposed must give the same seed.
    const composed = mnemonicToSeed(words, "caf\u00e9 \u2460");
    assert.equal(hex(composed), hex(mnemonicToSeedSync(words.join(" "), "cafe\u0301 1")));
    assert.equal(hex(composed), hex(mnemonicToSeed(words, "cafe\u0301 1")));
  });

  it("generates every allowed word count, 0 meaning 12, each one valid", () => {
    for (const n of [12, 15, 18, 21, 24]) {
      const words = generateMnemonic(n);
      assert.equal(words.length, n);
      validateMnemonic(words);
    }
    assert.equal(generateMnemonic(0).length, 12);
    assert.notDeepEqual(generateMnemonic(12), generateMnemonic(12));
  });

  it("refuses other word counts", () => {
    for (const n of [1, 11, 13, 25, -12, 12.5, Number.NaN]) {
      assert.throws(() => generateMnemonic(n), isInvalidArgument, `word count ${n}`);
    }
  });

  it("rejects a bad checksum, an unknown word and a wrong length without echoing words", () => {
    const cases: string[][] = [
      Array<string>(12).fill("abandon"), // checksum mismatch
      [...ABANDON_ABOUT.slice(0, 11), "zzzzqqq"],
      ["Abandon", ...ABANDON_ABOUT.slice(1)], // the wordlist is lower-case
      ABANDON_ABOUT.slice(0, 11),
    ];
    for (const words of cases) {
      assert.throws(
        () => validateMnemonic(words),
        (err: unknown) =>
          isInvalidArgument(err) && !/abandon|about|zzzzqqq/i.test((err as Error).message),
      );
    }
    validateMnemonic(ABANDON_ABOUT);
  });
});

// SLIP-0010 published test vectors for ed25519 (satoshilabs/slips, slip-0010.md).
const SLIP10_VECTORS = [
  {
    seed: "000102030405060708090a0b0c0d0e0f",
    chains: [
      {
        path: "m",
        chainCode: "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
        priv: "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
        pub: "00a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed",
      },
      {
        path: "m/0'",
        chainCode: "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
        priv: "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
        pub: "008c8a13df77a28f3445213a0f432fde644acaa215fc72dcdf300d5efaa85d350c",
      },
      {
        path: "m/0'/1'",
        chainCode: "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
        priv: "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
        pub: "001932a5270f335bed617d5b935c80aedb1a35bd9fc1e31acafd5372c30f5c1187",
      },
      {
        path: "m/0'/1'/2'",
        chainCode: "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
        priv: "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
        pub: "00ae98736566d30ed0e9d2f4486a64bc95740d89c7db33f52121f8ea8f76ff0fc1",
      },
      {
        path: "m/0'/1'/2'/2'",
        chainCode: "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
        priv: "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
        pub: "008abae2d66361c879b900d204ad2cc4984fa2aa344dd7ddc46007329ac76c429c",
      },
      {
        path: "m/0'/1'/2'/2'/1000000000'",
        chainCode: "68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230",
        priv: "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793",
        pub: "003c24da049451555d51a7014a37337aa4e12d41e485abccfa46b47dfb2af54b7a",
      },
    ],
  },
  {
    seed: "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
    chains: [
      {
        path: "m",
        chainCode: "ef70a74db9c3a5af931b5fe73ed8e1a53464133654fd55e7a66f8570b8e33c3b",
        priv: "171cb88b1b3c1db25add599712e36245d75bc65a1a5c9e18d76f9f2b1eab4012",
        pub: "008fe9693f8fa62a4305a140b9764c5ee01e455963744fe18204b4fb948249308a",
      },
      {
        path: "m/0'",
        chainCode: "0b78a3226f915c082bf118f83618a618ab6dec793752624cbeb622acb562862d",
        priv: "1559eb2bbec5790b0c65d8693e4d0875b1747f4970ae8b650486ed7470845635",
        pub: "0086fab68dcb57aa196c77c5f264f215a112c22a912c10d123b0d03c3c28ef1037",
      },
      {
        path: "m/0'/2147483647'",
        chainCode: "138f0b2551bcafeca6ff2aa88ba8ed0ed8de070841f0c4ef0165df8181eaad7f",
        priv: "ea4f5bfe8694d8bb74b7b59404632fd5968b774ed545e810de9c32a4fb4192f4",
        pub: "005ba3b9ac6e90e83effcd25ac4e58a1365a9e35a3d3ae5eb07b9e4d90bcf7506d",
      },
      {
        path: "m/0'/2147483647'/1'",
        chainCode: "73bd9fff1cfbde33a1b846c27085f711c0fe2d66fd32e139d3ebc28e5a4a6b90",
        priv: "3757c7577170179c7868353ada796c839135b3d30554bbb74a4b1e4a5a58505c",
        pub: "002e66aa57069c86cc18249aecf5cb5a9cebbfd6fadeab056254763874a9352b45",
      },
      {
        path: "m/0'/2147483647'/1'/2147483646'",
        chainCode: "0902fe8a29f9140480a00ef244bd183e8a13288e4412d8389d140aac1794825a",
        priv: "5837736c89570de861ebc173b1086da4f505d4adb387c6a1b1342d5e4ac9ec72",
        pub: "00e33c0f7d81d843c572275f287498e8d408654fdf0d1e065b84e2e6f157aab09b",
      },
      {
        path: "m/0'/2147483647'/1'/2147483646'/2'",
        chainCode: "5d70af781f3a37b829f0d060924d5e960bdc02e85423494afc0b1a41bbe196d4",
        priv: "551d333177df541ad876a60ea71f00447931c0a9da16f227c11ea080d7391b8d",
        pub: "0047150c75db263559a70d5778bf36abbab30fb061ad69f69ece61a72b0cfa4fc0",
      },
    ],
  },
];

describe("SLIP-0010 Ed25519", () => {
  SLIP10_VECTORS.forEach((vector, i) => {
    for (const chain of vector.chains) {
      it(`test vector ${i + 1}, chain ${chain.path}`, () => {
        const node = derivePath(unhex(vector.seed), chain.path);
        assert.equal(hex(node.chainCode), chain.chainCode);
        assert.equal(hex(node.key), chain.priv);
        // SLIP-10 writes Ed25519 public keys as 0x00 || A.
        assert.equal(`00${hex(publicKeyFromSeed(node.key))}`, chain.pub);
      });
    }
  });

  it("accepts h and H as hardened markers", () => {
    const seed = unhex(SLIP10_VECTORS[0]?.seed ?? "");
    assert.equal(hex(derivePath(seed, "m/0h/1H/2'").key), hex(derivePath(seed, "m/0'/1'/2'").key));
  });

  it("rejects non-hardened and malformed paths", () => {
    const seed = unhex(SLIP10_VECTORS[0]?.seed ?? "");
    for (const path of [
      "m/0",
      "m/44'/0",
      "",
      "M/0'",
      "0'",
      "m/",
      "m//0'",
      "m/01'",
      "m/-1'",
      "m/2147483648'",
      "m/0''",
      "m/0'/",
      "m/ 0'",
    ]) {
      assert.throws(() => derivePath(seed, path), isInvalidArgument, JSON.stringify(path));
    }
    assert.deepEqual(parsePath("m"), []);
    assert.deepEqual(parsePath("m/2147483647'"), [0xffffffff]);
  });

  it("rejects seeds shorter than 16 or longer than 64 bytes", () => {
    assert.throws(() => masterKeyFromSeed(new Uint8Array(15)), isInvalidArgument);
    assert.throws(() => masterKeyFromSeed(new Uint8Array(65)), isInvalidArgument);
    masterKeyFromSeed(new Uint8Array(16));
    masterKeyFromSeed(new Uint8Array(64));
  });
});

describe("Ed25519 signatures (node:crypto)", () => {
  it("matches RFC 8032 test 1", () => {
    const seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    assert.equal(
      hex(publicKeyFromSeed(seed)),
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    );
    assert.equal(
      hex(sign(seed, new Uint8Array(0))),
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
  });

  it("agrees with tweetnacl on public keys and signatures, both ways", () => {
    for (let i = 0; i < 8; i++) {
      const seed = nacl.randomBytes(32);
      const data = nacl.randomBytes(i * 37);
      const pair = nacl.sign.keyPair.fromSeed(seed);
      const pub = publicKeyFromSeed(seed);
      assert.equal(hex(pub), hex(pair.publicKey));
      const sig = sign(seed, data);
      assert.equal(sig.length, 64);
      assert.ok(nacl.sign.detached.verify(data, sig, pair.publicKey));
      assert.ok(verify(pub, data, nacl.sign.detached(data, pair.secretKey)));
    }
  });

  it("rejects a signature over other data, by another key, or malformed", () => {
    const seed = keyFromMnemonic(ABANDON_ABOUT);
    const pub = publicKeyFromSeed(seed);
    const data = new TextEncoder().encode("hello");
    const sig = sign(seed, data);
    assert.ok(verify(pub, data, sig));
    assert.equal(verify(pub, new TextEncoder().encode("hellp"), sig), false);
    const flipped = sig.slice();
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    assert.equal(verify(pub, data, flipped), false);
    assert.equal(verify(publicKeyFromSeed(new Uint8Array(32)), data, sig), false);
    assert.equal(verify(pub, data, sig.subarray(0, 63)), false);
    assert.equal(verify(pub.subarray(0, 31), data, sig), false);
  });

  it("an imported SigningKey derives its public key itself and signs repeatedly, as tweetnacl", () => {
    const seed = nacl.randomBytes(32);
    const pair = nacl.sign.keyPair.fromSeed(seed);
    const key = signingKeyFromSeed(seed);
    assert.equal(hex(key.publicKey), hex(pair.publicKey));
    // The seed buffer is not retained: zeroing it afterwards changes nothing.
    seed.fill(0);
    for (let i = 0; i < 4; i++) {
      const data = nacl.randomBytes(1 + i * 100);
      const sig = key.sign(data);
      assert.equal(sig.length, 64);
      assert.equal(hex(sig), hex(nacl.sign.detached(data, pair.secretKey)));
    }
    assert.throws(() => signingKeyFromSeed(new Uint8Array(33)), isInvalidArgument);
  });

  it("refuses seeds that are not 32 bytes", () => {
    assert.throws(() => publicKeyFromSeed(new Uint8Array(31)), isInvalidArgument);
    assert.throws(() => sign(new Uint8Array(64), new Uint8Array(1)), isInvalidArgument);
  });
});
