import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { principalToString } from "../../src/identity/principal.js";
import {
  canWrite,
  capabilityCovers,
  decideRead,
  isValidDocumentPath,
  pathCovers,
  type ReadCredentialKind,
  type ReadDecision,
  type ReadInput,
  type VerifiedCapability,
} from "../../src/security/read-access.js";

/** A deterministic, valid `z6Mk…` principal per name. */
function principal(name: string): string {
  return principalToString(createHash("sha256").update(name).digest());
}

const OWNER = principal("owner");
const OTHER_ACCOUNT = principal("other-account");
const ALICE = principal("alice");
const AGENT_1 = principal("agent-1");
const AGENT_2 = principal("agent-2");
const MALLORY = principal("mallory");
const LOCAL_2 = principal("local-2");
const NOW = 1_750_000_000_000;

let cidCounter = 0;
function cap(
  fields: Omit<VerifiedCapability, "cid"> & { readonly cid?: string },
): VerifiedCapability {
  return { cid: fields.cid ?? `bafycap${cidCounter++}`, ...fields };
}

interface Row {
  readonly name: string;
  readonly credential?: ReadCredentialKind;
  readonly principal?: string;
  readonly localAccounts?: readonly string[];
  readonly account?: string;
  readonly path?: string;
  readonly visibility?: "public" | "private";
  readonly caps?: readonly VerifiedCapability[];
  readonly granted: boolean;
  readonly reason: ReadDecision["reason"];
  /** CID expected in `capability`, if any. */
  readonly via?: string;
  readonly chain?: readonly string[];
}

const readerA = cap({
  cid: "c-reader-a",
  signer: OWNER,
  delegate: ALICE,
  path: "/a",
  role: "READER",
});
const writerA = cap({
  cid: "c-writer-a",
  signer: OWNER,
  delegate: ALICE,
  path: "/a",
  role: "WRITER",
});
const agentRoot1 = cap({ cid: "c-agent-1", signer: OWNER, delegate: AGENT_1, role: "AGENT" });
const agentLink2 = cap({ cid: "c-agent-2", signer: AGENT_1, delegate: ALICE, role: "AGENT" });
const agentLink2ToAgent2 = cap({
  cid: "c-agent-12",
  signer: AGENT_1,
  delegate: AGENT_2,
  role: "AGENT",
});
const agentLink3 = cap({ cid: "c-agent-3", signer: AGENT_2, delegate: ALICE, role: "AGENT" });

