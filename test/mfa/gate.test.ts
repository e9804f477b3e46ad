// The multi-factor gate over HTTP: a session that owes its second factor (mfa_pending) may run only
// me, verifyMfa, verifyMfaWithPasskey, logout and refreshToken. Any other root field, public or
// guarded, a query or a mutation, through aliases and fragments, refuses the whole operation with
// FORBIDDEN, reason MFA_REQUIRED, before anything runs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MFA_REQUIRED_MESSAGE } from "../../src/access/auth-checker.js";
import { type GraphQLResponse, PASSWORD, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { AAL1, PENDING, tokenWith } from "../helpers/assurance.js";
import { DATABASES } from "../helpers/databases.js";

/** The whole operation refused by the gate: HTTP 200, one FORBIDDEN MFA_REQUIRED error with its message, no data. */
function assertMfaRequired(res: GraphQLResponse): void {
  assert.equal(res.status, 200);
  assert.deepEqual(
    res.body.errors?.map((e) => [e.extensions?.code, e.extensions?.reason, e.message]),
    [["FORBIDDEN", "MFA_REQUIRED", MFA_REQUIRED_MESSAGE]],
  );
  assert.equal(res.body.data ?? null, null, "nothing ran");
}

/** A signed-up user and an access token of that session which owes the second factor. */
async function pendingUser(t: TestApp, username: string) {
  const user = await registerUser(t, username);
  return { ...user, pending: tokenWith(t, user.accessToken, PENDING) };
}

for (const kind of DATABASES) {
  describe(`the multi-factor gate over HTTP (${kind})`, () => {
    const t = useTestApp(kind);

    it("answers me for a session that owes its second factor", async () => {
      const user = await pendingUser(t, "gate-me");
      const res = await t.gql(`{ me { id username } }`, { token: user.pending });
      assert.deepEqual(res.body, { data: { me: { id: user.userId, username: "gate-me" } } });
    });

    it("refuses a guarded query (sessions) and a public one (posts) with MFA_REQUIRED", async () => {
      const user = await pendingUser(t, "gate-queries");
      assertMfaRequired(await t.gql(`{ sessions { id } }`, { token: user.pending }));
      assertMfaRequired(await t.gql(`{ posts { id } }`, { token: user.pending }));
      // The same session without the debt is served: the gate is the token's mfa_pending, nothing else.
      const served = await t.gql(`{ posts { id } }`, { token: tokenWith(t, user.accessToken, AAL1) });
      assert.deepEqual(served.body.errors, undefined);
    });

    it("refuses createPost with MFA_REQUIRED and stores no post", async () => {
      const user = await pendingUser(t, "gate-writer");
      const res = await t.gql(`mutation { createPost(input: { title: "t", body: "b" }) { id } }`, {
        token: user.pending,
      });
      assertMfaRequired(res);
      const mine = await t.gql(`{ me { posts { id } } }`, { token: user.accessToken });
      assert.deepEqual(mine.body.data, { me: { posts: [] } });
    });

    it("refuses the whole operation when an allowed field comes with another one: me and posts", async () => {
      const user = await pendingUser(t, "gate-mixed");
      assertMfaRequired(await t.gql(`{ me { id } posts { id } }`, { token: user.pending }));
    });

    it("looks through aliases, fragment spreads, inline fragments and @skip", async () => {
      const user = await pendingUser(t, "gate-fragments");
      const refused = [
        `{ me: posts { id } }`,
        `query { who: me { id } ...P } fragment P on Query { list: posts { id } }`,
        `{ ... on Query { posts { id } } }`,
        `{ me { id } posts @skip(if: true) { id } }`,
        `query { ...A } fragment A on Query { ...B } fragment B on Query { sessions { id } }`,
      ];
      for (const query of refused) assertMfaRequired(await t.gql(query, { token: user.pending }));
      const allowed = await t.gql(`query { ...M ...M } fragment M on Query { who: me { id } __typename }`, {
        token: user.pending,
      });
      assert.deepEqual(allowed.body, { data: { who: { id: user.userId }, __typename: "Query" } });
    });

    it("refuses a GET query of a public field too", async () => {
      const user = await pendingUser(t, "gate-get");
      const url = `${t.url}?query=${encodeURIComponent("{ posts { id } }")}`;
      const response = await fetch(url, {
        headers: { authorization: `Bearer ${user.pending}`, "apollo-require-preflight": "1" },
      });
      assertMfaRequired({ status: response.status, headers: response.headers, body: await response.json() });
    });

    it("lets refreshToken and logout through, and logout ends the session", async () => {
      const user = await pendingUser(t, "gate-leaving");
      const refreshed = await t.gql(
        `mutation($rt: String!) { refreshToken(refreshToken: $rt) { accessToken user { id } } }`,
        { token: user.pending, variables: { rt: user.refreshToken } },
      );
      assert.equal(refreshed.body.errors, undefined);
      assert.equal(refreshed.body.data.refreshToken.user.id, user.userId);
      const logout = await t.gql(`mutation { logout }`, { token: user.pending });
      assert.deepEqual(logout.body, { data: { logout: true } });
      const after = await t.gql(`{ me { id } }`, { token: user.pending });
      assert.equal(after.status, 401);
      assert.equal(after.body.errors?.[0]?.extensions?.reason, "SESSION_ENDED");
    });

    it("refuses changePassword, so a password session cannot lock the owner out before the second factor", async () => {
      const user = await pendingUser(t, "gate-password");
      const res = await t.gql(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
        token: user.pending,
        variables: { input: { currentPassword: PASSWORD, newPassword: "a brand new password" } },
      });
      assertMfaRequired(res);
      const login = await t.gql(`mutation($i: LoginInput!) { login(input: $i) { accessToken } }`, {
        variables: { i: { username: "gate-password", password: PASSWORD } },
      });
      assert.equal(typeof login.body.data?.login?.accessToken, "string", "the old password still works");
    });
  });
}
