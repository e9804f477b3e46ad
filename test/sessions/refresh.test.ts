import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  assertAccessAccepted,
  assertAccessRefused,
  assertInvalidToken,
  assertRefreshRefused,
  assertRefreshRefusedResponse,
  claimsOf,
  codes,
  login,
  loginRaw,
  me,
  refresh,
  REFRESH_TOKEN_SHAPE,
  refreshRaw,
  registerRaw,
  registerUser,
  sessionOf,
} from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const MINUTE = 60_000;

for (const kind of DATABASES) {
  describe(`refresh tokens over HTTP (${kind})`, () => {
    const t = useTestApp(kind);

    it("hands out a refresh token of rt_ and 43 base64url characters on register and on login, with a Bearer access token", async () => {
      const registered = await registerRaw(t, "shape");
      assert.equal(registered.status, 200);
      const r = registered.body.data.register;
      assert.match(r.refreshToken, REFRESH_TOKEN_SHAPE);
      assert.equal(r.tokenType, "Bearer");
      assert.equal(r.expiresIn, 900);

      const loggedIn = await loginRaw(t, "shape");
      assert.equal(loggedIn.status, 200);
      const l = loggedIn.body.data.login;
      assert.match(l.refreshToken, REFRESH_TOKEN_SHAPE);
      assert.notEqual(l.refreshToken, r.refreshToken);
      assert.notEqual(sessionOf(l.accessToken), sessionOf(r.accessToken), "each login starts its own session");
    });

    it("exchanges a refresh token for a new access token and a new refresh token, and the new access token works", async () => {
      const first = await registerUser(t, "rotator");
      const res = await refreshRaw(t, first.refreshToken);
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined);
      const payload = res.body.data.refreshToken;
      assert.equal(payload.tokenType, "Bearer");
      assert.equal(payload.expiresIn, 900);
      assert.deepEqual(payload.user, { id: first.userId, username: "rotator", roles: ["USER"] });
      assert.match(payload.refreshToken, REFRESH_TOKEN_SHAPE);
      assert.notEqual(payload.refreshToken, first.refreshToken);
      assert.notEqual(payload.accessToken, first.accessToken);
      assert.equal(sessionOf(payload.accessToken), sessionOf(first.accessToken), "a refresh stays in the same session");
      await assertAccessAccepted(t, payload.accessToken, first.userId);
    });

    it("keeps a chain of three rotations working, each step with tokens never seen before", async () => {
      const start = await registerUser(t, "chain");
      const seen = new Set([start.refreshToken, start.accessToken]);
      let current = start;
      for (let step = 1; step <= 3; step++) {
        current = await refresh(t, current.refreshToken);
        assert.ok(!seen.has(current.refreshToken), `rotation ${step} returned a refresh token seen before`);
        assert.ok(!seen.has(current.accessToken), `rotation ${step} returned an access token seen before`);
        seen.add(current.refreshToken).add(current.accessToken);
        await assertAccessAccepted(t, current.accessToken, start.userId);
      }
      assert.equal(sessionOf(current.accessToken), sessionOf(start.accessToken));
    });

    it("ends the whole session when an already-rotated refresh token comes back, and leaves the user's other sessions alone", async () => {
      const original = await registerUser(t, "victim");
      const other = await login(t, "victim");
      const second = await refresh(t, original.refreshToken);
      const newest = await refresh(t, second.refreshToken);

      // An attacker replays a token the owner exchanged two rotations ago (the direct parent would
      // still get the current token within the reuse interval: reuse-interval.test.ts).
      const replay = await refreshRaw(t, original.refreshToken);
      assertRefreshRefusedResponse(replay);

      await assertRefreshRefused(t, newest.refreshToken);
      for (const token of [original.accessToken, second.accessToken, newest.accessToken])
        await assertAccessRefused(t, token);

      await assertAccessAccepted(t, other.accessToken, original.userId);
      const otherNext = await refresh(t, other.refreshToken);
      await assertAccessAccepted(t, otherNext.accessToken, original.userId);

      const rows = await t.app.database.db
        .selectFrom("sessions")
        .select(["id", "revoked_at", "revoked_reason"])
        .where("user_id", "=", original.userId)
        .execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      assert.notEqual(
        byId.get(sessionOf(original.accessToken))?.revoked_at ?? null,
        null,
        "the replayed session is stored as ended",
      );
      assert.equal(byId.get(sessionOf(original.accessToken))?.revoked_reason, "refresh_token_reused");
      assert.equal(byId.get(sessionOf(other.accessToken))?.revoked_at, null, "the other session is stored as live");
    });

    it("never hands out two different successors for ten simultaneous refreshes with one token, and never leaves two valid", async (tc) => {
      const start = await registerUser(t, "racer");
      const responses = await Promise.all(Array.from({ length: 10 }, () => refreshRaw(t, start.refreshToken)));

      for (const res of responses) assert.equal(res.status, 200);
      const winners = responses.filter((res) => res.body.data?.refreshToken);
      const losers = responses.filter((res) => !res.body.data?.refreshToken);
      const successors = new Set(winners.map((res) => res.body.data.refreshToken.refreshToken as string));
      tc.diagnostic(
        `${winners.length} of 10 concurrent refreshes returned tokens, ${successors.size} distinct successor(s)`,
      );
      assert.ok(successors.size <= 1, `${successors.size} different successors were handed out`);
      for (const res of losers) assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);

      // Every successor handed out: at most one of them may still be exchangeable.
      let valid = 0;
      for (const token of successors) {
        const successor = await refreshRaw(t, token);
        if (successor.body.data?.refreshToken) valid += 1;
        else assertRefreshRefusedResponse(successor);
      }
      tc.diagnostic(`${valid} successor(s) still valid afterwards`);
      assert.ok(valid <= 1, `${valid} successors were still valid`);
      if (winners.length === 1 && valid === 0) {
        // The race was taken for reuse: the session ended, so the winner's access token is refused too.
        await assertAccessRefused(t, winners[0]!.body.data.refreshToken.accessToken);
      }

      const live = await t.app.database.db
        .selectFrom("refresh_tokens")
        .select("id")
        .where("session_id", "=", sessionOf(start.accessToken))
        .where("rotated_at", "is", null)
        .execute();
      assert.ok(live.length <= 1, `${live.length} unspent refresh tokens stored for one session`);
    });

    it("stores refresh tokens only as 64-hex-character hashes, never the tokens themselves", async () => {
      const first = await registerUser(t, "hashed");
      const second = await refresh(t, first.refreshToken);
      const third = await refresh(t, second.refreshToken);
      const plain = [first.refreshToken, second.refreshToken, third.refreshToken];

      const rows = await t.app.database.db.selectFrom("refresh_tokens").selectAll().execute();
      const ownRows = rows.filter((r) => r.session_id === sessionOf(first.accessToken));
      assert.equal(ownRows.length, 3, "one row per refresh token of the chain");
      for (const row of rows) assert.match(row.token_hash, /^[0-9a-f]{64}$/);

      const sessions = await t.app.database.db.selectFrom("sessions").selectAll().execute();
      const stored = JSON.stringify([rows, sessions]);
      for (const token of plain) {
        assert.ok(!stored.includes(token), "a plain refresh token is stored");
        assert.ok(!stored.includes(token.slice(3)), "the random part of a refresh token is stored");
      }
    });

    it("refuses a refresh token sent as a bearer token with HTTP 401", async () => {
      const tokens = await registerUser(t, "wrongkind");
      assertInvalidToken(await me(t, tokens.refreshToken));
    });

    it("refuses an access token presented as a refresh token with UNAUTHENTICATED, and the session survives", async () => {
      const tokens = await registerUser(t, "wrongkind2");
      await assertRefreshRefused(t, tokens.accessToken);
      await assertAccessAccepted(t, tokens.accessToken, tokens.userId);
      await refresh(t, tokens.refreshToken);
    });

    const garbage: Array<[string, string]> = [
      ["empty", ""],
      ["a word", "garbage"],
      ["white space", "   "],
      ["the prefix alone", "rt_"],
      ["one character short", `rt_${"A".repeat(42)}`],
      ["one character long", `rt_${"A".repeat(44)}`],
      ["well formed but never issued", `rt_${"A".repeat(43)}`],
      ["a wrong prefix", `xx_${"A".repeat(43)}`],
      ["characters outside base64url", `rt_${"+".repeat(43)}`],
      ["huge (100,000 characters)", `rt_${"A".repeat(100_000)}`],
      ["an SQL fragment", "rt_' OR '1'='1"],
    ];
    for (const [name, value] of garbage) {
      it(`refuses a refresh token that is ${name} with UNAUTHENTICATED`, async () => {
        await assertRefreshRefused(t, value);
      });
    }

    it("marks login's access token as fresh and refreshToken's as not fresh", async () => {
      const registered = await registerUser(t, "freshness");
      assert.equal(claimsOf(registered.accessToken).fresh, true);
      const loggedIn = await login(t, "freshness");
      assert.equal(claimsOf(loggedIn.accessToken).fresh, true);
      const refreshed = await refresh(t, loggedIn.refreshToken);
      assert.equal(claimsOf(refreshed.accessToken).fresh, false);
      const again = await refresh(t, refreshed.refreshToken);
      assert.equal(claimsOf(again.accessToken).fresh, false);
    });
  });

  describe(`the absolute lifetime of a refresh chain (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, {
      now: () => clock,
      env: { JWT_REFRESH_TOKEN_EXPIRES: "1h", JWT_ACCESS_TOKEN_EXPIRES: "15m" },
    });

    it("refuses the refresh token of a session that started more than an hour ago", async () => {
      const tokens = await registerUser(t, "idle");
      clock += 61 * MINUTE;
      await assertRefreshRefused(t, tokens.refreshToken);
    });

    it("keeps refusing after the hour even when the chain was rotated all along, and a new login starts over", async () => {
      const startedAt = clock;
      const start = await registerUser(t, "busy");
      let current = start;
      for (let step = 1; step <= 4; step++) {
        clock += 14 * MINUTE;
        current = await refresh(t, current.refreshToken);
        await assertAccessAccepted(t, current.accessToken, start.userId);
        const listed = await t.gql(`{ sessions { id lastUsedAt expiresAt } }`, { token: current.accessToken });
        assert.deepEqual(listed.body.data.sessions, [
          {
            id: sessionOf(start.accessToken),
            lastUsedAt: new Date(clock).toISOString(),
            expiresAt: new Date(startedAt + 60 * MINUTE).toISOString(),
          },
        ]);
      }
      // 56 minutes in: rotations did not move the end of the session.
      clock += 5 * MINUTE;
      await assertRefreshRefused(t, current.refreshToken);
      clock += 1 * MINUTE;
      await assertRefreshRefused(t, current.refreshToken);

      const fresh = await login(t, "busy");
      const next = await refresh(t, fresh.refreshToken);
      await assertAccessAccepted(t, next.accessToken, start.userId);
    });

    it("never lets an access token outlive its session: near the end it is shorter, and expiresIn says so", async () => {
      const startedAt = clock;
      const start = await registerUser(t, "closing");
      clock += 50 * MINUTE;
      const res = await refreshRaw(t, start.refreshToken);
      const payload = res.body.data.refreshToken;
      const sessionEnd = Math.floor((startedAt + 60 * MINUTE) / 1000);
      assert.equal(claimsOf(payload.accessToken).exp, sessionEnd);
      assert.equal(payload.expiresIn, sessionEnd - Math.floor(clock / 1000));
      assert.ok(payload.expiresIn < 15 * 60);
      clock += 11 * MINUTE;
      await assertAccessRefused(t, payload.accessToken);
    });
  });
}
