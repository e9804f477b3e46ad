import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import { codes, type GraphQLResponse } from "./helpers/api.js";
import { startTestApp, type TestApp } from "./helpers/app.js";
import { DATABASES, type TestDatabase } from "./helpers/databases.js";

const LOGIN = `mutation($input: LoginInput!) { login(input: $input) { accessToken user { id username roles } } }`;

function login(t: TestApp, username: string, password: string): Promise<GraphQLResponse> {
  return t.gql(LOGIN, { variables: { input: { username, password } } });
}

function adminEnv(username: string, password: string): Record<string, string> {
  return { ADMIN_USERNAME: username, ADMIN_PASSWORD: password };
}

for (const kind of DATABASES) {
  describe(`the admin from ADMIN_USERNAME and ADMIN_PASSWORD (${kind})`, () => {
    const apps: TestApp[] = [];
    const databases: TestDatabase[] = [];

    /** Starts an app (on `database`, or a fresh one) that after() will close. */
    async function start(env: Record<string, string>, database?: TestDatabase): Promise<TestApp> {
      const t = await startTestApp(kind, { env, database });
      apps.push(t);
      if (!databases.includes(t.database)) databases.push(t.database);
      return t;
    }

    async function stop(t: TestApp): Promise<void> {
      apps.splice(apps.indexOf(t), 1);
      await t.close();
    }

    /** Every stored user, as an admin sees them. */
    async function listUsers(
      t: TestApp,
      adminToken: string,
    ): Promise<Array<{ id: string; username: string; roles: string[] }>> {
      const res = await t.gql(`{ users { id username roles } }`, { token: adminToken });
      assert.deepEqual(codes(res), []);
      return res.body.data.users;
    }

    after(async () => {
      for (const t of apps) await t.close();
      for (const database of databases) await database.drop();
    });

    describe("on a new database", () => {
      let database: TestDatabase;
      let adminId: string;

      it("exists after start and logs in with ADMIN and USER", async () => {
        const t = await start(adminEnv("root", "first admin password"));
        database = t.database;
        const res = await login(t, "root", "first admin password");
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), []);
        assert.equal(res.body.data.login.user.username, "root");
        assert.deepEqual(res.body.data.login.user.roles, ["ADMIN", "USER"]);
        adminId = res.body.data.login.user.id;

        const users = await listUsers(t, res.body.data.login.accessToken);
        assert.deepEqual(users, [{ id: adminId, username: "root", roles: ["ADMIN", "USER"] }]);
        await stop(t);
      });

      it("is still exactly one account after a restart with the same settings", async () => {
        const t = await start(adminEnv("root", "first admin password"), database);
        const res = await login(t, "root", "first admin password");
        assert.deepEqual(codes(res), []);
        assert.equal(res.body.data.login.user.id, adminId, "the same account, not a new one");
        const users = await listUsers(t, res.body.data.login.accessToken);
        assert.deepEqual(users, [{ id: adminId, username: "root", roles: ["ADMIN", "USER"] }]);
        await stop(t);
      });

      it("keeps its password when restarted with a different ADMIN_PASSWORD: the old one still logs in, the new one does not", async () => {
        const t = await start(adminEnv("root", "second admin password"), database);
        const old = await login(t, "root", "first admin password");
        assert.deepEqual(codes(old), []);
        assert.equal(old.body.data.login.user.id, adminId);
        assert.deepEqual(old.body.data.login.user.roles, ["ADMIN", "USER"]);

        const changed = await login(t, "root", "second admin password");
        assert.equal(changed.status, 200);
        assert.deepEqual(codes(changed), ["UNAUTHENTICATED"]);
        assert.equal(changed.body.data, null);

        const users = await listUsers(t, old.body.data.login.accessToken);
        assert.deepEqual(
          users.map((u) => u.id),
          [adminId],
        );
        await stop(t);
      });
    });

    it("adds ADMIN at start to a user of that name who registered earlier, keeping that user's password", async () => {
      const first = await start({});
      const registered = await first.register("Chief", "chief's own password");
      await stop(first);

      // The name matches without regard to case, like every username.
      const t = await start(adminEnv("chief", "bootstrap password"), first.database);
      const res = await login(t, "Chief", "chief's own password");
      assert.deepEqual(codes(res), []);
      assert.deepEqual(res.body.data.login.user, {
        id: registered.userId,
        username: "Chief",
        roles: ["ADMIN", "USER"],
      });

      const bootstrap = await login(t, "chief", "bootstrap password");
      assert.deepEqual(codes(bootstrap), ["UNAUTHENTICATED"], "the existing password was not replaced");

      const users = await listUsers(t, res.body.data.login.accessToken);
      assert.deepEqual(users, [{ id: registered.userId, username: "Chief", roles: ["ADMIN", "USER"] }]);
    });

    it("creates one admin when two instances start at the same moment on one database", async () => {
      const migrated = await start({});
      await stop(migrated);

      const [a, b] = await Promise.all([
        start(adminEnv("twin", "twin admin password"), migrated.database),
        start(adminEnv("twin", "twin admin password"), migrated.database),
      ]);
      const viaA = await login(a, "twin", "twin admin password");
      const viaB = await login(b, "twin", "twin admin password");
      assert.deepEqual(codes(viaA), []);
      assert.deepEqual(codes(viaB), []);
      assert.equal(viaA.body.data.login.user.id, viaB.body.data.login.user.id);
      const users = await listUsers(a, viaA.body.data.login.accessToken);
      assert.deepEqual(users, [{ id: viaA.body.data.login.user.id, username: "twin", roles: ["ADMIN", "USER"] }]);
    });
  });
}
