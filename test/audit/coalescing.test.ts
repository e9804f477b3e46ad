import "reflect-metadata";

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { sql } from "kysely";
import pg from "pg";
import { pino } from "pino";

import { AuditService, COALESCE_MAX_KEYS } from "../../src/audit/audit.service.js";
import type { AuditRecord, AuditStore } from "../../src/audit/audit.store.js";
import { codes, loginRaw, registerRaw, registerUser } from "../helpers/api.js";
import { startTestApp, type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { tamperedSignature } from "../helpers/jwt.js";

interface RejectionRow {
  ip: string | null;
  user_id: string | null;
  session_id: string | null;
  user_agent: string | null;
  detail: string | null;
}

/** The stored TOKEN_REJECTED rows, oldest first. */
async function rejectionRows(t: TestApp): Promise<RejectionRow[]> {
  const result =
    await sql<RejectionRow>`select ip, user_id, session_id, user_agent, detail from audit_events where type = 'TOKEN_REJECTED' order by id`.execute(
      t.app.database.db,
    );
  return result.rows;
}

/** Sends `n` requests with the Authorization header `authorization`, in parallel; each must get 401. */
async function reject(t: TestApp, n: number, authorization: string, userAgent = "coalescing-suite"): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: n }, () => t.gql(`{ posts { id } }`, { headers: { authorization, "user-agent": userAgent } })),
  );
  assert.deepEqual(
    answers.map((res) => res.status),
    Array(n).fill(401),
  );
}

