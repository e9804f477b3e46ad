// Scoped API tokens: created with a fresh session token, shown once and stored as a hash, acting for
// their owner with at most their scopes, refused on session-only fields, limited to 365 days, and
// revoked on every instance within a second, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  type ApiClient,
  assertInvalidToken,
  assertRefreshRefusedResponse,
  codes,
  type GraphQLResponse,
  login,
  refresh,
  refreshRaw,
  registerUser,
} from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed } from "../helpers/ws.js";

const ROOT = { username: "root", password: "root password 1" };
const API_TOKEN_SHAPE = /^gta_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/;

const CREATE = `mutation($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { token apiToken { id name scopes createdAt expiresAt lastUsedAt } }
}`;
const LIST = `{ apiTokens { id name scopes expiresAt lastUsedAt } }`;
const REVOKE = `mutation($id: ID!) { revokeApiToken(id: $id) }`;
const CREATE_POST = `mutation { createPost(input: { title: "from a script", body: "hello" }) { id author { id } } }`;

/** Creates an API token with `scopes` using a fresh session token; fails the test on any error. */
async function createApiToken(
  t: ApiClient,
  sessionToken: string,
  scopes: string[],
  extra: Record<string, unknown> = {},
): Promise<{ token: string; id: string }> {
  const res = await t.gql(CREATE, { token: sessionToken, variables: { input: { name: "ci", scopes, ...extra } } });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return { token: res.body.data.createApiToken.token, id: res.body.data.createApiToken.apiToken.id };
}

/** gta_api_token_uses_total{scope="ADMIN"} of the app's metrics. */
async function adminScopeUses(t: TestApp): Promise<number> {
  const line = (await t.app.metrics.text())
    .split("\n")
    .find((l) => l.startsWith('gta_api_token_uses_total{scope="ADMIN"}'));
  assert.ok(line, "the counter is exported");
  return Number(line.split(" ").at(-1));
}

/** The one error's code and reason. */
function refusal(res: GraphQLResponse): [string | undefined, string | undefined] {
  assert.equal(res.body.errors?.length, 1, JSON.stringify(res.body));
  return [res.body.errors[0]!.extensions?.code, res.body.errors[0]!.extensions?.reason];
}

