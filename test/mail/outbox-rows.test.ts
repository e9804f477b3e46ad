// The outbox's rows over time: claims that exclude each other and lapse, results written only by
// the claim holder, a mail that fails for a day given up and counted, and the pruning of settled rows.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { OutboxStore } from "../../src/mail/outbox.store.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { createTestDatabase, DATABASES } from "../helpers/databases.js";
import { enqueue, eventually, mailCount, outboxRows, sample, testMail } from "../helpers/outbox.js";
import { TestSmtpServer } from "../helpers/smtp.js";

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

for (const kind of DATABASES) {
  describe(`outbox claims (${kind})`, () => {
    let t: TestApp;
    let store: OutboxStore;
    before(async () => {
      // Production without SMTP_URL: no sender runs, so the rows are this test's alone.
      t = await startTestApp(kind, { env: { NODE_ENV: "production" } });
      store = new OutboxStore("example.test", t.app.database.db, t.app.database.dialect);
    });
    after(async () => {
      await t.close();
      await t.database.drop();
    });

    it("a claim takes at most its limit, excludes other claims until it lapses, and only the holder settles the row", async () => {
      for (let i = 0; i < 5; i++) await enqueue(t.app, testMail());
      const t0 = Date.now() + 1000;
      const lease = new Date(t0 + 60_000);
      const first = await store.claim(2, new Date(t0), lease);
      const second = await store.claim(10, new Date(t0), lease);
      assert.equal(first.length, 2);
      assert.equal(second.length, 3);
      assert.equal(new Set([...first, ...second].map((m) => m.id)).size, 5);
      assert.deepEqual(await store.claim(10, new Date(t0 + 59_000), lease), []);
      // The first claimant died: its claim lapses and another takes the rows over, as attempt 2.
      const again = await store.claim(2, new Date(t0 + 61_000), new Date(t0 + 121_000));
      assert.deepEqual(again.map((m) => [m.id, m.attempt]).sort(), first.map((m) => [m.id, 2]).sort());
      assert.equal(await store.markSent(first[0]!, new Date(t0 + 62_000)), false);
      assert.equal(await store.markSent(again[0]!, new Date(t0 + 62_000)), true);
      assert.equal(await store.markFailed(again[0]!, "late"), false);
      const rows = await outboxRows(t.app);
      assert.equal(rows.find((r) => r.id === again[0]!.id)?.status, "sent");
      assert.equal(rows.filter((r) => r.status === "queued").length, 4);
    });
  });

  describe(`a mail that fails for a day (${kind})`, () => {
    let smtp: TestSmtpServer;
    let t: TestApp;
    let shift = 0;
    before(async () => {
      smtp = await TestSmtpServer.start();
      await smtp.stop();
      t = await startTestApp(kind, {
        env: { SMTP_URL: smtp.url(), NODE_ENV: "production" },
        now: () => Date.now() + shift,
      });
    });
    after(async () => {
      await t.close();
      await t.database.drop();
      await smtp.close();
    });

    it("is retried with backoff, then marked failed, counted and logged once at warn without its content", async () => {
      const mail = testMail();
      await enqueue(t.app, mail);
      await eventually(async () => (await mailCount(t.app, "retried")) === 1, "the first attempt failed");
      // The gauge operators alert on counts it (every few seconds).
      await eventually(
        async () => sample(await t.app.metrics.text(), "gta_mail_outbox_waiting") === 1,
        "one mail counted waiting",
      );
      const [waiting] = await outboxRows(t.app);
      assert.equal(waiting!.status, "queued");
      assert.match(waiting!.last_error!, /ECONNECTION|ESOCKET|ECONNREFUSED/);
      const wait = new Date(waiting!.next_attempt_at).getTime() - new Date(waiting!.created_at).getTime();
      assert.ok(wait >= 9_000 && wait <= 11_500, `first backoff ${wait} ms`);
      // 23 hours later the mail is tried again and still waits.
      shift = 23 * HOUR;
      await eventually(async () => (await mailCount(t.app, "retried")) === 2, "the second attempt failed");
      assert.equal((await outboxRows(t.app))[0]!.status, "queued");
      shift = DAY + HOUR;
      await eventually(async () => (await outboxRows(t.app))[0]!.status === "failed", "given up");
      assert.equal(await mailCount(t.app, "failed"), 1);
      assert.equal(await mailCount(t.app, "sent"), 0);
      const row = (await outboxRows(t.app))[0]!;
      assert.equal(row.attempts, 3);
      const lines = t.logs
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === "mail not sent within a day: marked failed");
      assert.equal(lines.length, 1);
      assert.equal(lines[0].mailId, row.id);
      assert.equal(lines[0].attempt, 3);
      assert.equal(lines[0].toDomain, "example.test");
      assert.ok(!t.logs.some((l) => l.includes(mail.marker) || l.includes("alice@")));
      await smtp.restart();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      assert.equal(smtp.mails.length, 0);
    });
  });

  describe(`pruning the outbox (${kind})`, () => {
    it("deletes sent and suppressed rows after 7 days and failed ones after 30, in batches, at each start's housekeeping", async () => {
      const smtp = await TestSmtpServer.start();
      const database = createTestDatabase(kind);
      try {
        const first = await startTestApp(kind, { database, env: { SMTP_URL: smtp.url() } });
        await enqueue(first.app, testMail());
        await smtp.waitForMails(1);
        smtp.mode = "reject";
        await enqueue(first.app, testMail());
        await eventually(async () => (await outboxRows(first.app)).some((r) => r.status === "failed"), "one failed");
        await eventually(async () => (await outboxRows(first.app)).some((r) => r.status === "sent"), "one sent");
        // More suppressed rows than one batch deletes.
        await first.app.database.db.transaction().execute(async (trx) => {
          for (let i = 0; i < 2100; i++) await first.app.mailer.suppress(trx, testMail());
        });
        await first.close();
        const counts = async (app: TestApp) => {
          const rows = await outboxRows(app.app);
          return {
            sent: rows.filter((r) => r.status === "sent").length,
            suppressed: rows.filter((r) => r.status === "suppressed").length,
            failed: rows.filter((r) => r.status === "failed").length,
          };
        };
        const sixDays = await startTestApp(kind, { database, now: () => Date.now() + 6 * DAY });
        assert.deepEqual(await counts(sixDays), { sent: 1, suppressed: 2100, failed: 1 });
        await sixDays.close();
        const eightDays = await startTestApp(kind, { database, now: () => Date.now() + 8 * DAY });
        assert.deepEqual(await counts(eightDays), { sent: 0, suppressed: 0, failed: 1 });
        const pruned = eightDays.logs.map((l) => JSON.parse(l)).find((l) => l.msg === "mail outbox pruned");
        assert.equal(pruned?.deleted, 2101);
        await eightDays.close();
        const monthLater = await startTestApp(kind, { database, now: () => Date.now() + 31 * DAY });
        assert.deepEqual(await counts(monthLater), { sent: 0, suppressed: 0, failed: 0 });
        await monthLater.close();
      } finally {
        await database.drop();
        await smtp.close();
      }
    });
  });
}
