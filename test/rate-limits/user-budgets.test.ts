import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { sql } from "kysely";

import { storedUserAgent } from "../../src/sessions/session.store.js";
import { SESSION_FIELD_LIMITS } from "../../src/sessions/session.type.js";
import {
  assertAccessRefused,
  assertRefreshRefused,
  codes,
  type GraphQLResponse,
  login,
  loginRaw,
  PASSWORD,
  refresh,
  refreshRaw,
  registerUser,
  sessionOf,
} from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const HOUR = 3600;

/** RATE_LIMITED with HTTP 200, `retryAfter` within the hour, and the limit's message. */
function assertRateLimited(res: GraphQLResponse, message: RegExp): void {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["RATE_LIMITED"], JSON.stringify(res.body.errors));
  const { retryAfter } = res.body.errors![0]!.extensions!;
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= HOUR, `retryAfter ${retryAfter}`);
  assert.match(res.body.errors![0]!.message, message);
}

function assertOk(res: GraphQLResponse): void {
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
}

async function rateLimitHits(t: TestApp, limit: string): Promise<number> {
  const line = (await t.app.metrics.text())
    .split("\n")
    .find((l) => l.startsWith(`gta_rate_limit_hits_total{limit="${limit}"} `));
  return Number(line?.split(" ")[1]);
}

const CREATE_POST = `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`;
const UPDATE_POST = `mutation($id: ID!, $title: String!) { updatePost(id: $id, input: { title: $title }) { id title } }`;
const DELETE_POST = `mutation($id: ID!) { deletePost(id: $id) }`;

async function createPost(t: TestApp, token: string): Promise<string> {
  const res = await t.gql(CREATE_POST, { token, variables: { input: { title: "a post", body: "its body" } } });
  assertOk(res);
  return res.body.data.createPost.id;
}

