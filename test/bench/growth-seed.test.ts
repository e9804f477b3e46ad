// bench/growth.mjs's seeding (bench/lib/growth-seed.mjs) at a tiny size, on each database: the rows
// it promises, the ADMIN signing in with the password the bench uses, the disabled ADMINs left out
// of the last-admin count, the heavy author's posts, and the audit type that has no rows.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { PasswordHasher } from "../../src/users/passwords.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { createTestDatabase, DATABASES, type TestDatabase } from "../helpers/databases.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

interface SeedPlan {
  n: number;
  heavyPosts: number;
  adminId: string;
  heavyAuthorId: string;
  userId(i: number): string;
}
interface GrowthSeed {
  ADMIN: { username: string; password: string };
  EMPTY_TYPE: string;
  seedPlan(n: number): SeedPlan;
  seedSqlite(dataDir: string, n: number, hash: string): Record<string, number>;
  seedPostgres(url: string, schema: string, n: number, hash: string): Promise<Record<string, number>>;
}

const N = 200;

for (const kind of DATABASES) {
  describe(`the growth bench's seed (${kind})`, () => {
    let seed: GrowthSeed;
    let database: TestDatabase;
    let t: TestApp;
    let token: string;

    before(async () => {
      seed = (await import(pathToFileURL(join(root, "bench/lib/growth-seed.mjs")).href)) as GrowthSeed;
      database = createTestDatabase(kind);
      // The app's own migrations first, as the bench runs them; then the seed; then the app again.
      await (await startTestApp(kind, { database })).close();
      const hasher = new PasswordHasher(1);
      const hash = await hasher.hash(seed.ADMIN.password);
      await hasher.close();
      if (kind === "sqlite") seed.seedSqlite(database.dataDir, N, hash);
      else await seed.seedPostgres(database.env.DATABASE_URL!, database.env.DATABASE_SCHEMA!, N, hash);
      t = await startTestApp(kind, { database });
      token = await t.login(seed.ADMIN.username, seed.ADMIN.password);
    });

    after(async () => {
      await t?.close();
      await database?.drop();
    });

    it("writes N users, posts, sessions and API tokens and 10 audit events per user", async () => {
      const db = t.app.database.db;
      for (const [table, rows] of [
        ["users", N],
        ["posts", N],
        ["sessions", N + 1],
        ["api_tokens", N],
      ] as const) {
        const { n } = await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number | string>().as("n"))
          .executeTakeFirstOrThrow();
        assert.equal(Number(n), rows, table);
      }
      // The 2,000 seeded events, and the sign-in's LOGIN_SUCCEEDED.
      const { n } = await db
        .selectFrom("audit_events")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .executeTakeFirstOrThrow();
      assert.equal(Number(n), N * 10 + 1);
    });

    it("lists what the bench asks for: the users in order, the heavy author's posts, no event of the empty type", async () => {
      const plan = seed.seedPlan(N);
      const res = await t.gql(
        `query($type: String!, $after: ID!) {
          users(first: 3) { id username roles disabled }
          heavy: users(first: 1, after: $after) { id posts(first: 100) { id } }
          none: auditEvents(first: 5, type: $type) { id }
          failed: auditEvents(first: 5, type: "LOGIN_FAILED", userId: $after) { userId type }
        }`,
        { token, variables: { type: seed.EMPTY_TYPE, after: plan.userId(2) } },
      );
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.deepEqual(
        res.body.data.users.map((u: { username: string; disabled: boolean }) => [u.username, u.disabled]),
        [
          ["u0000001", false],
          ["u0000002", true],
          ["u0000003", false],
        ],
      );
      assert.equal(res.body.data.heavy[0].id, plan.heavyAuthorId);
      assert.equal(res.body.data.heavy[0].posts.length, Math.min(100, plan.heavyPosts));
      assert.deepEqual(res.body.data.none, []);
      assert.deepEqual(res.body.data.failed, [{ userId: plan.userId(2), type: "LOGIN_FAILED" }]);
    });

    it("leaves one active ADMIN: taking ADMIN from it is refused as the last admin's", async () => {
      const res = await t.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER]) { id } }`, {
        token,
        variables: { id: seed.seedPlan(N).adminId },
      });
      assert.equal(res.body.errors?.[0]?.extensions?.fields?.[0]?.rule, "lastAdmin", JSON.stringify(res.body));
    });
  });
}