const rows: readonly Row[] = [
  {
    name: "public doc, web token, anonymous",
    credential: "web",
    visibility: "public",
    granted: true,
    reason: "public",
  },
  {
    name: "public doc, paired origin",
    credential: "origin",
    visibility: "public",
    granted: true,
    reason: "public",
  },
  {
    name: "public doc, master",
    credential: "master",
    localAccounts: [],
    visibility: "public",
    granted: true,
    reason: "public",
  },
  {
    name: "public doc, forwarded stranger",
    principal: MALLORY,
    visibility: "public",
    granted: true,
    reason: "public",
  },
  { name: "owner (forwarded principal)", principal: OWNER, granted: true, reason: "owner" },
  {
    name: "owner on full token",
    credential: "master",
    principal: OWNER,
    granted: true,
    reason: "owner",
  },
  { name: "owner reads home doc", principal: OWNER, path: "", granted: true, reason: "owner" },
  {
    name: "stranger without capability",
    principal: MALLORY,
    granted: false,
    reason: "no_capability",
  },
  {
    name: "READER on the exact path",
    principal: ALICE,
    path: "/a",
    caps: [readerA],
    granted: true,
    reason: "capability",
    via: "c-reader-a",
  },
  {
    name: "READER on a parent path",
    principal: ALICE,
    path: "/a/b/c",
    caps: [readerA],
    granted: true,
    reason: "capability",
    via: "c-reader-a",
  },
  {
    name: "WRITER on a parent path",
    principal: ALICE,
    path: "/a/b",
    caps: [writerA],
    granted: true,
    reason: "capability",
    via: "c-writer-a",
  },
  {
    name: "READER on /a does not cover sibling /ab",
    principal: ALICE,
    path: "/ab",
    caps: [readerA],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "READER on /a does not cover the home doc",
    principal: ALICE,
    path: "",
    caps: [readerA],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "READER on /a/b does not cover parent /a",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a/b", role: "READER" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "home capability covers everything",
    principal: ALICE,
    path: "/x/y",
    caps: [cap({ cid: "c-home", signer: OWNER, delegate: ALICE, role: "READER" })],
    granted: true,
    reason: "capability",
    via: "c-home",
  },
  {
    name: "capability for someone else",
    principal: MALLORY,
    path: "/a",
    caps: [readerA],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "capability without role",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "capability with unknown role",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "ADMIN" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "expired (exp == now)",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "READER", exp: NOW })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "expired (exp < now)",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "READER", exp: NOW - 1 })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "not yet expired (exp > now)",
    principal: ALICE,
    path: "/a",
    caps: [
      cap({
        cid: "c-exp",
        signer: OWNER,
        delegate: ALICE,
        path: "/a",
        role: "READER",
        exp: NOW + 1,
      }),
    ],
    granted: true,
    reason: "capability",
    via: "c-exp",
  },
  {
    name: "noRecursive, exact path",
    principal: ALICE,
    path: "/a",
    caps: [
      cap({
        cid: "c-nr",
        signer: OWNER,
        delegate: ALICE,
        path: "/a",
        role: "READER",
        noRecursive: true,
      }),
    ],
    granted: true,
    reason: "capability",
    via: "c-nr",
  },
  {
    name: "noRecursive, child path",
    principal: ALICE,
    path: "/a/b",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "READER", noRecursive: true })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "noRecursive home covers only home",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, role: "READER", noRecursive: true })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "capability with audience (Seed auth assertion)",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: ALICE, audience: MALLORY, role: "AGENT" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, 1 link",
    principal: AGENT_1,
    path: "/a/b",
    caps: [agentRoot1],
    granted: true,
    reason: "capability",
    via: "c-agent-1",
    chain: ["c-agent-1"],
  },
  {
    name: "AGENT chain, 2 links",
    principal: ALICE,
    path: "/a/b",
    caps: [agentRoot1, agentLink2],
    granted: true,
    reason: "agent_chain",
    via: "c-agent-2",
    chain: ["c-agent-1", "c-agent-2"],
  },
  {
    name: "AGENT chain, 2 links, order of caps does not matter",
    principal: ALICE,
    path: "",
    caps: [agentLink2, readerA, agentRoot1],
    granted: true,
    reason: "agent_chain",
    via: "c-agent-2",
  },
  {
    name: "AGENT chain, 3 links proves nothing",
    principal: ALICE,
    path: "/a",
    caps: [agentRoot1, agentLink2ToAgent2, agentLink3],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, link 2 without link 1",
    principal: ALICE,
    path: "/a",
    caps: [agentLink2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, link 1 expired",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: AGENT_1, role: "AGENT", exp: NOW - 1 }), agentLink2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, link 2 expired",
    principal: ALICE,
    path: "/a",
    caps: [agentRoot1, cap({ signer: AGENT_1, delegate: ALICE, role: "AGENT", exp: NOW })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, link 1 is only a WRITER",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: AGENT_1, role: "WRITER" }), agentLink2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, link 1 noRecursive home, child doc",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OWNER, delegate: AGENT_1, role: "AGENT", noRecursive: true }), agentLink2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "AGENT chain, link 2 with audience",
    principal: ALICE,
    path: "/a",
    caps: [agentRoot1, cap({ signer: AGENT_1, delegate: ALICE, role: "AGENT", audience: OWNER })],
    granted: false,
    reason: "no_capability",
  },
  // A READER signed by the agent is scoped to the agent's own space (its signer): it must not
  // leak into the owner's space just because the agent is the owner's AGENT.
  {
    name: "agent-signed READER is the agent's space, not the owner's",
    principal: ALICE,
    path: "/a",
    caps: [agentRoot1, cap({ signer: AGENT_1, delegate: ALICE, path: "/a", role: "READER" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "capability signed by a non-owner",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: MALLORY, delegate: ALICE, path: "/a", role: "READER" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "non-owner AGENT capability (not owner-rooted chain)",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: MALLORY, delegate: AGENT_1, role: "AGENT" }), agentLink2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "other account's capability",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OTHER_ACCOUNT, delegate: ALICE, path: "/a", role: "READER" })],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "other account's AGENT chain",
    principal: ALICE,
    path: "/a",
    caps: [cap({ signer: OTHER_ACCOUNT, delegate: AGENT_1, role: "AGENT" }), agentLink2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "paired origin with owner principal",
    credential: "origin",
    principal: OWNER,
    granted: false,
    reason: "paired_origin",
  },
  {
    name: "paired origin with a capability",
    credential: "origin",
    principal: ALICE,
    path: "/a",
    caps: [readerA],
    granted: false,
    reason: "paired_origin",
  },
  { name: "web token without principal", credential: "web", granted: false, reason: "anonymous" },
  {
    name: "web token without principal, capabilities forwarded",
    credential: "web",
    path: "/a",
    caps: [readerA],
    granted: false,
    reason: "anonymous",
  },
  {
    name: "web token with READER principal",
    credential: "web",
    principal: ALICE,
    path: "/a",
    caps: [readerA],
    granted: true,
    reason: "capability",
    via: "c-reader-a",
  },
  {
    name: "master without principal, local account",
    credential: "master",
    localAccounts: [LOCAL_2, OWNER],
    granted: true,
    reason: "owner",
  },
  {
    name: "master without principal, non-local account",
    credential: "master",
    localAccounts: [LOCAL_2],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "master without principal, no keys",
    credential: "master",
    localAccounts: [],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "master without principal, local key holds a READER",
    credential: "master",
    localAccounts: [LOCAL_2, ALICE],
    path: "/a",
    caps: [readerA],
    granted: true,
    reason: "capability",
    via: "c-reader-a",
  },
  {
    name: "master with forwarded principal is that principal only",
    credential: "master",
    principal: MALLORY,
    localAccounts: [OWNER],
    granted: false,
    reason: "no_capability",
  },
  {
    name: "malformed document path",
    principal: ALICE,
    path: "/a/",
    caps: [readerA],
    granted: false,
    reason: "invalid_path",
  },
  {
    name: "malformed capability path",
    principal: ALICE,
    path: "/a/b",
    caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a/", role: "READER" })],
    granted: false,
    reason: "no_capability",
  },
];

