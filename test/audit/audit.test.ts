import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { sql } from "kysely";

import {
  codes,
  type GraphQLResponse,
  login,
  loginRaw,
  PASSWORD,
  registerUser,
  sessionOf,
  type Tokens,
} from "../helpers/api.js";
import { startTestApp, type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ROOT = { username: "root", password: "root password 1" };
const WRONG = "a wrong password entirely";
const NEW_PASSWORD = "a brand new passphrase";
const EVENTS = `query($first: Int, $offset: Int) { auditEvents(first: $first, offset: $offset) { id type userId username ip userAgent sessionId detail at } }`;

interface AuditEventView {
  id: string;
  type: string;
  userId: string | null;
  username: string | null;
  ip: string | null;
  userAgent: string | null;
  sessionId: string | null;
  detail: string | null;
  at: string;
}

/** A user agent naming one step of the suite, so each step's events can be told apart. */
const ua = (step: string) => `audit-suite/${step}`;

for (const kind of DATABASES) {
  describe(`the audit log (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password } });
    let admin: Tokens;
    /** Every password and token this suite handled; none may reach an event or a log line. */
    const secrets = new Set<string>([PASSWORD, WRONG, NEW_PASSWORD, ROOT.password]);
    const keep = (tokens: Tokens) => {
      secrets.add(tokens.accessToken);
      secrets.add(tokens.refreshToken);
      return tokens;
    };

    before(async () => {
      admin = keep(await login(t, ROOT.username, { password: ROOT.password }));
    });

    async function events(first: number | null = 100, offset = 0): Promise<AuditEventView[]> {
      const res = await t.gql(EVENTS, { token: admin.accessToken, variables: { first, offset } });
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      return res.body.data.auditEvents;
    }

    /** Every stored event, newest first, read 100 at a time. */
    async function allEvents(): Promise<AuditEventView[]> {
      const all: AuditEventView[] = [];
      for (let page = await events(100); page.length > 0; page = await events(100, all.length)) all.push(...page);
      return all;
    }

    /** The one event of `type` caused by the request with user agent `userAgent`, without id and time (checked apart). */
    async function eventOf(type: string, userAgent: string): Promise<Omit<AuditEventView, "id" | "at">> {
      const matching = (await events()).filter((e) => e.type === type && e.userAgent === userAgent);
      assert.equal(matching.length, 1, `one ${type} event from ${userAgent}, found ${matching.length}`);
      const { id, at, ...rest } = matching[0]!;
      assert.match(id, /^\d+$/);
      assert.ok(!Number.isNaN(Date.parse(at)), `at ${at} is a date`);
      return rest;
    }

    function post(
      query: string,
      options: { token?: string; userAgent: string; variables?: Record<string, unknown> },
    ): Promise<GraphQLResponse> {
      return t.gql(query, {
        token: options.token,
        variables: options.variables,
        headers: { "user-agent": options.userAgent },
      });
    }

    let alice: Tokens;

    it("records REGISTERED with the new user, its first session, the IP and the user agent", async () => {
      alice = keep(await registerUser(t, "alice", { userAgent: ua("register") }));
      assert.deepEqual(await eventOf("REGISTERED", ua("register")), {
        type: "REGISTERED",
        userId: alice.userId,
        username: "alice",
        ip: "127.0.0.1",
        userAgent: ua("register"),
        sessionId: sessionOf(alice.accessToken),
        detail: null,
      });
    });

    it("records LOGIN_SUCCEEDED with the session the login started", async () => {
      const tokens = keep(await login(t, "alice", { userAgent: ua("login") }));
      assert.deepEqual(await eventOf("LOGIN_SUCCEEDED", ua("login")), {
        type: "LOGIN_SUCCEEDED",
        userId: alice.userId,
        username: "alice",
        ip: "127.0.0.1",
        userAgent: ua("login"),
        sessionId: sessionOf(tokens.accessToken),
        detail: null,
      });
    });

    it("records LOGIN_FAILED for a wrong password and an unknown username, which the client cannot tell apart", async () => {
      const wrong = await loginRaw(t, "alice", { password: WRONG, userAgent: ua("wrong-password") });
      const unknown = await loginRaw(t, "nobody", { password: WRONG, userAgent: ua("unknown-user") });
      for (const res of [wrong, unknown]) {
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      }
      assert.deepEqual(wrong.body, unknown.body, "the same answer for both");
      assert.deepEqual(await eventOf("LOGIN_FAILED", ua("wrong-password")), {
        type: "LOGIN_FAILED",
        userId: alice.userId,
        username: "alice",
        ip: "127.0.0.1",
        userAgent: ua("wrong-password"),
        sessionId: null,
        detail: "reason=WRONG_PASSWORD",
      });
      assert.deepEqual(await eventOf("LOGIN_FAILED", ua("unknown-user")), {
        type: "LOGIN_FAILED",
        userId: null,
        username: "nobody",
        ip: "127.0.0.1",
        userAgent: ua("unknown-user"),
        sessionId: null,
        detail: "reason=UNKNOWN_USER",
      });
    });

    it("records LOGIN_THROTTLED with the limit that refused it and a count (coalesced: see coalescing.test.ts)", async () => {
      await registerUser(t, "locked");
      for (let i = 0; i < 5; i++) await loginRaw(t, "locked", { password: WRONG });
      const res = await loginRaw(t, "locked", { userAgent: ua("throttled") });
      assert.deepEqual(codes(res), ["RATE_LIMITED"]);
      await t.app.audit.settled();
      assert.deepEqual(await eventOf("LOGIN_THROTTLED", ua("throttled")), {
        type: "LOGIN_THROTTLED",
        userId: null,
        username: "locked",
        ip: "127.0.0.1",
        userAgent: ua("throttled"),
        sessionId: null,
        detail: "limit=USER_IP count=1",
      });
    });

    const REFRESH = `mutation($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { accessToken refreshToken user { id } } }`;

    it("records TOKEN_REFRESHED (noting a reissue within the reuse interval), and REFRESH_TOKEN_REUSED when an older spent refresh token comes back", async () => {
      const first = keep(await login(t, "alice"));
      const refreshed = await post(REFRESH, {
        userAgent: ua("refresh"),
        variables: { refreshToken: first.refreshToken },
      });
      assert.equal(refreshed.body.errors, undefined);
      secrets.add(refreshed.body.data.refreshToken.accessToken);
      secrets.add(refreshed.body.data.refreshToken.refreshToken);
      assert.deepEqual(await eventOf("TOKEN_REFRESHED", ua("refresh")), {
        type: "TOKEN_REFRESHED",
        userId: alice.userId,
        username: "alice",
        ip: "127.0.0.1",
        userAgent: ua("refresh"),
        sessionId: sessionOf(first.accessToken),
        detail: null,
      });

      // A second tab with the same token, within REFRESH_TOKEN_REUSE_INTERVAL: the same successor again.
      const reissued = await post(REFRESH, {
        userAgent: ua("reissue"),
        variables: { refreshToken: first.refreshToken },
      });
      assert.equal(reissued.body.errors, undefined);
      assert.equal(reissued.body.data.refreshToken.refreshToken, refreshed.body.data.refreshToken.refreshToken);
      secrets.add(reissued.body.data.refreshToken.accessToken);
      assert.deepEqual(await eventOf("TOKEN_REFRESHED", ua("reissue")), {
        type: "TOKEN_REFRESHED",
        userId: alice.userId,
        username: "alice",
        ip: "127.0.0.1",
        userAgent: ua("reissue"),
        sessionId: sessionOf(first.accessToken),
        detail: "within=reuse_interval",
      });

      // One more rotation makes `first` a grandparent: presenting it now is reuse.
      const again = await post(REFRESH, {
        userAgent: ua("refresh"),
        variables: { refreshToken: refreshed.body.data.refreshToken.refreshToken },
      });
      assert.equal(again.body.errors, undefined);
      secrets.add(again.body.data.refreshToken.accessToken);
      secrets.add(again.body.data.refreshToken.refreshToken);

      const replay = await post(REFRESH, { userAgent: ua("replay"), variables: { refreshToken: first.refreshToken } });
      assert.deepEqual(codes(replay), ["UNAUTHENTICATED"]);
      assert.deepEqual(await eventOf("REFRESH_TOKEN_REUSED", ua("replay")), {
        type: "REFRESH_TOKEN_REUSED",
        userId: alice.userId,
        username: null,
        ip: "127.0.0.1",
        userAgent: ua("replay"),
        sessionId: sessionOf(first.accessToken),
        detail: null,
      });
    });

    let bobEnded: Tokens;

    it("records LOGGED_OUT with the scope and how many sessions ended, and SESSION_REVOKED with the session revoked", async () => {
      bobEnded = keep(await registerUser(t, "bob"));
      const current = keep(await login(t, "bob"));
      const res = await post(`mutation { logout(scope: OTHERS) }`, {
        token: current.accessToken,
        userAgent: ua("logout"),
      });
      assert.deepEqual(res.body, { data: { logout: true } });
      assert.deepEqual(await eventOf("LOGGED_OUT", ua("logout")), {
        type: "LOGGED_OUT",
        userId: bobEnded.userId,
        username: null,
        ip: "127.0.0.1",
        userAgent: ua("logout"),
        sessionId: sessionOf(current.accessToken),
        detail: "scope=OTHERS ended=1",
      });

      const other = keep(await login(t, "bob"));
      const revoked = await post(`mutation($id: ID!) { revokeSession(id: $id) }`, {
        token: current.accessToken,
        userAgent: ua("revoke"),
        variables: { id: sessionOf(other.accessToken) },
      });
      assert.deepEqual(revoked.body, { data: { revokeSession: true } });
      assert.deepEqual(await eventOf("SESSION_REVOKED", ua("revoke")), {
        type: "SESSION_REVOKED",
        userId: bobEnded.userId,
        username: null,
        ip: "127.0.0.1",
        userAgent: ua("revoke"),
        sessionId: sessionOf(other.accessToken),
        detail: `by=${sessionOf(current.accessToken)}`,
      });
    });

    let carol: Tokens;

    it("records PASSWORD_CHANGED with the sessions it ended, and ROLES_CHANGED with the new roles and who set them", async () => {
      carol = keep(await registerUser(t, "carol"));
      const fresh = keep(await login(t, "carol"));
      const changed = await post(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
        token: fresh.accessToken,
        userAgent: ua("change-password"),
        variables: { input: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } },
      });
      assert.deepEqual(changed.body, { data: { changePassword: true } });
      assert.deepEqual(await eventOf("PASSWORD_CHANGED", ua("change-password")), {
        type: "PASSWORD_CHANGED",
        userId: carol.userId,
        username: "carol",
        ip: "127.0.0.1",
        userAgent: ua("change-password"),
        sessionId: sessionOf(fresh.accessToken),
        detail: "ended=1",
      });

      const promoted = await post(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [ADMIN, USER]) { roles } }`, {
        token: admin.accessToken,
        userAgent: ua("set-roles"),
        variables: { id: carol.userId },
      });
      assert.deepEqual(promoted.body, { data: { setUserRoles: { roles: ["ADMIN", "USER"] } } });
      assert.deepEqual(await eventOf("ROLES_CHANGED", ua("set-roles")), {
        type: "ROLES_CHANGED",
        userId: carol.userId,
        username: "carol",
        ip: "127.0.0.1",
        userAgent: ua("set-roles"),
        sessionId: null,
        detail: `roles=ADMIN,USER by=${admin.userId}`,
      });
    });

    it("records TOKEN_REJECTED with the reason class, and the user and session when the token was valid but its session had ended", async () => {
      const malformed = await t.gql(`{ posts { id } }`, {
        headers: { authorization: "Bearer not-a-jwt", "user-agent": ua("malformed") },
      });
      assert.equal(malformed.status, 401);
      // The row is written without holding up the 401 (see test/audit/coalescing.test.ts).
      await t.app.audit.settled();
      assert.deepEqual(await eventOf("TOKEN_REJECTED", ua("malformed")), {
        type: "TOKEN_REJECTED",
        userId: null,
        username: null,
        ip: "127.0.0.1",
        userAgent: ua("malformed"),
        sessionId: null,
        detail: "reason=MALFORMED count=1",
      });

      const ended = await post(`{ me { id } }`, { token: bobEnded.accessToken, userAgent: ua("ended-session") });
      assert.equal(ended.status, 401);
      await t.app.audit.settled();
      assert.deepEqual(await eventOf("TOKEN_REJECTED", ua("ended-session")), {
        type: "TOKEN_REJECTED",
        userId: bobEnded.userId,
        username: null,
        ip: "127.0.0.1",
        userAgent: ua("ended-session"),
        sessionId: sessionOf(bobEnded.accessToken),
        detail: "reason=SESSION_ENDED count=1",
      });
    });

    it("writes every event to the log at info, with the request id of the request that caused it", async () => {
      const res = await loginRaw(t, "alice", { password: WRONG, userAgent: ua("logged") });
      const requestId = res.headers.get("x-request-id");
      const lines = t.logs
        .map((line) => JSON.parse(line) as Record<string, any>)
        .filter((line) => line.msg === "audit event" && line.reqId === requestId);
      assert.equal(lines.length, 1);
      const { id, at, ...fields } = lines[0]!.audit;
      assert.equal(lines[0]!.level, 30);
      assert.deepEqual(fields, {
        type: "LOGIN_FAILED",
        userId: alice.userId,
        username: "alice",
        ip: "127.0.0.1",
        userAgent: ua("logged"),
        sessionId: null,
        detail: "reason=WRONG_PASSWORD",
      });
      const stored = (await events()).find((e) => e.id === id);
      assert.equal(stored?.at, at, "the logged event is the stored one");
    });

    it("lists events newest first", async () => {
      for (const step of ["order-1", "order-2", "order-3"])
        await loginRaw(t, "nobody", { password: WRONG, userAgent: ua(step) });
      const newest = await events(3);
      assert.deepEqual(
        newest.map((e) => e.userAgent),
        [ua("order-3"), ua("order-2"), ua("order-1")],
      );
      const all = await events();
      for (let i = 1; i < all.length; i++) {
        assert.ok(Number(all[i - 1]!.id) > Number(all[i]!.id), "ids decrease");
        assert.ok(Date.parse(all[i - 1]!.at) >= Date.parse(all[i]!.at), "times do not increase");
      }
    });

    it("returns 50 events by default and respects first from 1 to 100", async () => {
      // Rejected tokens would coalesce into one event, so these are recorded directly.
      for (let i = 0; i < 60; i++)
        await t.app.audit.record({ type: "LOGIN_FAILED", username: "nobody", detail: "reason=UNKNOWN_USER" });
      const total = (await allEvents()).length;
      assert.ok(total > 60, `${total} events stored`);
      const byDefault = await t.gql(`{ auditEvents { id } }`, { token: admin.accessToken });
      assert.equal(byDefault.body.data.auditEvents.length, 50);
      assert.equal((await events(null)).length, 50, "null means the default");
      assert.equal((await events(1)).length, 1);
      assert.equal((await events(7)).length, 7);
      assert.deepEqual(
        (await events(7)).map((e) => e.id),
        (await events(100)).slice(0, 7).map((e) => e.id),
      );
      for (const [first, rule] of [
        [0, "min"],
        [-1, "min"],
        [101, "max"],
      ] as const) {
        const res = await t.gql(EVENTS, { token: admin.accessToken, variables: { first } });
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"], `first: ${first}`);
        assert.deepEqual(
          res.body.errors![0]!.extensions!.fields.map((f: { field: string; rule: string }) => `${f.field}:${f.rule}`),
          [`first:${rule}`],
        );
        assert.equal(res.body.data, null);
      }
    });

    it("shows the events to ADMIN only: FORBIDDEN for a USER, UNAUTHENTICATED without a token", async () => {
      const user = keep(await registerUser(t, "curious"));
      const forbidden = await t.gql(EVENTS, { token: user.accessToken });
      assert.equal(forbidden.status, 200);
      assert.deepEqual(codes(forbidden), ["FORBIDDEN"]);
      assert.equal(forbidden.body.data, null);
      const anonymous = await t.gql(EVENTS);
      assert.equal(anonymous.status, 200);
      assert.deepEqual(codes(anonymous), ["UNAUTHENTICATED"]);
      assert.equal(anonymous.body.data, null);
    });

    it("records the ADMIN_USERNAME bootstrap's account as USER_CREATED by ADMIN_USERNAME", async () => {
      const created = (await allEvents()).filter((e) => e.type === "USER_CREATED");
      assert.equal(created.length, 1);
      assert.equal(created[0]!.username, ROOT.username);
      assert.equal(created[0]!.detail, "roles=ADMIN,USER by=ADMIN_USERNAME");
    });

    it("has stored every event type, and no password or token in any event, stored row or log line", async () => {
      const types = new Set((await allEvents()).map((e) => e.type));
      // The 60 events above push older events past the first pages only if there were many more: check the table.
      const rows = await sql<Record<string, unknown>>`select * from audit_events`.execute(t.app.database.db);
      for (const row of rows.rows) types.add(String(row.type));
      assert.deepEqual([...types].sort(), [
        "LOGGED_OUT",
        "LOGIN_FAILED",
        "LOGIN_SUCCEEDED",
        "LOGIN_THROTTLED",
        "PASSWORD_CHANGED",
        "REFRESH_TOKEN_REUSED",
        "REGISTERED",
        "ROLES_CHANGED",
        "SESSION_REVOKED",
        "TOKEN_REFRESHED",
        "TOKEN_REJECTED",
        "USER_CREATED",
      ]);
      const stored = JSON.stringify(rows.rows);
      const listed = JSON.stringify(await allEvents());
      const logs = t.logs.join("\n");
      for (const secret of secrets) {
        // A JWT's signature alone would be a leak too.
        const parts = [secret, ...(secret.split(".").length === 3 ? [secret.split(".")[2]!] : [])];
        for (const part of parts) {
          assert.equal(stored.includes(part), false, `a stored event holds ${part.slice(0, 12)}…`);
          assert.equal(listed.includes(part), false, `auditEvents shows ${part.slice(0, 12)}…`);
          assert.equal(logs.includes(part), false, `the logs hold ${part.slice(0, 12)}…`);
        }
      }
    });
  });

  describe(`audit retention (${kind})`, () => {
    const DAY_MS = 86_400_000;
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    let t: TestApp | undefined;
    before(async () => {
      t = await startTestApp(kind, { env: { AUDIT_RETENTION: "1d" }, now });
    });
    after(async () => {
      await t?.close();
      await t?.database.drop();
    });

    async function storedUsernames(): Promise<string[]> {
      const rows = await sql<{ username: string }>`select username from audit_events order by id`.execute(
        t!.app.database.db,
      );
      return rows.rows.map((r) => r.username);
    }

    it("prunes events older than AUDIT_RETENTION and keeps the newer ones", async () => {
      await loginRaw(t!, "before-cutoff", { password: WRONG });
      offsetMs += 2 * DAY_MS;
      await loginRaw(t!, "after-cutoff", { password: WRONG });
      assert.deepEqual(await storedUsernames(), ["before-cutoff", "after-cutoff"]);
      assert.equal(await t!.app.audit.prune(), 1);
      assert.deepEqual(await storedUsernames(), ["after-cutoff"]);
      assert.equal(await t!.app.audit.prune(), 0, "nothing more is old enough");
    });

    it("prunes at start: a restart two days later leaves no event older than a day", async () => {
      offsetMs += 2 * DAY_MS;
      const database = t!.database;
      await t!.close();
      t = await startTestApp(kind, { env: { AUDIT_RETENTION: "1d" }, now, database });
      assert.deepEqual(await storedUsernames(), []);
      assert.ok(
        t.logs.some((line) => {
          const entry = JSON.parse(line);
          return entry.msg === "audit events pruned" && entry.deleted === 1;
        }),
        "the prune is logged",
      );
    });
  });

  describe(`an audit log that cannot be written (${kind})`, () => {
    const t = useTestApp(kind);
    before(async () => {
      await registerUser(t, "resilient");
      await sql`drop table audit_events`.execute(t.app.database.db);
    });

    it("never fails the request: logins still answer as usual, and the log says which event was lost", async () => {
      const failed = await loginRaw(t, "resilient", { password: WRONG });
      assert.equal(failed.status, 200);
      assert.deepEqual(codes(failed), ["UNAUTHENTICATED"]);
      const ok = await loginRaw(t, "resilient");
      assert.equal(ok.status, 200);
      assert.equal(ok.body.errors, undefined);
      const lost = t.logs
        .map((line) => JSON.parse(line) as Record<string, any>)
        .filter((line) => line.msg === "audit event could not be stored")
        .map((line) => [line.level, line.audit.type, line.reqId]);
      assert.deepEqual(lost, [
        [50, "LOGIN_FAILED", failed.headers.get("x-request-id")],
        [50, "LOGIN_SUCCEEDED", ok.headers.get("x-request-id")],
      ]);
    });
  });
}
