import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";

import {
  assertAccessAccepted,
  assertAccessRefused,
  assertRefreshRefused,
  codes,
  login,
  nextMillisecond,
  refresh,
  registerUser,
  sessionOf,
  type Tokens,
} from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const SESSIONS = `{ sessions { id createdAt lastUsedAt userAgent ip current } }`;

interface SessionView {
  id: string;
  createdAt: string;
  lastUsedAt: string | null;
  userAgent: string | null;
  ip: string | null;
  current: boolean;
}

for (const kind of DATABASES) {
  describe(`sessions, logout and revokeSession over HTTP (${kind})`, () => {
    const t = useTestApp(kind);

    async function listSessions(token: string): Promise<SessionView[]> {
      const res = await t.gql(SESSIONS, { token });
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      return res.body.data.sessions;
    }

    /** Registers `username` and opens `extra` more sessions, each a millisecond apart (oldest first). */
    async function userWithSessions(username: string, extra: number): Promise<Tokens[]> {
      const all = [await registerUser(t, username, { userAgent: `${username}-agent-0` })];
      for (let i = 1; i <= extra; i++) {
        await nextMillisecond();
        all.push(await login(t, username, { userAgent: `${username}-agent-${i}` }));
      }
      return all;
    }

    it("lists the caller's active sessions newest first, exactly one of them current, with ip and user agent", async () => {
      const [s0, s1, s2] = (await userWithSessions("lister", 2)) as [Tokens, Tokens, Tokens];
      await userWithSessions("bystander", 0);

      const sessions = await listSessions(s1.accessToken);
      assert.deepEqual(
        sessions.map((s) => s.id),
        [s2, s1, s0].map((s) => sessionOf(s.accessToken)),
      );
      assert.deepEqual(
        sessions.map((s) => s.current),
        [false, true, false],
      );
      assert.deepEqual(
        sessions.map((s) => s.userAgent),
        ["lister-agent-2", "lister-agent-1", "lister-agent-0"],
      );
      for (const s of sessions) {
        assert.equal(s.ip, "127.0.0.1");
        assert.ok(!Number.isNaN(Date.parse(s.createdAt)), `createdAt ${s.createdAt} is a date`);
        assert.notEqual(s.lastUsedAt, null);
      }
      assert.ok(Date.parse(sessions[0]!.createdAt) > Date.parse(sessions[2]!.createdAt));

      const fromNewest = await listSessions(s2.accessToken);
      assert.deepEqual(
        fromNewest.map((s) => s.current),
        [true, false, false],
      );
    });

    it("ends only the current session on logout with the default scope: its tokens are refused, the others keep working", async () => {
      const [a, b] = (await userWithSessions("leaver", 1)) as [Tokens, Tokens];
      const res = await t.gql(`mutation { logout }`, { token: a.accessToken });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { logout: true } });

      await assertAccessRefused(t, a.accessToken);
      await assertRefreshRefused(t, a.refreshToken);

      await assertAccessAccepted(t, b.accessToken, b.userId);
      const sessions = await listSessions(b.accessToken);
      assert.deepEqual(
        sessions.map((s) => s.id),
        [sessionOf(b.accessToken)],
      );
      const next = await refresh(t, b.refreshToken);
      await assertAccessAccepted(t, next.accessToken, b.userId);
    });

    it("ends every session but the current one on logout(scope: OTHERS)", async () => {
      const [a, b, c] = (await userWithSessions("others", 2)) as [Tokens, Tokens, Tokens];
      const res = await t.gql(`mutation { logout(scope: OTHERS) }`, { token: b.accessToken });
      assert.deepEqual(res.body, { data: { logout: true } });

      for (const ended of [a, c]) {
        await assertAccessRefused(t, ended.accessToken);
        await assertRefreshRefused(t, ended.refreshToken);
      }
      await assertAccessAccepted(t, b.accessToken, b.userId);
      const sessions = await listSessions(b.accessToken);
      assert.deepEqual(
        sessions.map((s) => [s.id, s.current]),
        [[sessionOf(b.accessToken), true]],
      );
      await refresh(t, b.refreshToken);
    });

    it("ends every session, the current one included, on logout(scope: ALL), and a new login works", async () => {
      const all = await userWithSessions("everyone", 2);
      const res = await t.gql(`mutation { logout(scope: ALL) }`, { token: all[0]!.accessToken });
      assert.deepEqual(res.body, { data: { logout: true } });

      for (const ended of all) {
        await assertAccessRefused(t, ended.accessToken);
        await assertRefreshRefused(t, ended.refreshToken);
      }
      const again = await login(t, "everyone");
      const sessions = await listSessions(again.accessToken);
      assert.deepEqual(
        sessions.map((s) => s.id),
        [sessionOf(again.accessToken)],
      );
    });

    it("revokes one of your other sessions: revokeSession is true, its tokens are refused and it leaves the list", async () => {
      const [a, b] = (await userWithSessions("revoker", 1)) as [Tokens, Tokens];
      const res = await t.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
        token: b.accessToken,
        variables: { id: sessionOf(a.accessToken) },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { revokeSession: true } });

      await assertAccessRefused(t, a.accessToken);
      await assertRefreshRefused(t, a.refreshToken);
      const sessions = await listSessions(b.accessToken);
      assert.deepEqual(
        sessions.map((s) => s.id),
        [sessionOf(b.accessToken)],
      );
      await assertAccessAccepted(t, b.accessToken, b.userId);
    });

    it("refuses to revoke someone else's session with FORBIDDEN, and that session keeps working", async () => {
      const [mallory] = (await userWithSessions("mallory", 0)) as [Tokens];
      const [target] = (await userWithSessions("target", 0)) as [Tokens];
      const res = await t.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
        token: mallory.accessToken,
        variables: { id: sessionOf(target.accessToken) },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      assert.equal(res.body.data, null);

      await assertAccessAccepted(t, target.accessToken, target.userId);
      const sessions = await listSessions(target.accessToken);
      assert.deepEqual(
        sessions.map((s) => s.id),
        [sessionOf(target.accessToken)],
      );
      await refresh(t, target.refreshToken);
    });

    const missing: Array<[string, string]> = [
      ["a random UUID", randomUUID()],
      ["a string that is not an id", "not-a-session"],
    ];
    for (const [name, id] of missing) {
      it(`answers NOT_FOUND when revoking a session that does not exist (${name})`, async () => {
        const [user] = (await userWithSessions(`nobody${id.length}`, 0)) as [Tokens];
        const res = await t.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
          token: user.accessToken,
          variables: { id },
        });
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["NOT_FOUND"]);
        assert.equal(res.body.data, null);
        await assertAccessAccepted(t, user.accessToken, user.userId);
      });
    }

    it("answers false when revoking one of your own sessions that has already ended", async () => {
      const [a, b] = (await userWithSessions("twice", 1)) as [Tokens, Tokens];
      const revoke = () =>
        t.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
          token: b.accessToken,
          variables: { id: sessionOf(a.accessToken) },
        });
      assert.deepEqual((await revoke()).body, { data: { revokeSession: true } });
      assert.deepEqual((await revoke()).body, { data: { revokeSession: false } });

      // A session ended by its own logout counts as ended too.
      const c = await login(t, "twice");
      await t.gql(`mutation { logout }`, { token: c.accessToken });
      const res = await t.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
        token: b.accessToken,
        variables: { id: sessionOf(c.accessToken) },
      });
      assert.deepEqual(res.body, { data: { revokeSession: false } });
    });

    const anonymous: Array<[string, string]> = [
      ["sessions", SESSIONS],
      ["logout", `mutation { logout }`],
      ["logout(scope: ALL)", `mutation { logout(scope: ALL) }`],
      ["revokeSession", `mutation { revokeSession(id: "${randomUUID()}") }`],
    ];
    for (const [name, query] of anonymous) {
      it(`answers an anonymous ${name} with UNAUTHENTICATED and HTTP 200`, async () => {
        const res = await t.gql(query);
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
        assert.equal(res.body.data, null);
      });
    }
  });
}
