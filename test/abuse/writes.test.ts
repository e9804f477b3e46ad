// Issue 22's attacks on writes and sign-ins, against the server as `npm start` runs it: a few
// hundred logins of one account with 512-character user agents then a 15-alias `sessions` query
// (3,000 of them ended the process), a throttled-login storm from four connections (932 audit rows
// a second), and an updatePost flood (500 updates in 1.7 s, each an event for every subscriber).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";

import SqliteDatabase from "better-sqlite3";
import pg from "pg";

import { SQLITE_FILE } from "../../src/db/database.js";
import { type AbuseServer, isAlive, startAbuseServer, startBystander } from "../helpers/abuse.js";
import { type ApiClient, codes, gql, type GraphQLResponse, loginRaw, registerUser } from "../helpers/api.js";
import { type DatabaseKind, DATABASES } from "../helpers/databases.js";

const SESSIONS_CAP = 10;
const LOGIN_BUDGET = 20;
const LOGINS = 50;
const USER_AGENT = "Mozilla/5.0 " + "x".repeat(500);
const STORM_MS = 3000;
const UPDATES = 200;

/** Runs `count` calls of `task` with at most `parallel` at once (one loop per "connection"). */
async function inParallel<T>(count: number, parallel: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** One SQL query against the server's database, from outside the process (read only on SQLite). */
async function query<T>(kind: DatabaseKind, abuse: AbuseServer, text: string): Promise<T[]> {
  if (kind === "sqlite") {
    const db = new SqliteDatabase(join(abuse.database.dataDir, SQLITE_FILE), { readonly: true });
    try {
      return db.prepare(text).all() as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: abuse.database.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(`set search_path to "${abuse.database.env.DATABASE_SCHEMA}"`);
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

function outcome(res: GraphQLResponse): string {
  return codes(res)[0] ?? (res.status === 200 ? "OK" : `HTTP ${res.status}`);
}

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

function assertRateLimited(res: GraphQLResponse): void {
  assert.deepEqual(codes(res), ["RATE_LIMITED"], JSON.stringify(res.body.errors));
  const retryAfter = res.body.errors![0]!.extensions!.retryAfter;
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 0, `retryAfter ${retryAfter}`);
}

for (const kind of DATABASES) {
  describe(`abuse of writes and sign-ins, against the server as npm start runs it (${kind})`, () => {
    it(`survives ${LOGINS} logins of one account with 512-character user agents and a 15-alias sessions query, a throttled-login storm from 4 connections and an updatePost flood, serving a bystander throughout`, async (t) => {
      const abuse = await startAbuseServer(kind, {
        SESSIONS_MAX_PER_USER: String(SESSIONS_CAP),
        LOGIN_MAX_PER_USER: String(LOGIN_BUDGET),
      });
      const client: ApiClient = { gql: (q, o) => gql(abuse.server.graphqlUrl, q, o) };
      const bystander = startBystander(abuse);
      try {
        // 1. Logins of one account, each with a 512-character User-Agent.
        await registerUser(client, "hoarder");
        const logins = await inParallel(LOGINS, 4, () => loginRaw(client, "hoarder", { userAgent: USER_AGENT }));
        const loginOutcomes = tally(logins.map(outcome));
        t.diagnostic(`${LOGINS} logins of one account: ${JSON.stringify(loginOutcomes)}`);
        assert.deepEqual(
          loginOutcomes,
          { OK: LOGIN_BUDGET, RATE_LIMITED: LOGINS - LOGIN_BUDGET },
          "LOGIN_MAX_PER_USER logins succeed, the rest are RATE_LIMITED",
        );
        for (const res of logins.filter((r) => outcome(r) === "RATE_LIMITED")) assertRateLimited(res);
        const token = logins.filter((r) => outcome(r) === "OK").at(-1)!.body.data.login.accessToken as string;

        const aliases = Array.from({ length: 15 }, (_, i) => `s${i}: sessions { id userAgent lastUsedAt }`).join(" ");
        const sessions = await gql(abuse.server.graphqlUrl, `{ ${aliases} }`, { token });
        assert.equal(sessions.status, 200, JSON.stringify(sessions.body.errors));
        for (let i = 0; i < 15; i++) {
          const list = sessions.body.data[`s${i}`] as Array<{ userAgent: string }>;
          assert.ok(list.length <= SESSIONS_CAP, `alias s${i} lists ${list.length} sessions`);
          for (const s of list) assert.equal(s.userAgent, USER_AGENT.slice(0, 256));
        }
        const [stored] = await query<{ live: number | string; longest: number | string }>(
          kind,
          abuse,
          "select count(*) as live, max(length(user_agent)) as longest from sessions where revoked_at is null",
        );
        t.diagnostic(`live sessions stored: ${stored!.live}, longest stored user agent: ${stored!.longest}`);
        assert.ok(Number(stored!.live) <= SESSIONS_CAP, "live sessions at most the cap");
        assert.equal(Number(stored!.longest), 256);
        assert.ok(isAlive(abuse), "alive after the logins and the sessions query");

        // 2. A throttled-login storm from 4 connections.
        await registerUser(client, "victim");
        for (let i = 0; i < 5; i++) await loginRaw(client, "victim", { password: "not the password" });
        const auditBefore = await query<{ n: number | string }>(kind, abuse, "select count(*) as n from audit_events");
        const deadline = Date.now() + STORM_MS;
        const storm: string[] = [];
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (Date.now() < deadline) storm.push(outcome(await loginRaw(client, "victim")));
          }),
        );
        // The first occurrence's row is written in the background; give it a moment.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const auditAfter = await query<{ n: number | string }>(kind, abuse, "select count(*) as n from audit_events");
        const added = Number(auditAfter[0]!.n) - Number(auditBefore[0]!.n);
        t.diagnostic(
          `throttled-login storm: ${storm.length} logins in ${STORM_MS} ms (${JSON.stringify(tally(storm))}), audit rows added: ${added}`,
        );
        assert.ok(storm.length >= 50, `the storm sent ${storm.length} logins`);
        assert.deepEqual(tally(storm), { RATE_LIMITED: storm.length });
        assert.ok(added <= 2, `audit rows grow by the minute, not by the request: ${added}`);
        assert.ok(isAlive(abuse), "alive after the storm");

        // 3. An updatePost flood.
        const writer = await registerUser(client, "flooder");
        const created = await gql(
          abuse.server.graphqlUrl,
          `mutation { createPost(input: { title: "flood", body: "body" }) { id } }`,
          { token: writer.accessToken },
        );
        const id = created.body.data.createPost.id as string;
        const updates = await inParallel(UPDATES, 4, (i) =>
          gql(
            abuse.server.graphqlUrl,
            `mutation($id: ID!, $t: String!) { updatePost(id: $id, input: { title: $t }) { id } }`,
            {
              token: writer.accessToken,
              variables: { id, t: `update ${i}` },
            },
          ),
        );
        const updateOutcomes = tally(updates.map(outcome));
        t.diagnostic(`${UPDATES} updatePost calls: ${JSON.stringify(updateOutcomes)}`);
        assert.deepEqual(updateOutcomes, { OK: 120, RATE_LIMITED: UPDATES - 120 });
        for (const res of updates.filter((r) => outcome(r) === "RATE_LIMITED")) assertRateLimited(res);
        assert.ok(isAlive(abuse), "alive after the flood");
      } finally {
        const report = await bystander.stop();
        t.diagnostic(
          `bystander: ${report.ok} ok, ${report.failed} failed, p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms; server peak RSS ${report.peakRssMb.toFixed(0)} MB`,
        );
        const alive = isAlive(abuse);
        await abuse.stop();
        assert.ok(alive, "the server is still running");
        assert.ok(report.ok > 0, "the bystander was served");
        assert.equal(report.failed, 0, "no bystander request failed");
      }
    });
  });
}
