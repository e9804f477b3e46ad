// Every guarded field of the schema, with API tokens of every scope: the expected outcome of each
// pair is worked out from the field's own `@Requires` metadata, and the field list comes from the
// built schema, so a new guarded field without an example below fails this test instead of being
// forgotten. Each example is also run with a fresh session token (after the API tokens, because
// some examples, deleteAccount for one, end the owner), which must pass every guard, so an example
// that fails for another reason cannot pass for a refusal.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type GraphQLSchema, isObjectType } from "graphql";

import { type Requirement, requirementOf } from "../../src/access/requires.js";
import { buildAppSchema } from "../../src/schema.js";
import { type GraphQLResponse, login, PASSWORD, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { type EnrolledTotp, enrollUser, totpForStep } from "../helpers/mfa.js";
import { authenticator, enroll, PASSKEY_ENV, startRegistration, startSignIn } from "../helpers/passkeys.js";
import type { SoftAuthenticator } from "../helpers/webauthn.js";
import { connect, Feed } from "../helpers/ws.js";

const ROOT = { username: "root", password: "root password 1" };
const SCOPES = ["PROFILE_READ", "POSTS_WRITE", "ADMIN"] as const;

/** What an example needs: the owner's session token (ADMIN or not), a victim user and a way to make posts. */
interface Fixture {
  t: TestApp;
  ownerId: string;
  username: string;
  sessionToken: string;
  victimId: string;
  newPost(): Promise<string>;
}

/** One operation that reaches the field: its document and the variables a fresh setup gives. */
interface Example {
  query: string;
  variables?: (f: Fixture) => Promise<Record<string, unknown>>;
  /** Subscriptions run over WebSocket. */
  subscription?: true;
}

let serial = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${serial++}`;

// The second factors an example needs, added once per fixture through its session token (the first
// raises that session and ends the owner's others; the fixture's token stays valid).
const totps = new WeakMap<Fixture, Promise<EnrolledTotp>>();
const passkeys = new WeakMap<Fixture, Promise<{ device: SoftAuthenticator; id: string }>>();
function totpOf(f: Fixture): Promise<EnrolledTotp> {
  if (!totps.has(f)) totps.set(f, enrollUser(f.t, f.sessionToken));
  return totps.get(f)!;
}
function passkeyOf(f: Fixture): Promise<{ device: SoftAuthenticator; id: string }> {
  if (!passkeys.has(f)) {
    const device = authenticator();
    passkeys.set(
      f,
      enroll(f.t, f.sessionToken, device).then(({ id }) => ({ device, id })),
    );
  }
  return passkeys.get(f)!;
}

/** "Type.field" of every guarded field, with an operation that uses it. */
const EXAMPLES: Record<string, Example> = {
  "Query.me": { query: `{ me { id } }` },
  "Query.users": { query: `{ users(first: 1) { id } }` },
  "Query.auditEvents": { query: `{ auditEvents(first: 1) { id } }` },
  "Query.sessions": { query: `{ sessions { id } }` },
  "Query.apiTokens": { query: `{ apiTokens { id } }` },
  "Mutation.createPost": { query: `mutation { createPost(input: { title: "t", body: "b" }) { id } }` },
  "Mutation.updatePost": {
    query: `mutation($id: ID!) { updatePost(id: $id, input: { title: "changed" }) { id } }`,
    variables: async (f) => ({ id: await f.newPost() }),
  },
  "Mutation.deletePost": {
    query: `mutation($id: ID!) { deletePost(id: $id) }`,
    variables: async (f) => ({ id: await f.newPost() }),
  },
  "Mutation.setUserRoles": {
    query: `mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER]) { id } }`,
    variables: async (f) => ({ id: f.victimId }),
  },
  "Mutation.revokeUserSessions": {
    query: `mutation($id: ID!) { revokeUserSessions(userId: $id) }`,
    variables: async (f) => ({ id: f.victimId }),
  },
  "Mutation.logout": { query: `mutation { logout(scope: OTHERS) }` },
  "Mutation.revokeSession": {
    query: `mutation($id: ID!) { revokeSession(id: $id) }`,
    variables: async (f) => {
      const other = await login(f.t, f.username, { password: PASSWORD });
      const sessions = await f.t.gql(`{ sessions { id current } }`, { token: other.accessToken });
      return { id: sessions.body.data.sessions.find((s: { current: boolean }) => s.current).id };
    },
  },
  "Mutation.changePassword": {
    query: `mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`,
    variables: async () => ({ input: { currentPassword: PASSWORD, newPassword: "a new horse battery" } }),
  },
  "Mutation.createApiToken": {
    query: `mutation { createApiToken(input: { name: "table", scopes: [PROFILE_READ] }) { token } }`,
  },
  "Mutation.revokeApiToken": {
    query: `mutation($id: ID!) { revokeApiToken(id: $id) }`,
    variables: async (f) => {
      const res = await f.t.gql(
        `mutation { createApiToken(input: { name: "to revoke", scopes: [PROFILE_READ] }) { apiToken { id } } }`,
        {
          token: f.sessionToken,
        },
      );
      return { id: res.body.data.createApiToken.apiToken.id };
    },
  },
  "Mutation.setUserDisabled": {
    query: `mutation($id: ID!) { setUserDisabled(userId: $id, disabled: true) { id } }`,
    variables: async (f) => ({ id: f.victimId }),
  },
  // Last in each owner's run (the session token goes after the API tokens): it deletes the owner.
  "Mutation.deleteAccount": { query: `mutation { deleteAccount(password: "${PASSWORD}") }` },
  "Mutation.changeEmail": {
    query: `mutation($e: String!) { changeEmail(newEmail: $e) }`,
    variables: async () => ({ e: `${unique("moved")}@example.com` }),
  },
  "Mutation.requestEmailVerification": {
    query: `mutation { requestEmailVerification }`,
    // An address waiting for verification, so that the session token's call succeeds.
    variables: async (f) => {
      const res = await f.t.gql(`mutation($e: String!) { changeEmail(newEmail: $e) }`, {
        token: f.sessionToken,
        variables: { e: `${unique("waiting")}@example.com` },
      });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      return {};
    },
  },
  "Subscription.postCreated": { query: `subscription { postCreated { id } }`, subscription: true },
  // Multi-factor sign-in. Each variables() runs before every call (the API tokens' too), so a
  // secret it hands out is one that only the session token's call, the last, spends.
  "Query.passkeys": { query: `{ passkeys { id } }` },
  "Mutation.enrollTotp": { query: `mutation { enrollTotp { secret } }` },
  "Mutation.confirmTotp": {
    query: `mutation($c: String!) { confirmTotp(code: $c) }`,
    variables: async (f) => {
      const res = await f.t.gql(`mutation { enrollTotp { secret } }`, { token: f.sessionToken });
      const secret: string = res.body.data.enrollTotp.secret;
      return { c: totpForStep(secret, Math.floor(Date.now() / 30_000)) };
    },
  },
  "Mutation.verifyMfa": {
    query: `mutation($c: String!) { verifyMfa(code: $c) { accessToken } }`,
    variables: async (f) => ({ c: (await totpOf(f)).recoveryCodes.pop()! }),
  },
  "Mutation.regenerateRecoveryCodes": {
    query: `mutation { regenerateRecoveryCodes }`,
    variables: async (f) => (await totpOf(f), {}),
  },
  "Mutation.disableTotp": {
    query: `mutation($c: String!) { disableTotp(code: $c) }`,
    // The step after confirmTotp's: within the one step of skew, and not yet used.
    variables: async (f) => {
      const totp = await totpOf(f);
      return { c: totpForStep(totp.secret, totp.lastStep + 1) };
    },
  },
  "Mutation.resetUserMfa": {
    query: `mutation($id: ID!) { resetUserMfa(userId: $id) }`,
    variables: async (f) => ({ id: f.victimId }),
  },
  "Mutation.startPasskeyRegistration": { query: `mutation { startPasskeyRegistration }` },
  "Mutation.finishPasskeyRegistration": {
    query: `mutation($r: JSON!) { finishPasskeyRegistration(response: $r, name: "table") { id } }`,
    variables: async (f) => ({ r: authenticator().create(await startRegistration(f.t, f.sessionToken)) }),
  },
  "Mutation.verifyMfaWithPasskey": {
    query: `mutation($r: JSON!) { verifyMfaWithPasskey(response: $r) { accessToken } }`,
    variables: async (f) => {
      const { device } = await passkeyOf(f);
      return { r: device.get(await startSignIn(f.t, f.username)) };
    },
  },
  "Mutation.removePasskey": {
    query: `mutation($id: ID!) { removePasskey(id: $id) }`,
    variables: async (f) => ({ id: (await passkeyOf(f)).id }),
  },
};

/** Every guarded field of the built schema with its requirement. */
function guardedFields(schema: GraphQLSchema): Array<[string, Requirement]> {
  const found: Array<[string, Requirement]> = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const requirement = requirementOf(field.extensions);
      if (requirement) found.push([`${type.name}.${field.name}`, requirement]);
    }
  }
  return found;
}

type Outcome = "allowed" | "SCOPE" | "ROLE";

/** What the contract says a token with `scopes`, owned by someone with `ownerRoles`, gets on a field. */
function expectedOutcome(requirement: Requirement, scopes: readonly string[], ownerRoles: readonly string[]): Outcome {
  if (requirement.session) return "SCOPE";
  if (!scopes.includes(requirement.scope)) return "SCOPE";
  if (requirement.role && !ownerRoles.includes(requirement.role)) return "ROLE";
  return "allowed";
}

/** The outcome a response shows: allowed (no error at all), or the FORBIDDEN reason. */
function outcomeOf(errors: GraphQLResponse["body"]["errors"], coordinate: string): Outcome {
  if (!errors || errors.length === 0) return "allowed";
  assert.equal(errors.length, 1, `${coordinate}: ${JSON.stringify(errors)}`);
  const { code, reason } = errors[0]!.extensions ?? {};
  assert.equal(code, "FORBIDDEN", `${coordinate}: ${JSON.stringify(errors)}`);
  assert.ok(reason === "SCOPE" || reason === "ROLE", `${coordinate}: ${JSON.stringify(errors)}`);
  return reason as Outcome;
}

async function run(f: Fixture, coordinate: string, example: Example, token: string): Promise<Outcome> {
  const variables = example.variables ? await example.variables(f) : undefined;
  if (!example.subscription) {
    const res = await f.t.gql(example.query, { token, variables });
    assert.equal(res.status, 200, `${coordinate}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return outcomeOf(res.body.errors, coordinate);
  }
  const ws = connect(f.t.url, { token });
  try {
    await ws.connected;
    const feed = new Feed(ws.client, { query: example.query, variables });
    // A refused subscription errors at once; an accepted one waits for an event: make one.
    const poster = setInterval(() => void f.newPost(), 100);
    try {
      await feed.until((current) => current.error !== undefined || current.results.length > 0);
    } finally {
      clearInterval(poster);
    }
    const errors = (Array.isArray(feed.error) ? feed.error : feed.results[0]?.errors) as
      GraphQLResponse["body"]["errors"] | undefined;
    return outcomeOf(errors, coordinate);
  } finally {
    await ws.client.dispose();
  }
}

