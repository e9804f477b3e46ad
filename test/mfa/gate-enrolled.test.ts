// The gate and step-up end to end, with an account that enrolled TOTP through the API: its password
// login owes the factor and is held at the gate over HTTP and WebSocket; verifyMfa on that session
// opens everything, changePassword included (step-up, and the login's freshness kept); under
// MFA_REQUIRED_ROLES=ADMIN an enrolled ADMIN at AAL2 reaches the ADMIN fields and mints an
// ADMIN-scoped API token.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MFA_REQUIRED_MESSAGE } from "../../src/access/auth-checker.js";
import { ROOT, rootToken, withRoot } from "../helpers/admin.js";
import { type GraphQLResponse, login, PASSWORD, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { enrollUser, signInAal2, verifyMfa } from "../helpers/mfa.js";
import { connect, Feed } from "../helpers/ws.js";

function assertMfaRequired(res: GraphQLResponse): void {
  assert.equal(res.status, 200);
  assert.deepEqual(
    res.body.errors?.map((e) => [e.extensions?.code, e.extensions?.reason, e.message]),
    [["FORBIDDEN", "MFA_REQUIRED", MFA_REQUIRED_MESSAGE]],
  );
  assert.equal(res.body.data ?? null, null);
}

for (const kind of DATABASES) {
  describe(`the gate for an account with TOTP (${kind})`, () => {
    const t = useTestApp(kind);

    it(
      "holds a password login at the gate on HTTP and WebSocket until verifyMfa, then opens everything",
      { timeout: 20_000 },
      async () => {
        const user = await registerUser(t, "enrolled-gate");
        const totp = await enrollUser(t, user.accessToken);
        const pending = await login(t, "enrolled-gate");
        assertMfaRequired(await t.gql(`{ posts { id } }`, { token: pending.accessToken }));
        assertMfaRequired(await t.gql(`{ sessions { id } }`, { token: pending.accessToken }));
        assertMfaRequired(
          await t.gql(`mutation { createPost(input: { title: "t", body: "b" }) { id } }`, {
            token: pending.accessToken,
          }),
        );
        const me = await t.gql(`{ me { username } }`, { token: pending.accessToken });
        assert.deepEqual(me.body, { data: { me: { username: "enrolled-gate" } } });
        const ws = connect(t.url, { token: pending.accessToken });
        new Feed(ws.client, { query: `subscription { postCreated { id } }` });
        const closed = await ws.closed;
        assert.deepEqual([closed.code, closed.reason], [4403, "MFA_REQUIRED"]);

        const raised = await verifyMfa(t, pending.accessToken, totp.nextCode());
        const created = await t.gql(`mutation { createPost(input: { title: "after", body: "b" }) { title } }`, {
          token: raised.accessToken,
        });
        assert.deepEqual(created.body, { data: { createPost: { title: "after" } } });
        const open = connect(t.url, { token: raised.accessToken });
        await open.connected;
        await open.client.dispose();
      },
    );

    it("lets the AAL2 session of verifyMfa change the password (step-up and a fresh token); the owing one cannot", async () => {
      const user = await registerUser(t, "enrolled-password");
      const totp = await enrollUser(t, user.accessToken);
      const change = (token: string, newPassword: string) =>
        t.gql(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
          token,
          variables: { input: { currentPassword: PASSWORD, newPassword } },
        });
      const pending = await login(t, "enrolled-password");
      assertMfaRequired(await change(pending.accessToken, "never set"));
      const raised = await verifyMfa(t, pending.accessToken, totp.nextCode());
      assert.deepEqual((await change(raised.accessToken, "set at aal2")).body, { data: { changePassword: true } });
      await login(t, "enrolled-password", { password: "set at aal2" });
    });
  });

  describe(`MFA_REQUIRED_ROLES=ADMIN with an enrolled ADMIN (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ MFA_REQUIRED_ROLES: "ADMIN" }));

    it("serves users and mints an ADMIN-scoped API token once the ADMIN has proven the factor", async () => {
      const first = await rootToken(t);
      const totp = await enrollUser(t, first);
      const pending = await login(t, ROOT.username, { password: ROOT.password });
      assertMfaRequired(await t.gql(`{ users(first: 1) { username } }`, { token: pending.accessToken }));
      const raised = await signInAal2(t, ROOT.username, totp, { password: ROOT.password });
      const users = await t.gql(`{ users(first: 1) { username } }`, { token: raised.accessToken });
      assert.deepEqual(users.body, { data: { users: [{ username: ROOT.username }] } });
      const minted = await t.gql(
        `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { apiToken { scopes } } }`,
        { token: raised.accessToken, variables: { input: { name: "admin script", scopes: ["ADMIN"] } } },
      );
      assert.deepEqual(minted.body, { data: { createApiToken: { apiToken: { scopes: ["ADMIN"] } } } });
    });
  });
}