describe("decideRead: access table", () => {
  for (const row of rows) {
    it(row.name, () => {
      const input: ReadInput = {
        credential: row.credential ?? "web",
        principal: row.principal,
        localAccounts: new Set(row.localAccounts ?? []),
        document: {
          account: row.account ?? OWNER,
          path: row.path ?? "/a",
          visibility: row.visibility ?? "private",
        },
        capabilities: row.caps ?? [],
        now: NOW,
      };
      const d = decideRead(input);
      assert.equal(d.granted, row.granted, `granted (reason ${d.reason})`);
      assert.equal(d.reason, row.reason);
      assert.equal(d.capability, row.via);
      if (row.chain !== undefined) assert.deepEqual(d.chain, row.chain);
      if (!d.granted) assert.equal(d.capability, undefined);
    });
  }

  it("does not mutate its input and is deterministic", () => {
    const caps = Object.freeze([agentLink2, agentRoot1].map((c) => Object.freeze({ ...c })));
    const input: ReadInput = Object.freeze({
      credential: "web" as const,
      principal: ALICE,
      localAccounts: new Set<string>(),
      document: Object.freeze({ account: OWNER, path: "/z", visibility: "private" as const }),
      capabilities: caps,
      now: NOW,
    });
    assert.deepEqual(decideRead(input), decideRead(input));
  });

  it("a non-finite now makes every expiring capability prove nothing", () => {
    const d = decideRead({
      credential: "web",
      principal: ALICE,
      localAccounts: new Set(),
      document: { account: OWNER, path: "/a", visibility: "private" },
      capabilities: [cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "READER", exp: NOW })],
      now: Number.NaN,
    });
    assert.equal(d.granted, false);
  });
});

