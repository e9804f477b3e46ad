import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import { sql } from "kysely";

import { assertAccessAccepted, login, refresh, registerUser, sessionOf } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const DAY_MS = 24 * 60 * 60 * 1000;

async function rows(t: TestApp): Promise<{ sessions: string[]; refreshTokens: number }> {
  const sessions = await sql<{ id: string }>`select id from sessions order by id`.execute(t.app.database.db);
  const tokens = await sql<{ n: number | string }>`select count(*) as n from refresh_tokens`.execute(t.app.database.db);
  return { sessions: sessions.rows.map((r) => r.id), refreshTokens: Number(tokens.rows[0]!.n) };
}

for (const kind of DATABASES) {
  describe(`pruning ended sessions (${kind})`, () => {
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    let t: TestApp | undefined;
    after(async () => {
      await t?.close();
      await t?.database.drop();
    });

    it("deletes sessions that ended more than a day ago with their refresh tokens (at start, then hourly), and keeps live ones and recently ended ones", async () => {
      t = await startTestApp(kind, { now });
      const kept = await registerUser(t, "keeper");
      const refreshed = await refresh(t, kept.refreshToken);
      const ended = await login(t, "keeper");
      await refresh(t, ended.refreshToken);
      const res = await t.gql(`mutation { logout }`, { token: ended.accessToken });
      assert.deepEqual(res.body, { data: { logout: true } });
      const before = await rows(t);
      assert.equal(before.sessions.length, 2);
      assert.equal(before.refreshTokens, 4);

      // Half a day later nothing has gone; two days later the ended session and its tokens have.
      offsetMs += DAY_MS / 2;
      const database = t.database;
      await t.close();
      t = await startTestApp(kind, { now, database });
      assert.deepEqual(await rows(t), before);

      offsetMs += 2 * DAY_MS;
      await t.close();
      t = await startTestApp(kind, { now, database });
      assert.deepEqual(await rows(t), { sessions: [sessionOf(kept.accessToken)], refreshTokens: 2 });
      assert.ok(
        t.logs.some((line) => {
          const entry = JSON.parse(line) as { msg: string; deleted?: number };
          return entry.msg === "ended sessions pruned" && entry.deleted === 1;
        }),
        "the prune is logged",
      );
      // The live session goes on as before.
      const next = await refresh(t, refreshed.refreshToken);
      await assertAccessAccepted(t, next.accessToken, kept.userId);
    });
  });
}
