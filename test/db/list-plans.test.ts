// The query plan of every list query, read from the database itself (test/helpers/plans.ts): each
// page is a seek in the index that migration 0008 made for it, in the list's order (no sort of the
// table, no scan of it), so a page costs the same at any table size.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import type { Kysely } from "kysely";

import { ApiTokenStore } from "../../src/api-tokens/api-token.store.js";
import { AuditStore } from "../../src/audit/audit.store.js";
import type { Database } from "../../src/db/schema.js";
import { PostStore } from "../../src/posts/post.store.js";
import { SessionStore } from "../../src/sessions/session.store.js";
import { UserStore } from "../../src/users/user.store.js";
import { DATABASES } from "../helpers/databases.js";
import { assertReadsThrough, openPlanDatabase, type PlanDatabase } from "../helpers/plans.js";

for (const kind of DATABASES) {
  describe(`the plans of the list queries (${kind})`, () => {
    let plans: PlanDatabase;
    /** A Kysely on the same connection that records the queries it runs. */
    let logged: Kysely<Database>;
    const ids = { author: randomUUID(), other: randomUUID(), post: randomUUID(), session: randomUUID() };

    before(async () => {
      plans = await openPlanDatabase(kind);
      logged = plans.logged;
      const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
      const later = new Date(Date.UTC(2099, 0, 1)).toISOString();
      const db = plans.handle.db;
      for (const [i, id] of [ids.author, ids.other].entries())
        await db
          .insertInto("users")
          .values({
            id,
            username: `u${i}`,
            username_normalized: `u${i}`,
            password_hash: "-",
            roles: '["USER"]',
            created_at: at(i),
            updated_at: at(i),
          })
          .execute();
      const posts = Array.from({ length: 200 }, (_, i) => ({
        id: i === 100 ? ids.post : randomUUID(),
        author_id: i % 2 ? ids.other : ids.author,
        title: "t",
        body: "b",
        created_at: at(i),
        updated_at: at(i),
      }));
      await db.insertInto("posts").values(posts).execute();
      const sessions = Array.from({ length: 40 }, (_, i) => ({
        id: i === 20 ? ids.session : randomUUID(),
        user_id: ids.author,
        created_at: at(i),
        last_used_at: at(i),
        expires_at: later,
        revoked_at: i % 4 === 0 ? at(i) : null,
      }));
      await db.insertInto("sessions").values(sessions).execute();
      await db
        .insertInto("audit_events")
        .values(Array.from({ length: 40 }, (_, i) => ({ type: "LOGIN_FAILED", user_id: ids.author, at: at(i) })))
        .execute();
    });

    after(async () => {
      await plans.close();
    });

    const planOf = (run: () => Promise<unknown>) => plans.planOf(run);

    const assertReadThrough = (plan: string[], table: string, index: string, direction: "newest" | "oldest") =>
      assertReadsThrough(kind, plan, table, index, direction);

    const page = (more: { offset?: number; after?: string } = {}) => ({ first: 20, offset: 0, ...more });

    it("posts: every post, newest first, through posts_created_at_idx", async () => {
      const posts = new PostStore(logged, kind);
      for (const args of [page(), page({ offset: 50 }), page({ after: ids.post })])
        assertReadThrough(await planOf(() => posts.list(args)), "posts", "posts_created_at_idx", "newest");
    });

    it("User.posts: each author's page is its own LIMITed seek in posts_author_created_id_idx", async () => {
      const posts = new PostStore(logged, kind);
      for (const args of [page(), page({ offset: 50 }), page({ after: ids.post })]) {
        const plan = await planOf(() => posts.listByAuthors([ids.author, ids.other], args));
        assertReadThrough(plan, "posts", "posts_author_created_id_idx", "newest");
      }
      // The answer is each author's page, newest first.
      const found = (await posts.listByAuthors([ids.author, ids.other], page({ after: ids.post })))!;
      for (const authorId of [ids.author, ids.other]) {
        const times = found.filter((p) => p.authorId === authorId).map((p) => p.createdAt.getTime());
        assert.equal(times.length, 20);
        assert.deepEqual(
          times,
          [...times].sort((a, b) => b - a),
        );
      }
    });

    it("sessions and apiTokens: the caller's live ones, newest first, through their partial indexes", async () => {
      const sessions = new SessionStore(logged);
      const tokens = new ApiTokenStore(logged);
      const now = new Date();
      for (const args of [page(), page({ after: ids.session })])
        assertReadThrough(
          await planOf(() => sessions.listActive(ids.author, now, args)),
          "sessions",
          "sessions_user_live_idx",
          "newest",
        );
      assertReadThrough(
        await planOf(() => tokens.listLive(ids.author, now, page())),
        "api_tokens",
        "api_tokens_user_live_idx",
        "newest",
      );
    });

    it("users and auditEvents: oldest and newest first, through their indexes, filtered or not", async () => {
      const users = new UserStore(logged, kind);
      const audit = new AuditStore(logged);
      assertReadThrough(
        await planOf(() => users.list(page({ after: ids.author }))),
        "users",
        "users_created_id_idx",
        "oldest",
      );
      const events = await audit.listNewest(page());
      const middle = events![10]!.id;
      assertReadThrough(
        await planOf(() => audit.listNewest(page({ after: middle }))),
        "audit_events",
        "audit_events_at_idx",
        "newest",
      );
      assertReadThrough(
        await planOf(() => audit.listNewest(page({ after: middle }), { type: "LOGIN_FAILED" })),
        "audit_events",
        "audit_events_type_at_idx",
        "newest",
      );
      assertReadThrough(
        await planOf(() => audit.listNewest(page(), { userId: ids.author })),
        "audit_events",
        "audit_events_user_at_idx",
        "newest",
      );
    });
  });
}