describe("path rule", () => {
  const cases: [string, boolean, string, boolean][] = [
    ["", false, "", true],
    ["", false, "/a/b", true],
    ["", true, "", true],
    ["", true, "/a", false],
    ["/a", false, "/a", true],
    ["/a", false, "/a/b", true],
    ["/a", false, "/ab", false],
    ["/a", false, "/", false],
    ["/a", false, "", false],
    ["/a", true, "/a", true],
    ["/a", true, "/a/b", false],
    ["/a/b", false, "/a", false],
    ["/a/", false, "/a/b", false],
    ["/a", false, "/a//b", false],
    ["a", false, "a/b", false],
  ];
  for (const [capPath, nr, path, want] of cases) {
    it(`${JSON.stringify(capPath)}${nr ? " (noRecursive)" : ""} covers ${JSON.stringify(path)}: ${want}`, () => {
      assert.equal(pathCovers(capPath, nr, path), want);
    });
  }
  it("validates path shape", () => {
    assert.ok(isValidDocumentPath(""));
    assert.ok(isValidDocumentPath("/a/b"));
    for (const bad of ["/", "a", "/a/", "//a", "/a//b"])
      assert.equal(isValidDocumentPath(bad), false, bad);
  });
});

describe("capabilityCovers", () => {
  it("checks space, path and expiry, not role or delegate", () => {
    assert.ok(capabilityCovers(readerA, OWNER, "/a/b", NOW));
    assert.equal(capabilityCovers(readerA, OTHER_ACCOUNT, "/a/b", NOW), false);
    assert.equal(capabilityCovers(readerA, OWNER, "/ab", NOW), false);
    const expiring = cap({
      signer: OWNER,
      delegate: ALICE,
      path: "/a",
      role: "READER",
      exp: NOW + 10,
    });
    assert.ok(capabilityCovers(expiring, OWNER, "/a", NOW + 9));
    assert.equal(capabilityCovers(expiring, OWNER, "/a", NOW + 10), false);
  });
});

describe("canWrite", () => {
  const cases: {
    name: string;
    signer: string;
    path?: string;
    caps: VerifiedCapability[];
    granted: boolean;
    via?: string;
  }[] = [
    { name: "owner", signer: OWNER, caps: [], granted: true },
    { name: "owner on home", signer: OWNER, path: "", caps: [], granted: true },
    {
      name: "WRITER on parent",
      signer: ALICE,
      path: "/a/b",
      caps: [writerA],
      granted: true,
      via: "c-writer-a",
    },
    {
      name: "WRITER on /a, sibling /ab",
      signer: ALICE,
      path: "/ab",
      caps: [writerA],
      granted: false,
    },
    {
      name: "AGENT for the space",
      signer: AGENT_1,
      path: "/q",
      caps: [agentRoot1],
      granted: true,
      via: "c-agent-1",
    },
    { name: "READER cannot write", signer: ALICE, path: "/a", caps: [readerA], granted: false },
    {
      name: "expired WRITER",
      signer: ALICE,
      path: "/a",
      caps: [cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "WRITER", exp: NOW })],
      granted: false,
    },
    {
      name: "noRecursive WRITER, child",
      signer: ALICE,
      path: "/a/b",
      caps: [
        cap({ signer: OWNER, delegate: ALICE, path: "/a", role: "WRITER", noRecursive: true }),
      ],
      granted: false,
    },
    {
      name: "WRITER signed by a non-owner",
      signer: ALICE,
      path: "/a",
      caps: [cap({ signer: MALLORY, delegate: ALICE, path: "/a", role: "WRITER" })],
      granted: false,
    },
    {
      name: "WRITER for another delegate",
      signer: MALLORY,
      path: "/a",
      caps: [writerA],
      granted: false,
    },
    {
      name: "no chains for writes",
      signer: ALICE,
      path: "/a",
      caps: [agentRoot1, agentLink2],
      granted: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = canWrite(c.signer, OWNER, c.path ?? "/a", c.caps, NOW);
      assert.equal(d.granted, c.granted, d.reason);
      assert.equal(d.capability, c.via);
    });
  }
});
