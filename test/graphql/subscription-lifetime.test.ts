import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RevocationList } from "../../src/access/revocation-list.js";
import { Role } from "../../src/access/roles.js";
import { liveContext } from "../../src/http/ws/operation.js";
import { claimsOf, login, PASSWORD, refreshRaw, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed } from "../helpers/ws.js";

/** The bound the contract sets for a session's end to reach every socket of it. */
const SESSION_END_BOUND_MS = 1000;

/** Opens a signed-in connection with a live postCreated subscription. */
async function subscribed(t: TestApp, token: string) {
  const ws = connect(t.url, { token });
  await ws.connected;
  const feed = new Feed(ws.client, { query: `subscription { postCreated { id } }` });
  return { ...ws, feed };
}

function report(tc: { diagnostic(message: string): void }, message: string): void {
  tc.diagnostic(message);
  console.log(message);
}

describe("a socket's access token expiring (JWT_ACCESS_TOKEN_EXPIRES=2s)", () => {
  const t = useTestApp("sqlite", { env: { JWT_ACCESS_TOKEN_EXPIRES: "2s" } });

  it("closes the socket with 4403 TOKEN_EXPIRED at the token's exp", async (tc) => {
    const user = await registerUser(t, "expiring");
    const expMs = claimsOf(user.accessToken).exp * 1000;
    const ws = await subscribed(t, user.accessToken);
    const closed = await ws.closed;
    assert.equal(closed.code, 4403);
    assert.equal(closed.reason, "TOKEN_EXPIRED");
    const lateMs = Math.round(Date.now() - expMs);
    report(tc, `[sqlite] exp -> 4403: closed ${lateMs} ms after the token's exp`);
    // exp has a one-second resolution and the token was minted within the last 2 s.
    assert.ok(lateMs >= -50 && lateMs < 1500, `closed ${lateMs} ms after exp`);
    assert.equal(ws.feed.results.length, 0);
  });
});

for (const kind of DATABASES) {
  describe(`a socket's session ending (${kind}, one instance)`, () => {
    const t = useTestApp(kind);

    it("closes every socket of the session with 4403 SESSION_ENDED within a second of logout, and no other", async (tc) => {
      const user = await registerUser(t, "leaving");
      const other = await login(t, "leaving");
      const first = await subscribed(t, user.accessToken);
      const second = await subscribed(t, user.accessToken);
      const bystander = await subscribed(t, other.accessToken);
      try {
        const sentAt = performance.now();
        const logout = await t.gql(`mutation { logout }`, { token: user.accessToken });
        const answeredAt = performance.now();
        assert.deepEqual(logout.body, { data: { logout: true } });
        const [a, b] = await Promise.all([first.closed, second.closed]);
        for (const closed of [a, b]) {
          assert.equal(closed.code, 4403);
          assert.equal(closed.reason, "SESSION_ENDED");
        }
        const elapsed = Math.round(Math.max(a.at, b.at) - answeredAt);
        report(
          tc,
          `[${kind}] logout -> 4403 on the same instance: both sockets closed ${Math.round(Math.max(a.at, b.at) - sentAt)} ms after logout was sent (${elapsed} ms after it was answered)`,
        );
        assert.ok(elapsed < SESSION_END_BOUND_MS, `${elapsed} ms`);
        // The user's other session keeps its socket.
        const race = await Promise.race([bystander.closed, new Promise((resolve) => setTimeout(resolve, 200, "open"))]);
        assert.equal(race, "open");
      } finally {
        await bystander.client.dispose();
      }
    });

    it("closes the socket of a session revoked from another session (revokeSession)", async () => {
      const user = await registerUser(t, "revoked");
      const other = await login(t, "revoked");
      const ws = await subscribed(t, other.accessToken);
      const sessionId = claimsOf(other.accessToken).sid as string;
      const res = await t.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
        token: user.accessToken,
        variables: { id: sessionId },
      });
      assert.deepEqual(res.body, { data: { revokeSession: true } });
      const closed = await ws.closed;
      assert.equal(closed.code, 4403);
      assert.equal(closed.reason, "SESSION_ENDED");
    });

    it("closes the sockets of the other sessions on a password change, and keeps the changing session's", async () => {
      const user = await registerUser(t, "changer");
      const other = await login(t, "changer");
      const mine = await subscribed(t, user.accessToken);
      const theirs = await subscribed(t, other.accessToken);
      try {
        const res = await t.gql(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
          token: user.accessToken,
          variables: { input: { currentPassword: PASSWORD, newPassword: "a new password 2" } },
        });
        assert.deepEqual(res.body, { data: { changePassword: true } });
        const closed = await theirs.closed;
        assert.equal(closed.code, 4403);
        assert.equal(closed.reason, "SESSION_ENDED");
        const race = await Promise.race([mine.closed, new Promise((resolve) => setTimeout(resolve, 200, "open"))]);
        assert.equal(race, "open");
      } finally {
        await mine.client.dispose();
      }
    });
  });
}