for (const kind of DATABASES) {
  describe(`UPDATE_POST_MAX_PER_USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { UPDATE_POST_MAX_PER_USER: "3" } });

    it("refuses the update past the limit with RATE_LIMITED and the title unchanged, does not charge refused updates, and leaves other users alone", async () => {
      const editor = await registerUser(t, "editor");
      const other = await registerUser(t, "other");
      const id = await createPost(t, editor.accessToken);
      const missing = await t.gql(UPDATE_POST, {
        token: editor.accessToken,
        variables: { id: "00000000-0000-0000-0000-000000000000", title: "x" },
      });
      assert.deepEqual(codes(missing), ["NOT_FOUND"], "a refused update is not charged");
      const forbidden = await t.gql(UPDATE_POST, { token: other.accessToken, variables: { id, title: "mine" } });
      assert.deepEqual(codes(forbidden), ["FORBIDDEN"]);
      for (let i = 1; i <= 3; i++)
        assertOk(await t.gql(UPDATE_POST, { token: editor.accessToken, variables: { id, title: `edit ${i}` } }));
      const before = await rateLimitHits(t, "UPDATE_POST_MAX_PER_USER");
      assertRateLimited(
        await t.gql(UPDATE_POST, { token: editor.accessToken, variables: { id, title: "edit 4" } }),
        /^Too many post updates were made by this account\. Try again in \d+ seconds\.$/,
      );
      assert.equal(await rateLimitHits(t, "UPDATE_POST_MAX_PER_USER"), before + 1);
      const post = await t.gql(`query($id: ID!) { post(id: $id) { title } }`, { variables: { id } });
      assert.equal(post.body.data.post.title, "edit 3");
      const otherPost = await createPost(t, other.accessToken);
      assertOk(await t.gql(UPDATE_POST, { token: other.accessToken, variables: { id: otherPost, title: "fine" } }));
    });
  });

  describe(`LOGIN_MAX_PER_USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { LOGIN_MAX_PER_USER: "2" } });

    it("refuses the right password past the limit with RATE_LIMITED and no session, never charges a wrong one, and counts per account", async () => {
      await registerUser(t, "busy");
      await registerUser(t, "calm");
      const wrong = await loginRaw(t, "busy", { password: "not the password" });
      assert.deepEqual(codes(wrong), ["UNAUTHENTICATED"]);
      await login(t, "busy");
      await login(t, "busy");
      const sessionsBefore = await liveSessions(t);
      assertRateLimited(await loginRaw(t, "busy"), /^Too many sign-ins to this account\./);
      assert.equal(await liveSessions(t), sessionsBefore, "no session was written");
      const stillWrong = await loginRaw(t, "busy", { password: "not the password" });
      assert.deepEqual(codes(stillWrong), ["UNAUTHENTICATED"], "a wrong password is refused as before");
      await login(t, "calm");
      assert.equal(await rateLimitHits(t, "LOGIN_MAX_PER_USER"), 1);
    });
  });

  describe(`REFRESH_MAX_PER_USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { REFRESH_MAX_PER_USER: "2" } });

    it("refuses the refresh past the limit with RATE_LIMITED and leaves that refresh token unspent", async () => {
      const user = await registerUser(t, "refresher");
      const first = await refresh(t, user.refreshToken);
      const second = await refresh(t, first.refreshToken);
      assertRateLimited(await refreshRaw(t, second.refreshToken), /^Too many token refreshes by this account\./);
      // Not rotated and not taken for reuse: the same token is refused for the limit again, not ended.
      assertRateLimited(await refreshRaw(t, second.refreshToken), /^Too many token refreshes/);
      const me = await t.gql(`{ me { id } }`, { token: second.accessToken });
      assert.deepEqual(codes(me), [], "the session is still live");
    });
  });

  describe(`WRITES_MAX_PER_USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { WRITES_MAX_PER_USER: "2" } });

    it("refuses the third deletePost within the hour with RATE_LIMITED and the post kept, not charging a NOT_FOUND", async () => {
      const user = await registerUser(t, "deleter");
      const ids = [await createPost(t, user.accessToken), await createPost(t, user.accessToken)];
      ids.push(await createPost(t, user.accessToken));
      const missing = await t.gql(DELETE_POST, {
        token: user.accessToken,
        variables: { id: "00000000-0000-0000-0000-000000000000" },
      });
      assert.deepEqual(codes(missing), ["NOT_FOUND"]);
      assertOk(await t.gql(DELETE_POST, { token: user.accessToken, variables: { id: ids[0] } }));
      assertOk(await t.gql(DELETE_POST, { token: user.accessToken, variables: { id: ids[1] } }));
      assertRateLimited(
        await t.gql(DELETE_POST, { token: user.accessToken, variables: { id: ids[2] } }),
        /^Too many changes were made by this account\./,
      );
      const kept = await t.gql(`query($id: ID!) { post(id: $id) { id } }`, { variables: { id: ids[2] } });
      assert.equal(kept.body.data.post.id, ids[2]);
    });

    it("charges revokeSession and logout to the session: one that used up its budget cannot stop another session of the account from signing the others out", async () => {
      // `noisy` stands for a stolen token looping over writes; `owner` is the account's owner.
      const noisy = await registerUser(t, "owner");
      const owner = await login(t, "owner");
      const spare = await login(t, "owner");
      const revoke = `mutation($id: ID!) { revokeSession(id: $id) }`;
      const variables = { id: sessionOf(spare.accessToken) };
      assert.deepEqual((await t.gql(revoke, { token: noisy.accessToken, variables })).body, {
        data: { revokeSession: true },
      });
      assert.deepEqual((await t.gql(revoke, { token: noisy.accessToken, variables })).body, {
        data: { revokeSession: false },
      });
      assertRateLimited(await t.gql(revoke, { token: noisy.accessToken, variables }), /^Too many changes/);
      const res = await t.gql(`mutation { logout(scope: OTHERS) }`, { token: owner.accessToken });
      assert.deepEqual(res.body, { data: { logout: true } });
      await assertAccessRefused(t, noisy.accessToken);
      await assertRefreshRefused(t, noisy.refreshToken);
    });
  });

  describe(`SESSIONS_MAX_PER_USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { SESSIONS_MAX_PER_USER: "3" } });

    it("ends the least recently used session when a login would make one more than the cap, audited as SESSION_EVICTED", async () => {
      const first = await registerUser(t, "many");
      const second = await login(t, "many");
      const third = await login(t, "many");
      // Refreshing the first makes the second the least recently used.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const refreshed = await refresh(t, first.refreshToken);
      const fourth = await login(t, "many");
      await assertAccessRefused(t, second.accessToken);
      await assertRefreshRefused(t, second.refreshToken);
      for (const live of [refreshed, third, fourth])
        assert.deepEqual(codes(await t.gql(`{ me { id } }`, { token: live.accessToken })), []);
      const sessions = await t.gql(`{ sessions { id } }`, { token: fourth.accessToken });
      assert.deepEqual(
        sessions.body.data.sessions.map((s: { id: string }) => s.id).sort(),
        [first, third, fourth].map((s) => sessionOf(s.accessToken)).sort(),
      );
      await t.app.audit.settled();
      const events = await sql<{
        session_id: string;
        detail: string;
      }>`select session_id, detail from audit_events where type = 'SESSION_EVICTED'`.execute(t.app.database.db);
      assert.deepEqual(events.rows, [
        { session_id: sessionOf(second.accessToken), detail: `by=${sessionOf(fourth.accessToken)} max=3` },
      ]);
      const text = await t.app.metrics.text();
      assert.match(text, /^gta_sessions_ended_total\{cause="session_limit"\} 1$/m);
    });

    it("stores at most 256 characters of a session's User-Agent", async () => {
      const userAgent = "Mozilla/5.0 " + "x".repeat(500);
      const session = await login(t, "many", { userAgent, password: PASSWORD });
      const res = await t.gql(`{ sessions { userAgent current } }`, { token: session.accessToken });
      const stored = res.body.data.sessions.find((s: { current: boolean }) => s.current).userAgent as string;
      assert.equal(stored, userAgent.slice(0, SESSION_FIELD_LIMITS.userAgent));
    });

    it("cuts a User-Agent on a character boundary, never inside a surrogate pair", () => {
      // Over HTTP a header is Latin-1; the cut is by code points all the same.
      assert.equal(storedUserAgent("a".repeat(255) + "\u{1F600}".repeat(200)), "a".repeat(255) + "\u{1F600}");
      assert.equal(storedUserAgent("\u{1F600}".repeat(300)), "\u{1F600}".repeat(256));
      assert.equal(storedUserAgent("short"), "short");
      assert.equal(storedUserAgent(undefined), null);
    });
  });
}

async function liveSessions(t: TestApp): Promise<number> {
  const result = await sql<{ n: number | string }>`select count(*) as n from sessions where revoked_at is null`.execute(
    t.app.database.db,
  );
  return Number(result.rows[0]!.n);
}