for (const kind of DATABASES) {
  describe(`API tokens (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password } });

    it("creates a token shown once, stores only its secret's hash, and lists it without the token", async () => {
      const owner = await registerUser(t, "scripter");
      const res = await t.gql(CREATE, {
        token: owner.accessToken,
        variables: { input: { name: "deploy bot", scopes: ["POSTS_WRITE", "PROFILE_READ", "POSTS_WRITE"] } },
      });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const created = res.body.data.createApiToken;
      assert.match(created.token, API_TOKEN_SHAPE);
      assert.equal(created.apiToken.name, "deploy bot");
      assert.deepEqual(created.apiToken.scopes, ["POSTS_WRITE", "PROFILE_READ"]);
      assert.equal(created.apiToken.lastUsedAt, null);
      const lifetimeDays =
        (Date.parse(created.apiToken.expiresAt) - Date.parse(created.apiToken.createdAt)) / (24 * 3600 * 1000);
      assert.equal(lifetimeDays, 90, "the default lifetime is 90 days");

      const row = await t.app.database.db
        .selectFrom("api_tokens")
        .selectAll()
        .where("id", "=", created.apiToken.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.user_id, owner.userId);
      assert.match(row.secret_hash, /^[0-9a-f]{64}$/);
      // gta_<uuid>_<43 characters>: the secret is the last 43 (it may itself hold "_").
      const secret = created.token.slice(-43);
      assert.equal(secret.length, 43);
      for (const value of Object.values(row)) {
        assert.ok(!String(value).includes(secret), "no column holds the token's secret");
      }

      const list = await t.gql(LIST, { token: owner.accessToken });
      assert.deepEqual(
        list.body.data.apiTokens.map((token: { id: string; name: string }) => [token.id, token.name]),
        [[created.apiToken.id, "deploy bot"]],
      );
      assert.ok(!JSON.stringify(list.body).includes(secret), "the list never shows the token");
    });

    it("acts for its owner with its scopes: PROFILE_READ reads me, POSTS_WRITE writes posts, neither does the other", async () => {
      const owner = await registerUser(t, "two-scopes");
      const reader = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      const writer = await createApiToken(t, owner.accessToken, ["POSTS_WRITE"]);

      const me = await t.gql(`{ me { id username } }`, { token: reader.token });
      assert.deepEqual(me.body.data, { me: { id: owner.userId, username: "two-scopes" } });
      const post = await t.gql(CREATE_POST, { token: writer.token });
      assert.equal(post.body.data.createPost.author.id, owner.userId, JSON.stringify(post.body.errors));

      assert.deepEqual(refusal(await t.gql(CREATE_POST, { token: reader.token })), ["FORBIDDEN", "SCOPE"]);
      assert.deepEqual(refusal(await t.gql(`{ me { id } }`, { token: writer.token })), ["FORBIDDEN", "SCOPE"]);
      const deleted = await t.gql(`mutation($id: ID!) { deletePost(id: $id) }`, {
        token: reader.token,
        variables: { id: post.body.data.createPost.id },
      });
      assert.deepEqual(refusal(deleted), ["FORBIDDEN", "SCOPE"]);
      const stillThere = await t.app.database.db
        .selectFrom("posts")
        .select("id")
        .where("id", "=", post.body.data.createPost.id)
        .execute();
      assert.equal(stillThere.length, 1, "a refused deletePost deletes nothing");

      // Public fields work with any scopes.
      const posts = await t.gql(`{ posts(first: 5) { title } }`, { token: reader.token });
      assert.equal(posts.body.errors, undefined);
      assert.ok(posts.body.data.posts.some((p: { title: string }) => p.title === "from a script"));
    });

    it("never grants more than the owner has: an ADMIN scope without the ADMIN role is refused at creation, an ADMIN's token without the scope is SCOPE", async () => {
      const plain = await registerUser(t, "not-an-admin");
      const plainAdminScope = await t.gql(CREATE, {
        token: plain.accessToken,
        variables: { input: { name: "too much", scopes: ["ADMIN", "PROFILE_READ"] } },
      });
      assert.deepEqual(refusal(plainAdminScope), ["FORBIDDEN", "SCOPE"]);
      assert.equal(
        plainAdminScope.body.errors![0]!.message,
        "The scope ADMIN needs the ADMIN role, which this account does not have: create the token without ADMIN.",
      );
      assert.equal(plainAdminScope.body.data, null);
      const stored = await t.app.database.db
        .selectFrom("api_tokens")
        .select("id")
        .where("user_id", "=", plain.userId)
        .execute();
      assert.deepEqual(stored, [], "nothing was stored");

      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const adminWriter = await createApiToken(t, admin.accessToken, ["POSTS_WRITE", "PROFILE_READ"]);
      assert.deepEqual(refusal(await t.gql(`{ users { id } }`, { token: adminWriter.token })), ["FORBIDDEN", "SCOPE"]);
      // The ADMIN override of post ownership is an ADMIN right: without the scope it does not apply.
      const someone = await registerUser(t, "someone-else");
      const theirs = await t.gql(CREATE_POST, { token: someone.accessToken });
      const id = theirs.body.data.createPost.id;
      const edit = await t.gql(`mutation($id: ID!) { updatePost(id: $id, input: { title: "defaced" }) { title } }`, {
        token: adminWriter.token,
        variables: { id },
      });
      assert.deepEqual(refusal(edit), ["FORBIDDEN", "OWNERSHIP"]);
      const meAsAdmin = await t.gql(`{ me { roles } }`, { token: adminWriter.token });
      assert.deepEqual(meAsAdmin.body.data.me.roles.sort(), ["ADMIN", "USER"], "me still shows the owner's roles");

      const adminToken = await createApiToken(t, admin.accessToken, ["ADMIN"]);
      const usesBefore = await adminScopeUses(t);
      const users = await t.gql(`{ users(first: 100) { username } }`, { token: adminToken.token });
      assert.equal(users.body.errors, undefined, JSON.stringify(users.body.errors));
      assert.ok(users.body.data.users.some((u: { username: string }) => u.username === "someone-else"));
      assert.equal(await adminScopeUses(t), usesBefore + 1, "gta_api_token_uses_total{scope=ADMIN} counted the use");
    });

    it("applies a role change to the next request: a demoted ADMIN's ADMIN-scoped token loses the ADMIN fields", async () => {
      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const promoted = await registerUser(t, "briefly-admin");
      const setRoles = `mutation($id: ID!, $roles: [Role!]!) { setUserRoles(userId: $id, roles: $roles) { roles } }`;
      await t.gql(setRoles, { token: admin.accessToken, variables: { id: promoted.userId, roles: ["USER", "ADMIN"] } });
      const fresh = await login(t, "briefly-admin");
      const token = await createApiToken(t, fresh.accessToken, ["ADMIN"]);
      assert.equal((await t.gql(`{ users { id } }`, { token: token.token })).body.errors, undefined);
      await t.gql(setRoles, { token: admin.accessToken, variables: { id: promoted.userId, roles: ["USER"] } });
      assert.deepEqual(refusal(await t.gql(`{ users { id } }`, { token: token.token })), ["FORBIDDEN", "ROLE"]);
    });

    it("refuses API tokens on the session-only fields with FORBIDDEN SCOPE, and changes nothing", async () => {
      // An ADMIN, so that the token may carry every scope: even the broadest token is refused.
      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const owner = await registerUser(t, "session-only");
      await t.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER, ADMIN]) { id } }`, {
        token: admin.accessToken,
        variables: { id: owner.userId },
      });
      const token = await createApiToken(t, owner.accessToken, ["PROFILE_READ", "POSTS_WRITE", "ADMIN"]);
      const cases = [
        `{ sessions { id } }`,
        `{ apiTokens { id } }`,
        `mutation { logout(scope: ALL) }`,
        `mutation { revokeApiToken(id: "${token.id}") }`,
        `mutation { createApiToken(input: { name: "child", scopes: [ADMIN] }) { token } }`,
        `mutation { changePassword(input: { currentPassword: "correct horse battery", newPassword: "another horse battery" }) }`,
      ];
      for (const query of cases)
        assert.deepEqual(refusal(await t.gql(query, { token: token.token })), ["FORBIDDEN", "SCOPE"], query);
      const rows = await t.app.database.db
        .selectFrom("api_tokens")
        .select(["id", "revoked_at"])
        .where("user_id", "=", owner.userId)
        .execute();
      assert.deepEqual(rows, [{ id: token.id, revoked_at: null }], "no token was created or revoked");
      const sessions = await t.app.database.db
        .selectFrom("sessions")
        .select("revoked_at")
        .where("user_id", "=", owner.userId)
        .execute();
      assert.deepEqual(sessions, [{ revoked_at: null }], "logout through an API token ended nothing");
    });

    it("needs a fresh session token to create one, and refuses lifetimes over 365 days or without a unit", async () => {
      const owner = await registerUser(t, "lifetimes");
      const refreshed = await refresh(t, owner.refreshToken);
      const stale = await t.gql(CREATE, {
        token: refreshed.accessToken,
        variables: { input: { name: "x", scopes: ["PROFILE_READ"] } },
      });
      assert.deepEqual(codes(stale), ["FRESH_TOKEN_REQUIRED"]);

      const fresh = await login(t, "lifetimes");
      for (const [expiresIn, field] of [
        ["366d", "expiresIn"],
        ["8761h", "expiresIn"],
        ["0d", "expiresIn"],
        ["90", "expiresIn"],
        ["forever", "expiresIn"],
      ] as const) {
        const res = await t.gql(CREATE, {
          token: fresh.accessToken,
          variables: { input: { name: "x", scopes: ["PROFILE_READ"], expiresIn } },
        });
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"], expiresIn);
        assert.ok(
          res.body.errors![0]!.extensions!.fields.some((f: { field: string }) => f.field === field),
          `${expiresIn}: ${JSON.stringify(res.body.errors![0]!.extensions!.fields)}`,
        );
      }
      const noScopes = await t.gql(CREATE, {
        token: fresh.accessToken,
        variables: { input: { name: "x", scopes: [] } },
      });
      assert.deepEqual(codes(noScopes), ["BAD_USER_INPUT"]);
      const blank = await t.gql(CREATE, {
        token: fresh.accessToken,
        variables: { input: { name: "   ", scopes: ["PROFILE_READ"] } },
      });
      assert.deepEqual(codes(blank), ["BAD_USER_INPUT"]);
      const stored = await t.app.database.db
        .selectFrom("api_tokens")
        .select("id")
        .where("user_id", "=", owner.userId)
        .execute();
      assert.equal(stored.length, 0, "no refused request stored a token");

      const year = await createApiToken(t, fresh.accessToken, ["PROFILE_READ"], { expiresIn: "365d" });
      const row = await t.app.database.db
        .selectFrom("api_tokens")
        .select(["created_at", "expires_at"])
        .where("id", "=", year.id)
        .executeTakeFirstOrThrow();
      assert.equal((new Date(row.expires_at).getTime() - new Date(row.created_at).getTime()) / 86_400_000, 365);
    });

    it("refuses an expired token with 401 API_TOKEN_EXPIRED, and forged, altered or unknown ones with 401 TOKEN_INVALID", async () => {
      const owner = await registerUser(t, "expiring");
      const short = await createApiToken(t, owner.accessToken, ["PROFILE_READ"], { expiresIn: "1s" });
      assert.equal((await t.gql(`{ me { id } }`, { token: short.token })).body.errors, undefined);
      await sleep(1100);
      assertInvalidToken(await t.gql(`{ me { id } }`, { token: short.token }), {
        reason: "API_TOKEN_EXPIRED",
        exact: true,
      });

      const good = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      const last = good.token.at(-1) === "A" ? "B" : "A";
      const altered = good.token.slice(0, -1) + last;
      const unknownId = good.token.replace(/^gta_[0-9a-f]{8}/, "gta_00000000");
      for (const token of [altered, unknownId, `gta_${"0".repeat(10)}`]) {
        assertInvalidToken(await t.gql(`{ me { id } }`, { token }), { reason: "TOKEN_INVALID" });
      }
      // The genuine one still works after its altered copies were refused (and remembered as refused).
      assert.equal((await t.gql(`{ me { id } }`, { token: good.token })).body.data.me.id, owner.userId);
    });

    it("is no refresh token and no access token: refreshToken refuses it, and an access token is never taken for one", async () => {
      const owner = await registerUser(t, "kinds");
      const token = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      assertRefreshRefusedResponse(await refreshRaw(t, token.token));
      // A refresh token as a bearer token is refused, as before.
      assertInvalidToken(await t.gql(`{ me { id } }`, { token: owner.refreshToken }), { reason: "TOKEN_INVALID" });
    });

    it("records lastUsedAt after a use, coarsely: not a write per request", async () => {
      const owner = await registerUser(t, "last-used");
      const token = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      for (let i = 0; i < 5; i++) await t.gql(`{ me { id } }`, { token: token.token });
      let lastUsedAt: string | null = null;
      for (let i = 0; i < 50 && !lastUsedAt; i++) {
        const list = await t.gql(LIST, { token: owner.accessToken });
        lastUsedAt = list.body.data.apiTokens[0].lastUsedAt;
        if (!lastUsedAt) await sleep(20);
      }
      assert.ok(lastUsedAt, "lastUsedAt was recorded");
      const first = lastUsedAt;
      await sleep(20);
      for (let i = 0; i < 5; i++) await t.gql(`{ me { id } }`, { token: token.token });
      await sleep(100);
      const again = await t.gql(LIST, { token: owner.accessToken });
      assert.equal(again.body.data.apiTokens[0].lastUsedAt, first, "later uses within minutes write nothing");
    });

    it("revokes one's own token (false the second time), refuses someone else's and unknown ids, and audits it", async () => {
      const owner = await registerUser(t, "revoker");
      const other = await registerUser(t, "other-revoker");
      const token = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      const theirs = await t.gql(REVOKE, { token: other.accessToken, variables: { id: token.id } });
      assert.deepEqual(refusal(theirs), ["FORBIDDEN", "OWNERSHIP"]);
      assert.equal((await t.gql(`{ me { id } }`, { token: token.token })).body.data.me.id, owner.userId);
      const unknown = await t.gql(REVOKE, {
        token: owner.accessToken,
        variables: { id: "00000000-0000-4000-8000-000000000000" },
      });
      assert.deepEqual(codes(unknown), ["NOT_FOUND"]);

      const revoked = await t.gql(REVOKE, { token: owner.accessToken, variables: { id: token.id } });
      assert.deepEqual(revoked.body, { data: { revokeApiToken: true } });
      assertInvalidToken(await t.gql(`{ me { id } }`, { token: token.token }), {
        reason: "API_TOKEN_REVOKED",
        exact: true,
      });
      const twice = await t.gql(REVOKE, { token: owner.accessToken, variables: { id: token.id } });
      assert.deepEqual(twice.body, { data: { revokeApiToken: false } });
      const list = await t.gql(LIST, { token: owner.accessToken });
      assert.deepEqual(list.body.data.apiTokens, [], "a revoked token is no longer listed");

      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const events = await t.gql(`query($u: ID!) { auditEvents(first: 10, userId: $u) { type detail sessionId } }`, {
        token: admin.accessToken,
        variables: { u: owner.userId },
      });
      const byType = new Map<string, { detail: string; sessionId: string | null }>(
        events.body.data.auditEvents.map((e: { type: string; detail: string; sessionId: string | null }) => [
          e.type,
          e,
        ]),
      );
      assert.match(byType.get("API_TOKEN_CREATED")!.detail, new RegExp(`apiToken=${token.id} scopes=PROFILE_READ`));
      assert.match(byType.get("API_TOKEN_REVOKED")!.detail, new RegExp(`apiToken=${token.id}`));
      assert.ok(byType.get("API_TOKEN_CREATED")!.sessionId, "the session that created it is recorded");
      const filtered = await t.gql(
        `{ auditEvents(first: 10, type: "API_TOKEN_REVOKED", userId: "${owner.userId}") { type } }`,
        {
          token: admin.accessToken,
        },
      );
      assert.deepEqual(filtered.body.data.auditEvents, [{ type: "API_TOKEN_REVOKED" }]);
      assert.ok(!JSON.stringify(events.body).includes(token.token.slice(-43)), "no audit row holds the token");
      const rejected = events.body.data.auditEvents.find((e: { type: string }) => e.type === "TOKEN_REJECTED");
      assert.match(rejected?.detail ?? "", /reason=API_TOKEN_REVOKED/);
    });

    it("revokeUserSessions ends the user's API tokens too, and counts them", async () => {
      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const owner = await registerUser(t, "lost-laptop");
      const token = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      const res = await t.gql(`mutation($id: ID!) { revokeUserSessions(userId: $id) }`, {
        token: admin.accessToken,
        variables: { id: owner.userId },
      });
      assert.deepEqual(res.body, { data: { revokeUserSessions: 2 } }, "one session and one API token");
      assertInvalidToken(await t.gql(`{ me { id } }`, { token: token.token }), {
        reason: "API_TOKEN_REVOKED",
        exact: true,
      });
      const row = await t.app.database.db
        .selectFrom("api_tokens")
        .select("revoked_reason")
        .where("id", "=", token.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.revoked_reason, "revoked_by_admin");
    });

    it("subscribes over WebSocket with PROFILE_READ, refuses without it, and closes with 4403 when revoked", async () => {
      const owner = await registerUser(t, "ws-script");
      const reader = await createApiToken(t, owner.accessToken, ["PROFILE_READ"]);
      const writer = await createApiToken(t, owner.accessToken, ["POSTS_WRITE"]);

      const refused = connect(t.url, { token: writer.token });
      await refused.connected;
      const denied = new Feed(refused.client, { query: `subscription { postCreated { id } }` });
      await denied.until((feed) => feed.error !== undefined || feed.results.length > 0);
      assert.equal(JSON.stringify(denied.error ?? denied.results).includes("SCOPE"), true, "refused with SCOPE");
      void refused.client.dispose();

      const socket = connect(t.url, { token: reader.token });
      await socket.connected;
      const feed = new Feed(socket.client, { query: `subscription { postCreated { title } }` });
      await sleep(100);
      await t.gql(CREATE_POST, { token: writer.token });
      await feed.until((f) => f.results.length > 0);
      assert.equal(feed.results[0].data.postCreated.title, "from a script");

      const started = performance.now();
      await t.gql(REVOKE, { token: owner.accessToken, variables: { id: reader.id } });
      const closed = await socket.closed;
      assert.equal(closed.code, 4403);
      assert.ok(closed.at - started < 1000, `closed ${Math.round(closed.at - started)} ms after the revocation`);
    });
  });

  describe(`API token revocation across instances (${kind})`, () => {
    const [a, b] = useTwoTestApps(kind);

    it("refuses a token revoked on one instance on the other within a second, with no request in between", async (tc) => {
      const owner = await registerUser(a, "two-instances");
      const token = await createApiToken(a, owner.accessToken, ["PROFILE_READ"]);
      // B looks it up once and serves it from memory afterwards.
      assert.equal((await b.gql(`{ me { id } }`, { token: token.token })).body.data.me.id, owner.userId);
      const started = performance.now();
      const revoked = await a.gql(REVOKE, { token: owner.accessToken, variables: { id: token.id } });
      assert.deepEqual(revoked.body, { data: { revokeApiToken: true } });
      let res = await b.gql(`{ me { id } }`, { token: token.token });
      while (res.status === 200 && performance.now() - started < 3000) {
        await sleep(10);
        res = await b.gql(`{ me { id } }`, { token: token.token });
      }
      const elapsed = performance.now() - started;
      assertInvalidToken(res, { reason: "API_TOKEN_REVOKED" });
      assert.ok(elapsed < 1000, `refused on the other instance after ${Math.round(elapsed)} ms`);
      tc.diagnostic(`[${kind}] revokeApiToken on A -> refused on B in ${Math.round(elapsed)} ms`);
    });
  });
}
