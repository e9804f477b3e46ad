// deleteAccount: with a fresh session token and the password, the user, their posts, sessions and
// API tokens go in one transaction, every token of theirs is refused on every instance within a
// second, and the audit log keeps the event with the username; a wrong password, a token that is
// not fresh, an API token or the last active ADMIN change nothing. On SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ROOT, rootToken, withRoot } from "../helpers/admin.js";
import {
  assertAccessAccepted,
  assertInvalidToken,
  assertRefreshRefused,
  codes,
  login,
  loginRaw,
  me,
  PASSWORD,
  refresh,
  registerUser,
  sessionOf,
} from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const DELETE = `mutation($password: String!) { deleteAccount(password: $password) }`;
const CREATE_API_TOKEN = `mutation { createApiToken(input: { name: "script", scopes: [PROFILE_READ, POSTS_WRITE] }) { token apiToken { id } } }`;
const CREATE_POST = `mutation { createPost(input: { title: "doomed", body: "b" }) { id } }`;

/** How many rows of each table belong to the user. */
async function rowsOf(t: TestApp, userId: string): Promise<Record<string, number>> {
  const db = t.app.database.db;
  const sessions = await db.selectFrom("sessions").select("id").where("user_id", "=", userId).execute();
  const refreshTokens =
    sessions.length === 0
      ? []
      : await db
          .selectFrom("refresh_tokens")
          .select("id")
          .where(
            "session_id",
            "in",
            sessions.map((s) => s.id),
          )
          .execute();
  return {
    users: (await db.selectFrom("users").select("id").where("id", "=", userId).execute()).length,
    posts: (await db.selectFrom("posts").select("id").where("author_id", "=", userId).execute()).length,
    sessions: sessions.length,
    refreshTokens: refreshTokens.length,
    apiTokens: (await db.selectFrom("api_tokens").select("id").where("user_id", "=", userId).execute()).length,
  };
}

/** A user with two sessions, an API token and two posts. */
async function populated(t: TestApp, username: string) {
  const first = await registerUser(t, username);
  const second = await login(t, username);
  const apiToken = (await t.gql(CREATE_API_TOKEN, { token: first.accessToken })).body.data.createApiToken.token;
  await t.gql(CREATE_POST, { token: first.accessToken });
  await t.gql(CREATE_POST, { token: apiToken });
  assert.deepEqual(await rowsOf(t, first.userId), {
    users: 1,
    posts: 2,
    sessions: 2,
    refreshTokens: 2,
    apiTokens: 1,
  });
  return { first, second, apiToken };
}