describe("a socket's session ended by refresh-token reuse (REFRESH_TOKEN_REUSE_INTERVAL=0s)", () => {
  const t = useTestApp("sqlite", { env: { REFRESH_TOKEN_REUSE_INTERVAL: "0s" } });

  it("closes the socket with 4403 SESSION_ENDED when a spent refresh token of its session is presented again", async () => {
    const user = await registerUser(t, "reused");
    const rotated = await refreshRaw(t, user.refreshToken);
    assert.equal(rotated.body.errors, undefined, JSON.stringify(rotated.body));
    const ws = await subscribed(t, rotated.body.data.refreshToken.accessToken as string);
    const reuse = await refreshRaw(t, user.refreshToken);
    assert.equal(reuse.body.errors?.[0]?.extensions?.reason, "REFRESH_TOKEN_INVALID", JSON.stringify(reuse.body));
    const closed = await ws.closed;
    assert.equal(closed.code, 4403);
    assert.equal(closed.reason, "SESSION_ENDED");
  });
});

if (DATABASES.includes("postgres")) {
  describe("a socket's session ending on another instance (two instances on one postgres database)", () => {
    const [a, b] = useTwoTestApps("postgres");

    it("closes the socket on instance B with 4403 SESSION_ENDED within a second of logout on instance A", async (tc) => {
      const user = await registerUser(a, "traveller");
      const ws = await subscribed(b, user.accessToken);
      const sentAt = performance.now();
      const logout = await a.gql(`mutation { logout }`, { token: user.accessToken });
      const answeredAt = performance.now();
      assert.deepEqual(logout.body, { data: { logout: true } });
      const closed = await ws.closed;
      assert.equal(closed.code, 4403);
      assert.equal(closed.reason, "SESSION_ENDED");
      const elapsed = Math.round(closed.at - answeredAt);
      report(
        tc,
        `[postgres] logout on A -> 4403 on B: ${Math.round(closed.at - sentAt)} ms after logout was sent to A (${elapsed} ms after A answered)`,
      );
      assert.ok(elapsed < SESSION_END_BOUND_MS, `${elapsed} ms`);
    });
  });
}

describe("a subscription's context", () => {
  const principal = {
    kind: "session" as const,
    userId: "u1",
    roles: [Role.ADMIN, Role.USER],
    sessionId: "s1",
    tokenId: "t1",
    fresh: true,
    aal: 1 as const,
    amr: ["pwd" as const],
    mfaPending: false,
  };
  const client = { requestId: "r1", ip: "127.0.0.1", userAgent: "test" };

  it("applies a role change to the next read of its principal (a demoted ADMIN is a USER from then on)", () => {
    let now = 1_000_000;
    const list = new RevocationList(60_000, () => now);
    const ctx = liveContext({ ...client, principal, expiresAt: now + 60_000 }, list, () => now);
    assert.deepEqual(ctx.principal?.roles, [Role.ADMIN, Role.USER]);
    now += 10;
    list.addRoleChange("u1", [Role.USER], now);
    assert.deepEqual(ctx.principal?.roles, [Role.USER]);
    assert.equal(ctx.principal?.kind === "session" && ctx.principal.sessionId, "s1");
  });

  it("has no principal once its session has ended or its token has expired", () => {
    let now = 1_000_000;
    const list = new RevocationList(60_000, () => now);
    const ended = liveContext({ ...client, principal, expiresAt: now + 60_000 }, list, () => now);
    list.addEndedSession("s1", now);
    assert.equal(ended.principal, null);

    const expiring = liveContext(
      { ...client, principal: { ...principal, sessionId: "s2" }, expiresAt: now + 5 },
      list,
      () => now,
    );
    assert.equal(expiring.principal?.userId, "u1");
    now += 5;
    assert.equal(expiring.principal, null);
  });

  it("tells RevocationList listeners of each ended session once, however often it is read again", () => {
    const now = Date.now();
    const list = new RevocationList(60_000, () => now);
    const heard: string[] = [];
    const stop = list.onSessionEnded((id) => heard.push(id));
    list.addEndedSession("s1", now);
    list.addEndedSession("s1", now);
    list.addEndedSession("s2", now);
    stop();
    list.addEndedSession("s3", now);
    assert.deepEqual(heard, ["s1", "s2"]);
  });
});
