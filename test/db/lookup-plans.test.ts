// The plans of the lookups that are not lists (test/helpers/plans.ts reads them from the database
// itself): the last-ADMIN check through the partial index of active ADMINs (migration 0012), the
// sign-in lookups by name and verified address, and the audit prune's batch, each a seek whose cost
// does not grow with the table; and the last-ADMIN rule still answered right through that index.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { Role } from "../../src/access/roles.js";
import { AuditStore } from "../../src/audit/audit.store.js";
import { UserStore } from "../../src/users/user.store.js";
import { DATABASES } from "../helpers/databases.js";
import { assertReadsThrough, openPlanDatabase, type PlanDatabase } from "../helpers/plans.js";

for (const kind of DATABASES) {
  describe(`the plans of the lookups (${kind})`, () => {
    let plans: PlanDatabase;
    const admins = { first: randomUUID(), second: randomUUID(), disabled: randomUUID() };
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();

    before(async () => {
      plans = await openPlanDatabase(kind);
      const adminIds = new Map<number, string>([
        [10, admins.first],
        [20, admins.second],
        [30, admins.disabled],
      ]);
      const users = Array.from({ length: 300 }, (_, i) => ({
        id: adminIds.get(i) ?? randomUUID(),
        username: `u${i}`,
        username_normalized: `u${i}`,
        password_hash: "-",
        roles: adminIds.has(i) ? '["ADMIN","USER"]' : '["USER"]',
        email: `u${i}@example.org`,
        email_normalized: `u${i}@example.org`,
        email_verified_at: i % 2 ? at(i) : null,
        disabled_at: adminIds.get(i) === admins.disabled ? at(i) : null,
        created_at: at(i),
        updated_at: at(i),
      }));
      await plans.handle.db.insertInto("users").values(users).execute();
      await plans.handle.db
        .insertInto("audit_events")
        .values(Array.from({ length: 100 }, (_, i) => ({ type: "LOGIN_FAILED", user_id: admins.first, at: at(i) })))
        .execute();
    });

    after(async () => {
      await plans.close();
    });

    /** Every access to `table` in the plan is an index seek: no scan of the table (SQLite), no Seq Scan (PostgreSQL). */
    function assertSeeks(plan: string[], table: string, index: RegExp): void {
      const text = plan.join("\n");
      if (kind === "sqlite") {
        const accesses = plan.filter((line) => new RegExp(`^(SCAN|SEARCH) ${table}\\b`).test(line));
        assert.ok(accesses.length > 0, text);
        for (const line of accesses)
          assert.match(line, new RegExp(`^SEARCH ${table} USING (COVERING )?INDEX ${index.source}`), text);
      } else {
        assert.match(text, new RegExp(`Index (Only )?Scan using ${index.source} on ${table}`), text);
        assert.doesNotMatch(text, /Seq Scan/, text);
      }
    }

    it("the last-ADMIN check reads the active ADMINs through users_active_admin_idx, in id order, and still refuses the last", async () => {
      const users = new UserStore(plans.logged, kind);
      const now = new Date();
      const isAdminCount = (sql: string) => /like/i.test(sql);
      const plan = await plans.planOf(async () => {
        const changed = await users.setRoles(admins.first, [Role.USER], now);
        assert.ok(typeof changed === "object", JSON.stringify(changed));
        assert.deepEqual(changed.roles, [Role.USER]);
      }, isAdminCount);
      assertReadsThrough(kind, plan, "users", "users_active_admin_idx", "oldest");
      // The disabled ADMIN does not count: the second is the last active one.
      assert.equal(await users.setRoles(admins.second, [Role.USER], now), "last-admin");
      assert.equal(await users.setDisabled(admins.second, true, now), "last-admin");
      const disablePlan = await plans.planOf(() => users.setDisabled(admins.second, true, now), isAdminCount);
      assertReadsThrough(kind, disablePlan, "users", "users_active_admin_idx", "oldest");
      // Given ADMIN again, the first counts again, and the second may go.
      await users.setRoles(admins.first, [Role.ADMIN, Role.USER], now);
      const demoted = await users.setRoles(admins.second, [Role.USER], now);
      assert.ok(typeof demoted === "object", JSON.stringify(demoted));
      assert.deepEqual(demoted.roles, [Role.USER]);
    });

    it("sign-in finds a user by name and by verified address through their unique indexes", async () => {
      const users = new UserStore(plans.logged, kind);
      assertSeeks(
        await plans.planOf(() => users.findByUsername("U7")),
        "users",
        /\w*username\w*|sqlite_autoindex_users_\d/,
      );
      assertSeeks(
        await plans.planOf(() => users.findByVerifiedEmail("U7@Example.org")),
        "users",
        /users_verified_email_idx/,
      );
      assert.equal((await users.findByVerifiedEmail("U7@Example.org"))?.username, "u7");
      assert.equal(await users.findByVerifiedEmail("u8@example.org"), undefined);
    });

    it("the audit prune reads its batch's ids oldest first through audit_events_at_idx", async () => {
      const audit = new AuditStore(plans.logged);
      const plan = await plans.planOf(
        () => audit.deleteBefore(new Date(at(50)), 20),
        (sql) => /^select/i.test(sql),
      );
      assertReadsThrough(kind, plan, "audit_events", "audit_events_at_idx", "oldest");
      const left = await plans.handle.db.selectFrom("audit_events").select("at").orderBy("at").execute();
      assert.equal(left.length, 80);
    });
  });
}
