// What grows without use is deleted by the housekeeping (at start, then hourly): spent refresh
// tokens of live sessions past REFRESH_TOKEN_RETENTION, and sessions that expired without ever
// being ended, a day after their expiry. Time is the app's clock, moved by the test; a restart on
// the same database runs the housekeeping.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import { sql } from "kysely";

import { hashRefreshToken } from "../../src/sessions/refresh-chain.js";
import { pruneSpentRefreshTokens } from "../../src/sessions/session-pruning.js";
import {
  assertAccessAccepted,
  assertAccessRefused,
  assertRefreshRefused,
  login,
  refresh,
  registerUser,
  sessionOf,
} from "../helpers/api.js";
import { startTestApp, type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/** Every stored refresh token's hash, sorted. */
async function storedHashes(t: TestApp): Promise<string[]> {
  const rows = await sql<{ token_hash: string }>`select token_hash from refresh_tokens`.execute(t.app.database.db);
  return rows.rows.map((r) => r.token_hash).sort();
}

async function sessionIds(t: TestApp): Promise<string[]> {
  const rows = await sql<{ id: string }>`select id from sessions`.execute(t.app.database.db);
  return rows.rows.map((r) => r.id).sort();
}

async function auditTypes(t: TestApp, type: string): Promise<number> {
  const rows = await sql<{ n: number | string }>`select count(*) as n from audit_events where type = ${type}`.execute(
    t.app.database.db,
  );
  return Number(rows.rows[0]!.n);
}

function hashes(...tokens: string[]): string[] {
  return tokens.map(hashRefreshToken).sort();
}

for (const kind of DATABASES) {
  describe(`retention of spent refresh tokens and expired sessions (${kind})`, () => {
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    let t: TestApp | undefined;
    const restart = async (env: Record<string, string> = {}) => {
      const database = t!.database;
      await t!.close();
      t = await startTestApp(kind, { now, database, env });
    };
    after(async () => {
      await t?.close();
      await t?.database.drop();
    });

    it("deletes spent refresh tokens rotated more than REFRESH_TOKEN_RETENTION ago, and keeps current tokens, recently spent ones and other sessions' tokens", async () => {
      const env = { REFRESH_TOKEN_RETENTION: "2d" };
      t = await startTestApp(kind, { now, env });
      const first = await registerUser(t, "refresher");
      const second = await refresh(t, first.refreshToken);
      const third = await refresh(t, second.refreshToken);
      const idle = await login(t, "refresher");
      const other = await registerUser(t, "bystander");
      const bystander = await refresh(t, other.refreshToken);

      offsetMs += 3 * DAY_MS;
      const fourth = await refresh(t, third.refreshToken);
      await restart(env);
      // first, second and the bystander's first were spent three days ago: gone. third was spent
      // just now; fourth, idle's and the bystander's second are current.
      assert.deepEqual(
        await storedHashes(t),
        hashes(third.refreshToken, fourth.refreshToken, idle.refreshToken, bystander.refreshToken),
      );
      assert.ok(
        t.logs.some((line) => {
          const entry = JSON.parse(line) as { msg: string; deleted?: number };
          return entry.msg === "spent refresh tokens pruned" && entry.deleted === 3;
        }),
        "the prune is logged",
      );

      // A pruned spent token is merely unknown: its session goes on, and no reuse is recorded.
      await assertRefreshRefused(t, first.refreshToken);
      const fifth = await refresh(t, fourth.refreshToken);
      await assertAccessAccepted(t, fifth.accessToken, first.userId);
      assert.equal(await auditTypes(t, "REFRESH_TOKEN_REUSED"), 0);

      // A spent token within the retention still trips reuse detection and ends its session.
      await assertRefreshRefused(t, third.refreshToken);
      assert.equal(await auditTypes(t, "REFRESH_TOKEN_REUSED"), 1);
      await assertAccessRefused(t, fifth.accessToken);
      await assertRefreshRefused(t, fifth.refreshToken);
      // The other sessions were not touched.
      await assertAccessAccepted(t, (await refresh(t, idle.refreshToken)).accessToken, first.userId);
      await assertAccessAccepted(t, (await refresh(t, bystander.refreshToken)).accessToken, other.userId);
    });

    it("deletes a session that expired without being ended, with its tokens, a day after its expiry", async () => {
      const env = { JWT_REFRESH_TOKEN_EXPIRES: "1h" };
      await restart(env);
      const expiring = await registerUser(t!, "expiring");
      await refresh(t!, expiring.refreshToken);
      const expiringId = sessionOf(expiring.accessToken);

      // Half a day after its expiry it is still there (as an ended one would be).
      offsetMs += HOUR_MS + DAY_MS / 2;
      await restart(env);
      assert.ok((await sessionIds(t!)).includes(expiringId));
      const later = await login(t!, "expiring");

      offsetMs += 2 * DAY_MS;
      await restart(env);
      const left = await sessionIds(t!);
      assert.equal(left.includes(expiringId), false, "the expired session is gone");
      assert.equal(left.includes(sessionOf(later.accessToken)), false, "so is the one that expired since");
      const tokens = await sql<{
        n: number | string;
      }>`select count(*) as n from refresh_tokens where session_id = ${expiringId}`.execute(t!.app.database.db);
      assert.equal(Number(tokens.rows[0]!.n), 0, "with its refresh tokens");
      assert.ok(
        t!.logs.some((line) => {
          const entry = JSON.parse(line) as { msg: string; deleted?: number };
          return entry.msg === "ended sessions pruned" && (entry.deleted ?? 0) >= 2;
        }),
        "the prune is logged",
      );
      // A session started now is kept.
      const fresh = await login(t!, "expiring");
      offsetMs += 10 * 60 * 1000;
      await restart(env);
      assert.ok((await sessionIds(t!)).includes(sessionOf(fresh.accessToken)));
    });
  });

  describe(`pruning spent refresh tokens in batches (${kind})`, () => {
    const t = useTestApp(kind);

    it("deletes spent tokens in bounded batches: a run stops after its last batch, and the next one takes the rest", async () => {
      const user = await registerUser(t, "batched");
      let current = user.refreshToken;
      for (let i = 0; i < 5; i++) current = (await refresh(t, current)).refreshToken;
      const spentBefore = new Date(Date.now() + 1000);
      const db = t.app.database.db;
      const of = sessionOf(user.accessToken);
      const count = async () =>
        Number(
          (
            await sql<{
              n: number | string;
            }>`select count(*) as n from refresh_tokens where session_id = ${of}`.execute(db)
          ).rows[0]!.n,
        );
      assert.equal(await count(), 6);
      // Batches of 2, at most 2 a run: 4 of the 5 spent ones go, then the last, then none.
      assert.equal(await pruneSpentRefreshTokens(db, spentBefore, t.app.logger, 2, 2), 4);
      assert.equal(await count(), 2);
      assert.equal(await pruneSpentRefreshTokens(db, spentBefore, t.app.logger, 2, 2), 1);
      assert.equal(await pruneSpentRefreshTokens(db, spentBefore, t.app.logger, 2, 2), 0);
      assert.deepEqual(
        (
          await sql<{ token_hash: string }>`select token_hash from refresh_tokens where session_id = ${of}`.execute(db)
        ).rows.map((r) => r.token_hash),
        hashes(current),
        "only the current token is left",
      );
      await refresh(t, current);
    });
  });
}