for (const kind of DATABASES) {
  describe(`deleteAccount (${kind})`, () => {
    const t = useTestApp(kind, withRoot());

    it("removes the user, their posts, sessions and API tokens; their tokens are refused; the audit log keeps the username", async () => {
      const { first, second, apiToken } = await populated(t, "leaving");
      const bystander = await registerUser(t, "staying");
      await t.gql(CREATE_POST, { token: bystander.accessToken });

      const res = await t.gql(DELETE, { token: first.accessToken, variables: { password: PASSWORD } });
      assert.deepEqual(res.body, { data: { deleteAccount: true } });
      assert.deepEqual(await rowsOf(t, first.userId), {
        users: 0,
        posts: 0,
        sessions: 0,
        refreshTokens: 0,
        apiTokens: 0,
      });
      for (const tokens of [first, second]) {
        assertInvalidToken(await me(t, tokens.accessToken), { reason: "SESSION_ENDED" });
        await assertRefreshRefused(t, tokens.refreshToken);
      }
      assertInvalidToken(await me(t, apiToken), { reason: "API_TOKEN_REVOKED" });
      assert.deepEqual(codes(await loginRaw(t, "leaving", { password: PASSWORD })), ["UNAUTHENTICATED"]);
      // Someone else's data is untouched.
      await assertAccessAccepted(t, bystander.accessToken, bystander.userId);
      assert.equal((await rowsOf(t, bystander.userId)).posts, 1);

      const admin = await rootToken(t);
      const events = await t.gql(
        `query($id: ID!) { auditEvents(first: 5, type: "ACCOUNT_DELETED", userId: $id) { username detail sessionId } }`,
        {
          token: admin,
          variables: { id: first.userId },
        },
      );
      assert.deepEqual(events.body.data.auditEvents, [
        {
          username: "leaving",
          detail: "posts=2 sessions=2 apiTokens=1",
          sessionId: events.body.data.auditEvents[0]?.sessionId,
        },
      ]);
      assert.ok(events.body.data.auditEvents[0].sessionId, "the event names the session that asked");
      // Earlier events of the user stay too.
      const earlier = await t.gql(`query($id: ID!) { auditEvents(first: 50, userId: $id) { type } }`, {
        token: admin,
        variables: { id: first.userId },
      });
      assert.ok(earlier.body.data.auditEvents.some((e: { type: string }) => e.type === "REGISTERED"));

      // The name is free again.
      const reborn = await registerUser(t, "leaving");
      assert.notEqual(reborn.userId, first.userId);
      assert.match(await t.app.metrics.text(), /gta_sessions_ended_total\{cause="account_deleted"\} 2/);
    });

    it("changes nothing with a wrong password (BAD_USER_INPUT on password)", async () => {
      const { first, apiToken } = await populated(t, "wrong-password");
      const before = await rowsOf(t, first.userId);
      const res = await t.gql(DELETE, { token: first.accessToken, variables: { password: "not my password" } });
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.deepEqual(
        res.body.errors![0]!.extensions!.fields.map((f: { field: string; rule: string }) => [f.field, f.rule]),
        [["password", "matches"]],
      );
      assert.equal(res.body.data, null);
      const tooLong = await t.gql(DELETE, { token: first.accessToken, variables: { password: "x".repeat(10_000) } });
      assert.deepEqual(codes(tooLong), ["BAD_USER_INPUT"]);
      assert.deepEqual(await rowsOf(t, first.userId), before);
      await assertAccessAccepted(t, first.accessToken, first.userId);
      assert.equal((await me(t, apiToken)).body.data.me.id, first.userId);
    });

    it("needs a fresh session token: a refreshed one and an API token are refused, and nothing changes", async () => {
      const { first, apiToken } = await populated(t, "not-fresh");
      const refreshed = await refresh(t, first.refreshToken);
      const stale = await t.gql(DELETE, { token: refreshed.accessToken, variables: { password: PASSWORD } });
      assert.deepEqual(codes(stale), ["FRESH_TOKEN_REQUIRED"]);
      const byApiToken = await t.gql(DELETE, { token: apiToken, variables: { password: PASSWORD } });
      assert.deepEqual(codes(byApiToken), ["FORBIDDEN"]);
      assert.equal(byApiToken.body.errors![0]!.extensions!.reason, "SCOPE");
      const anonymous = await t.gql(DELETE, { variables: { password: PASSWORD } });
      assert.deepEqual(codes(anonymous), ["UNAUTHENTICATED"]);
      assert.equal((await rowsOf(t, first.userId)).users, 1);
    });

    it("refuses the last active ADMIN", async () => {
      const root = await login(t, ROOT.username, { password: ROOT.password });
      const res = await t.gql(DELETE, { token: root.accessToken, variables: { password: ROOT.password } });
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.equal(res.body.errors![0]!.extensions!.fields[0].rule, "lastAdmin");
      await assertAccessAccepted(t, root.accessToken, root.userId);
    });
  });

  describe(`deleteAccount with access tokens that live two days (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ JWT_ACCESS_TOKEN_EXPIRES: "2d" }));

    it("keeps a deleted session's tombstone as long as its access tokens live, and prunes older ones", async () => {
      const hour = 60 * 60 * 1000;
      const db = t.app.database.db;
      const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
      await db
        .insertInto("revoked_credentials")
        .values([
          { id: "session-gone-30h-ago", kind: "session", revoked_at: ago(30 * hour) },
          { id: "session-gone-3d-ago", kind: "session", revoked_at: ago(72 * hour) },
        ])
        .execute();
      const leaving = await registerUser(t, "leaving-2d");
      const res = await t.gql(DELETE, { token: leaving.accessToken, variables: { password: PASSWORD } });
      assert.deepEqual(res.body, { data: { deleteAccount: true } });
      const kept = await db.selectFrom("revoked_credentials").select("id").orderBy("id").execute();
      assert.deepEqual(
        kept.map((row) => row.id),
        [sessionOf(leaving.accessToken), "session-gone-30h-ago"].sort(),
        "a 30-hour-old tombstone still matters for a token that lives 48 hours",
      );
    });
  });

  describe(`deleteAccount across instances (${kind})`, () => {
    const [a, b] = useTwoTestApps(kind, withRoot());

    it("refuses the deleted user's access and API tokens on the other instance within a second", async () => {
      const { first, second, apiToken } = await populated(a, "two-instance-delete");
      // B has verified both once: the access token from its signature, the API token into its cache.
      await assertAccessAccepted(b, second.accessToken, first.userId);
      assert.equal((await me(b, apiToken)).body.data.me.id, first.userId);
      const started = performance.now();
      assert.deepEqual((await a.gql(DELETE, { token: first.accessToken, variables: { password: PASSWORD } })).body, {
        data: { deleteAccount: true },
      });
      for (const [token, reason] of [
        [second.accessToken, "SESSION_ENDED"],
        [apiToken, "API_TOKEN_REVOKED"],
      ] as const) {
        let res = await me(b, token);
        while (res.status === 200 && performance.now() - started < 3000) res = await me(b, token);
        assertInvalidToken(res, { reason });
      }
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `refused after ${Math.round(elapsed)} ms`);
      // The tombstones the other instance read them from.
      const tombstones = await a.app.database.db.selectFrom("revoked_credentials").select(["kind"]).execute();
      assert.deepEqual(tombstones.map((r) => r.kind).sort(), ["api_token", "session", "session"]);
    });
  });
}