for (const kind of DATABASES) {
  describe(`coalesced TOKEN_REJECTED events (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { now: () => clock });

    it("writes the first rejection from an IP at once, counts the next ones in memory, and stores one row with the total when flushed", async () => {
      await reject(t, 1, "Bearer not-a-jwt", "first-of-many");
      await t.app.audit.settled();
      assert.deepEqual(await rejectionRows(t), [
        {
          ip: "127.0.0.1",
          user_id: null,
          session_id: null,
          user_agent: "first-of-many",
          detail: "reason=MALFORMED count=1",
        },
      ]);
      await reject(t, 39, "Bearer not-a-jwt");
      await t.app.audit.settled();
      assert.equal((await rejectionRows(t)).length, 1, "no row for the repeats");
      await t.app.audit.flush();
      assert.deepEqual(await rejectionRows(t), [
        {
          ip: "127.0.0.1",
          user_id: null,
          session_id: null,
          user_agent: "first-of-many",
          detail: "reason=MALFORMED count=40",
        },
      ]);
    });

    it("keeps one row per reason, and per user for tokens whose session ended", async () => {
      const alice = await registerUser(t, "alice");
      const bob = await registerUser(t, "bob");
      for (const user of [alice, bob]) {
        const res = await t.gql(`mutation { logout }`, { token: user.accessToken });
        assert.deepEqual(res.body, { data: { logout: true } });
      }
      await reject(t, 3, "Bearer not-a-jwt");
      await reject(t, 4, `Bearer ${tamperedSignature(alice.accessToken)}`);
      await reject(t, 5, `Bearer ${alice.accessToken}`);
      await reject(t, 6, `Bearer ${bob.accessToken}`);
      await t.app.audit.flush();
      const rows = (await rejectionRows(t)).slice(1).map((row) => ({ userId: row.user_id, detail: row.detail }));
      assert.deepEqual(
        rows.sort((x, y) => x.detail!.localeCompare(y.detail!)),
        [
          { userId: null, detail: "reason=MALFORMED count=3" },
          { userId: alice.userId, detail: "reason=SESSION_ENDED count=5" },
          { userId: bob.userId, detail: "reason=SESSION_ENDED count=6" },
          { userId: null, detail: "reason=SIGNATURE_INVALID count=4" },
        ].sort((x, y) => x.detail.localeCompare(y.detail)),
      );
    });

    it("starts a new row once the minute has passed", async () => {
      const before = (await rejectionRows(t)).length;
      await reject(t, 7, "Bearer not-a-jwt");
      clock += 61_000;
      await reject(t, 2, "Bearer not-a-jwt");
      await t.app.audit.flush();
      assert.deepEqual(
        (await rejectionRows(t)).slice(before).map((row) => row.detail),
        ["reason=MALFORMED count=7", "reason=MALFORMED count=2"],
      );
    });
  });

  describe(`coalesced TOKEN_REJECTED events at shutdown (${kind})`, () => {
    let t: TestApp | undefined;
    let restarted: TestApp | undefined;
    after(async () => {
      await restarted?.close();
      await t?.database.drop();
    });

    it("stores the counts still in memory when the app closes", async () => {
      t = await startTestApp(kind);
      await reject(t, 12, "Bearer not-a-jwt");
      await t.close();
      restarted = await startTestApp(kind, { database: t.database });
      assert.deepEqual(
        (await rejectionRows(restarted)).map((row) => row.detail),
        ["reason=MALFORMED count=12"],
      );
    });
  });
}

if (DATABASES.includes("postgres")) {
  describe("coalesced TOKEN_REJECTED events with a hung database (postgres)", () => {
    let t: TestApp;
    let locker: pg.Client | undefined;
    before(async () => {
      t = await startTestApp("postgres");
    });
    after(async () => {
      await locker?.end();
      await t?.close();
      await t?.database.drop();
    });

    it("answers 401 at once while the audit table is locked, and stores the row once it is free", async () => {
      locker = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
      await locker.connect();
      await locker.query("begin");
      await locker.query(`lock table "${t.database.env.DATABASE_SCHEMA}".audit_events in access exclusive mode`);
      const started = performance.now();
      await reject(t, 5, "Bearer not-a-jwt");
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `five 401s took ${Math.round(elapsed)} ms with the audit table locked`);
      await locker.query("rollback");
      await t.app.audit.flush();
      assert.deepEqual(
        (await rejectionRows(t)).map((row) => row.detail),
        ["reason=MALFORMED count=5"],
      );
    });
  });
}

describe("the coalescing memory bound", () => {
  /** An AuditService over a store that only keeps what it is given. */
  function auditWithMemoryStore(options: { coalesceMaxKeys?: number } = {}) {
    const rows: Array<AuditRecord & { id: string }> = [];
    const store = {
      async insert(record: AuditRecord) {
        rows.push({ ...record, id: String(rows.length + 1) });
        return String(rows.length);
      },
      async setDetail(id: string, detail: string | null) {
        rows[Number(id) - 1]!.detail = detail;
      },
    } as unknown as AuditStore;
    const audit = new AuditService({
      store,
      retentionSeconds: 3600,
      now: Date.now,
      logger: pino({ level: "silent" }),
      ...options,
    });
    return { audit, rows };
  }

  const rejectFrom = (audit: AuditService, ip: string, reason = "MALFORMED") =>
    audit.recordCoalesced({ type: "TOKEN_REJECTED", client: { ip, userAgent: "spoofer" } }, { reason });

  it(`holds at most ${COALESCE_MAX_KEYS} keys by default and counts every further IP in one overflow event per reason`, async () => {
    const { audit, rows } = auditWithMemoryStore();
    const spoofed = COALESCE_MAX_KEYS + 5000;
    for (let i = 0; i < spoofed; i++) rejectFrom(audit, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    // Already-known keys keep counting in their own rows, even once the map is full.
    rejectFrom(audit, "10.0.0.0");
    rejectFrom(audit, "10.0.0.1", "EXPIRED");
    await audit.stop();
    assert.equal(rows.length, COALESCE_MAX_KEYS + 2, "one row per admitted IP, plus one overflow row per reason");
    assert.equal(rows[0]!.ip, "10.0.0.0");
    assert.equal(rows[0]!.detail, "reason=MALFORMED count=2");
    const overflow = rows.filter((row) => row.detail?.includes("overflow=true"));
    assert.deepEqual(
      overflow.map((row) => [row.ip, row.userAgent, row.userId, row.detail]),
      [
        [null, null, null, "reason=MALFORMED overflow=true count=5000"],
        [null, null, null, "reason=EXPIRED overflow=true count=1"],
      ],
    );
  });

  it("counts, across admitted keys and the overflow, every rejection exactly once", async () => {
    const { audit, rows } = auditWithMemoryStore({ coalesceMaxKeys: 3 });
    for (let i = 0; i < 100; i++) rejectFrom(audit, `192.0.2.${i % 10}`);
    await audit.stop();
    const counts = rows.map((row) => Number(/count=(\d+)/.exec(row.detail ?? "")![1]));
    assert.equal(rows.length, 4);
    assert.deepEqual(counts, [10, 10, 10, 70]);
  });
});

interface ThrottleRow {
  type: string;
  ip: string | null;
  username: string | null;
  detail: string | null;
}

/** The stored LOGIN_THROTTLED and REGISTRATION_THROTTLED rows, oldest first. */
async function throttleRows(t: TestApp): Promise<ThrottleRow[]> {
  const result =
    await sql<ThrottleRow>`select type, ip, username, detail from audit_events where type in ('LOGIN_THROTTLED', 'REGISTRATION_THROTTLED') order by id`.execute(
      t.app.database.db,
    );
  return result.rows;
}

const N = 60;

for (const kind of DATABASES) {
  describe(`coalesced LOGIN_THROTTLED and REGISTRATION_THROTTLED events (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, {
      now: () => clock,
      env: { LOGIN_MAX_FAILURES_PER_USER_IP: "2", LOGIN_MAX_FAILURES_PER_IP: "6", REGISTER_MAX_PER_IP: "1" },
    });

    it(`stores ${N} concurrent throttled logins of one name within a minute as one row with count=${N}, and logs one info line for them`, async () => {
      await registerUser(t, "target");
      for (let i = 0; i < 2; i++)
        assert.deepEqual(codes(await loginRaw(t, "target", { password: "wrong password" })), ["UNAUTHENTICATED"]);
      const infoBefore = auditInfoLines(t);
      const answers = await Promise.all(Array.from({ length: N }, () => loginRaw(t, "Target")));
      assert.deepEqual(
        answers.map((res) => codes(res)[0]),
        Array(N).fill("RATE_LIMITED"),
      );
      await t.app.audit.settled();
      assert.equal((await throttleRows(t)).length, 1, "one row while the minute lasts");
      await t.app.audit.flush();
      assert.deepEqual(await throttleRows(t), [
        { type: "LOGIN_THROTTLED", ip: "127.0.0.1", username: "Target", detail: `limit=USER_IP count=${N}` },
      ]);
      assert.equal(auditInfoLines(t) - infoBefore, 2, "the row's line and its count's line, not one per login");
      const debug = t.logs.filter((line) => line.includes('"msg":"login throttled"'));
      assert.equal(debug.length, N, "a debug line per throttled login");
    });

    it("keeps one row per IP for the IP-wide limit whatever names are tried, and starts a new row the next minute", async () => {
      clock += 61_000;
      // Four more failures reach the IP's limit of 6 (the first two counted already).
      for (const name of ["other1", "other2", "other3", "other4"])
        assert.deepEqual(codes(await loginRaw(t, name, { password: "wrong password" })), ["UNAUTHENTICATED"]);
      const before = (await throttleRows(t)).length;
      const answers = await Promise.all(Array.from({ length: N }, (_, i) => loginRaw(t, `name${i}`)));
      assert.ok(answers.every((res) => codes(res)[0] === "RATE_LIMITED"));
      clock += 61_000;
      await Promise.all(Array.from({ length: 5 }, (_, i) => loginRaw(t, `later${i}`)));
      await t.app.audit.flush();
      assert.deepEqual((await throttleRows(t)).slice(before), [
        { type: "LOGIN_THROTTLED", ip: "127.0.0.1", username: null, detail: `limit=IP count=${N}` },
        { type: "LOGIN_THROTTLED", ip: "127.0.0.1", username: null, detail: "limit=IP count=5" },
      ]);
    });

    it(`stores ${N} concurrent registrations refused by REGISTER_MAX_PER_IP as one REGISTRATION_THROTTLED row with count=${N}`, async () => {
      // "target" used up the IP's one registration.
      const before = (await throttleRows(t)).length;
      const answers = await Promise.all(Array.from({ length: N }, (_, i) => registerRaw(t, `newcomer${i}`)));
      assert.deepEqual(
        answers.map((res) => codes(res)[0]),
        Array(N).fill("RATE_LIMITED"),
      );
      await t.app.audit.flush();
      assert.deepEqual((await throttleRows(t)).slice(before), [
        {
          type: "REGISTRATION_THROTTLED",
          ip: "127.0.0.1",
          username: null,
          detail: `limit=REGISTER_MAX_PER_IP count=${N}`,
        },
      ]);
    });
  });
}

/** How many "audit event" and "audit event count updated" lines the app logged at info so far. */
function auditInfoLines(t: TestApp): number {
  return t.logs.filter((line) => {
    const entry = JSON.parse(line) as { level: number; msg: string };
    return entry.level === 30 && (entry.msg === "audit event" || entry.msg === "audit event count updated");
  }).length;
}
