// REFRESH_TOKEN_REUSE_INTERVAL: the direct parent of a session's current refresh token, presented
// again within the interval after its rotation, returns the current token (the same string) and a
// new access token; anything older, or later, is reuse and ends the session. Time is the app's
// clock, moved by the test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ConfigError } from "../../src/config.js";
import { loadConfig } from "../../src/load-config.js";
import {
  assertAccessAccepted,
  assertAccessRefused,
  assertRefreshRefused,
  assertRefreshRefusedResponse,
  login,
  refresh,
  refreshRaw,
  registerUser,
  sessionOf,
} from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const SECOND = 1000;

/** The session's refresh-token rows: how far the chain has moved. */
async function chainOf(t: ReturnType<typeof useTestApp>, sessionId: string) {
  return t.app.database.db
    .selectFrom("refresh_tokens")
    .select(["token_hash", "rotated_at"])
    .where("session_id", "=", sessionId)
    .execute();
}

async function sessionRow(t: ReturnType<typeof useTestApp>, sessionId: string) {
  return t.app.database.db
    .selectFrom("sessions")
    .select(["revoked_at", "revoked_reason"])
    .where("id", "=", sessionId)
    .executeTakeFirstOrThrow();
}

for (const kind of DATABASES) {
  describe(`the refresh-token reuse interval, 10 s by default (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { now: () => clock });

    it("gives the rotated token's holder the same current refresh token and a new access token within the interval", async () => {
      const first = await registerUser(t, "twotabs");
      const tabA = await refresh(t, first.refreshToken);
      clock += 9 * SECOND;
      const tabB = await refresh(t, first.refreshToken);

      assert.equal(tabB.refreshToken, tabA.refreshToken, "both tabs hold the one current refresh token");
      assert.notEqual(tabB.accessToken, tabA.accessToken);
      await assertAccessAccepted(t, tabA.accessToken, first.userId);
      await assertAccessAccepted(t, tabB.accessToken, first.userId);
      // The chain moved once: the first token rotated, its successor still live.
      const chain = await chainOf(t, sessionOf(first.accessToken));
      assert.equal(chain.length, 2);
      assert.equal(chain.filter((row) => row.rotated_at === null).length, 1);
      // And it goes on from there.
      const next = await refresh(t, tabB.refreshToken);
      await assertAccessAccepted(t, next.accessToken, first.userId);
    });

    it("ends the session when the rotated token comes back at or after the interval, measured from its rotation", async () => {
      const first = await registerUser(t, "late");
      clock += 60 * SECOND; // the session's own age does not matter, only the rotation's
      const second = await refresh(t, first.refreshToken);
      clock += 10 * SECOND;
      assertRefreshRefusedResponse(await refreshRaw(t, first.refreshToken));

      await assertRefreshRefused(t, second.refreshToken);
      await assertAccessRefused(t, second.accessToken);
      assert.equal((await sessionRow(t, sessionOf(first.accessToken))).revoked_reason, "refresh_token_reused");
    });

    it("ends the session when a token older than the direct parent comes back, even within the interval", async () => {
      const first = await registerUser(t, "grandparent");
      const second = await refresh(t, first.refreshToken);
      const third = await refresh(t, second.refreshToken);
      assertRefreshRefusedResponse(await refreshRaw(t, first.refreshToken));
      await assertRefreshRefused(t, third.refreshToken);
      await assertAccessRefused(t, third.accessToken);
      assert.equal((await sessionRow(t, sessionOf(first.accessToken))).revoked_reason, "refresh_token_reused");
    });

    it("never brings back a session that ended: logout, then the rotated token within the interval is refused", async () => {
      const first = await registerUser(t, "loggedout");
      const second = await refresh(t, first.refreshToken);
      const out = await t.gql(`mutation { logout }`, { token: second.accessToken });
      assert.deepEqual(out.body, { data: { logout: true } });
      assertRefreshRefusedResponse(await refreshRaw(t, first.refreshToken));
      assertRefreshRefusedResponse(await refreshRaw(t, second.refreshToken));
      assert.equal((await sessionRow(t, sessionOf(first.accessToken))).revoked_reason, "logout");
    });

    it("answers ten simultaneous refreshes with one token with one and the same successor, and moves the chain once", async (tc) => {
      const start = await registerUser(t, "racer");
      const responses = await Promise.all(Array.from({ length: 10 }, () => refreshRaw(t, start.refreshToken)));
      for (const res of responses) {
        assert.equal(res.status, 200);
        assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      }
      const successors = new Set(responses.map((res) => res.body.data.refreshToken.refreshToken as string));
      tc.diagnostic(`10 concurrent refreshes: ${successors.size} distinct successor(s)`);
      assert.equal(successors.size, 1);
      const chain = await chainOf(t, sessionOf(start.accessToken));
      assert.equal(chain.length, 2, "one rotation stored");
      assert.equal(chain.filter((row) => row.rotated_at === null).length, 1, "one live refresh token");
      for (const res of responses) await assertAccessAccepted(t, res.body.data.refreshToken.accessToken, start.userId);
      const [successor] = successors;
      await assertAccessAccepted(t, (await refresh(t, successor!)).accessToken, start.userId);
    });

    it("keeps the user's other sessions apart: another session's rotated token never returns this one's", async () => {
      const a = await registerUser(t, "apart");
      const b = await login(t, "apart");
      const aNext = await refresh(t, a.refreshToken);
      const bNext = await refresh(t, b.refreshToken);
      assert.notEqual(aNext.refreshToken, bNext.refreshToken);
      assert.equal((await refresh(t, b.refreshToken)).refreshToken, bNext.refreshToken);
      assert.equal((await refresh(t, a.refreshToken)).refreshToken, aNext.refreshToken);
    });
  });

  describe(`REFRESH_TOKEN_REUSE_INTERVAL=0s: strict single use (${kind})`, () => {
    const t = useTestApp(kind, { env: { REFRESH_TOKEN_REUSE_INTERVAL: "0s" } });

    it("ends the session the moment a rotated token comes back", async () => {
      const first = await registerUser(t, "strict");
      const second = await refresh(t, first.refreshToken);
      assertRefreshRefusedResponse(await refreshRaw(t, first.refreshToken));
      await assertAccessRefused(t, second.accessToken);
      await assertRefreshRefused(t, second.refreshToken);
    });

    it("lets at most one of ten simultaneous refreshes with one token return tokens", async () => {
      const start = await registerUser(t, "strictracer");
      const responses = await Promise.all(Array.from({ length: 10 }, () => refreshRaw(t, start.refreshToken)));
      const winners = responses.filter((res) => res.body.data?.refreshToken);
      assert.ok(winners.length <= 1, `${winners.length} of 10 returned tokens`);
      for (const res of responses.filter((r) => !r.body.data?.refreshToken)) assertRefreshRefusedResponse(res);
    });
  });
}

describe("REFRESH_TOKEN_REUSE_INTERVAL's values", () => {
  const problemOf = (value: string) => {
    try {
      loadConfig({ REFRESH_TOKEN_REUSE_INTERVAL: value }, process.cwd());
      return undefined;
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems.find((p) => p.startsWith("REFRESH_TOKEN_REUSE_INTERVAL"));
    }
  };

  it("defaults to 10 seconds and takes 0s (off), milliseconds and up to 5 minutes", () => {
    assert.equal(loadConfig({}, process.cwd()).jwt.refreshTokenReuseIntervalMs, 10_000);
    assert.equal(loadConfig({ REFRESH_TOKEN_REUSE_INTERVAL: "0s" }, process.cwd()).jwt.refreshTokenReuseIntervalMs, 0);
    assert.equal(
      loadConfig({ REFRESH_TOKEN_REUSE_INTERVAL: "2500ms" }, process.cwd()).jwt.refreshTokenReuseIntervalMs,
      2500,
    );
    assert.equal(
      loadConfig({ REFRESH_TOKEN_REUSE_INTERVAL: "5m" }, process.cwd()).jwt.refreshTokenReuseIntervalMs,
      300_000,
    );
  });

  it("refuses a bare number, a negative or unitless value and anything over 5 minutes, naming the variable", () => {
    assert.match(problemOf("10") ?? "", /^REFRESH_TOKEN_REUSE_INTERVAL must have a unit/);
    assert.match(
      problemOf("-1s") ?? "",
      /^REFRESH_TOKEN_REUSE_INTERVAL must be a duration with a unit: .*or 0s for off/,
    );
    assert.equal(problemOf("6m"), "REFRESH_TOKEN_REUSE_INTERVAL must be at most 300s");
  });
});