for (const kind of DATABASES) {
  describe(`every guarded field with every API token scope (${kind})`, () => {
    const t = useTestApp(kind, {
      env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password, ...PASSKEY_ENV },
    });

    it("has an example for every guarded field of the schema", async () => {
      const fields = guardedFields(await buildAppSchema());
      assert.ok(fields.length >= 18, `only ${fields.length} guarded fields`);
      const missing = fields.map(([coordinate]) => coordinate).filter((coordinate) => !EXAMPLES[coordinate]);
      assert.deepEqual(missing, [], "add an example to EXAMPLES for each new guarded field");
    });

    for (const ownerIsAdmin of [true, false]) {
      it(`gives each field the outcome its requirement names, for an owner ${ownerIsAdmin ? "with" : "without"} the ADMIN role`, async (tc) => {
        const fields = guardedFields(await buildAppSchema());
        const ownerRoles = ownerIsAdmin ? ["ADMIN", "USER"] : ["USER"];
        let checked = 0;
        for (const [coordinate, requirement] of fields) {
          const example = EXAMPLES[coordinate];
          assert.ok(example, `no example for ${coordinate}`);
          // A fresh owner per field: examples end sessions and change passwords.
          const username = unique(ownerIsAdmin ? "table-admin" : "table-user");
          const admin = await login(t, ROOT.username, { password: ROOT.password });
          const owner = await registerUser(t, username);
          const setRoles = (roles: string) =>
            t.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [${roles}]) { id } }`, {
              token: admin.accessToken,
              variables: { id: owner.userId },
            });
          // createApiToken refuses the ADMIN scope without the ADMIN role, so an owner without it got
          // such a token while an ADMIN, and lost the role afterwards (see the demotion below).
          await setRoles("USER, ADMIN");
          const session = await login(t, username, { password: PASSWORD });
          const fixture: Fixture = {
            t,
            ownerId: owner.userId,
            username,
            sessionToken: session.accessToken,
            victimId: (await registerUser(t, unique("victim"))).userId,
            newPost: async () => {
              const res = await t.gql(`mutation { createPost(input: { title: "p", body: "b" }) { id } }`, {
                token: session.accessToken,
              });
              return res.body.data.createPost.id as string;
            },
          };
          const tokens: Array<[readonly string[], string]> = [];
          for (const scopes of [...SCOPES.map((s) => [s]), [...SCOPES]]) {
            const res = await t.gql(
              `mutation($s: [Scope!]!) { createApiToken(input: { name: "table", scopes: $s }) { token } }`,
              { token: session.accessToken, variables: { s: scopes } },
            );
            tokens.push([scopes, res.body.data.createApiToken.token]);
          }
          if (!ownerIsAdmin) await setRoles("USER");

          for (const [scopes, token] of tokens) {
            const outcome = await run(fixture, coordinate, example, token);
            assert.equal(
              outcome,
              expectedOutcome(requirement, scopes, ownerRoles),
              `${coordinate} with an API token of ${scopes.join("+")} (owner ${ownerRoles.join("+")})`,
            );
            checked++;
          }
          // With a session token, a field's only refusal can be the owner's role.
          const withSession = await run(fixture, coordinate, example, session.accessToken);
          const sessionExpected = requirement.role && !ownerRoles.includes(requirement.role) ? "ROLE" : "allowed";
          assert.equal(withSession, sessionExpected, `${coordinate} with a session token`);
        }
        tc.diagnostic(`[${kind}] ${fields.length} guarded fields x 4 API tokens: ${checked} outcomes checked`);
      });
    }
  });
}
