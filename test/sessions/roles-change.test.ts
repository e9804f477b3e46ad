import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { claimsOf, codes, type GraphQLResponse, login, refresh, registerUser, type Tokens } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ROOT = { username: "root", password: "root password 1" };

for (const kind of DATABASES) {
  describe(`role changes and tokens already issued (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password } });
    let admin: Tokens;
    before(async () => {
      admin = await login(t, ROOT.username, { password: ROOT.password });
    });

    async function setRoles(userId: string, roles: string[]): Promise<void> {
      const res = await t.gql(
        `mutation($userId: ID!, $roles: [Role!]!) { setUserRoles(userId: $userId, roles: $roles) { id roles } }`,
        {
          token: admin.accessToken,
          variables: { userId, roles },
        },
      );
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { setUserRoles: { id: userId, roles: [...roles].sort() } } });
    }

    function listUsers(token: string): Promise<GraphQLResponse> {
      return t.gql(`{ users { id } }`, { token });
    }

    function assertUsersAllowed(res: GraphQLResponse): void {
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.ok(Array.isArray(res.body.data.users) && res.body.data.users.length >= 2);
    }

    function assertUsersForbidden(res: GraphQLResponse): void {
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      assert.equal(res.body.data, null);
    }

    it("takes ADMIN away at once from a token minted before the demotion, without a new login", async () => {
      const demoted = await registerUser(t, "demoted");
      await setRoles(demoted.userId, ["ADMIN", "USER"]);
      const adminToken = await login(t, "demoted");
      assert.deepEqual(claimsOf(adminToken.accessToken).roles, ["ADMIN", "USER"]);
      assertUsersAllowed(await listUsers(adminToken.accessToken));

      await setRoles(demoted.userId, ["USER"]);
      assertUsersForbidden(await listUsers(adminToken.accessToken));
      const me = await t.gql(`{ me { id roles } }`, { token: adminToken.accessToken });
      assert.deepEqual(me.body.data, { me: { id: demoted.userId, roles: ["USER"] } });
    });

    it("grants ADMIN at once to a token minted before the promotion", async () => {
      const promoted = await registerUser(t, "promoted");
      assert.deepEqual(claimsOf(promoted.accessToken).roles, ["USER"]);
      assertUsersForbidden(await listUsers(promoted.accessToken));

      await setRoles(promoted.userId, ["ADMIN", "USER"]);
      assertUsersAllowed(await listUsers(promoted.accessToken));
    });

    it("puts the new roles into the roles claim of the access token from the next refresh", async () => {
      const user = await registerUser(t, "reclaimed");
      await setRoles(user.userId, ["ADMIN", "USER"]);
      const promotedRefresh = await refresh(t, user.refreshToken);
      assert.deepEqual(claimsOf(promotedRefresh.accessToken).roles, ["ADMIN", "USER"]);
      assertUsersAllowed(await listUsers(promotedRefresh.accessToken));

      await setRoles(user.userId, ["USER"]);
      const demotedRefresh = await refresh(t, promotedRefresh.refreshToken);
      assert.deepEqual(claimsOf(demotedRefresh.accessToken).roles, ["USER"]);
      assertUsersForbidden(await listUsers(demotedRefresh.accessToken));
    });
  });
}
