// Several senders on one outbox: two instances (on PostgreSQL, or two apps on one SQLite file)
// share 30 mails and each is received exactly once; and a server killed in the middle of a
// delivery leaves its mail to the restarted server, which sends it once the claim has lapsed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { loadConfig } from "../../src/load-config.js";
import { createLogger } from "../../src/logger.js";
import { createServices, type Services } from "../../src/services.js";
import { killRunningServers, ServerProcess, startTestApp, type TestApp } from "../helpers/app.js";
import { createTestDatabase, DATABASES, type TestDatabase } from "../helpers/databases.js";
import { eventually, mailCount, testMail } from "../helpers/outbox.js";
import { TestSmtpServer } from "../helpers/smtp.js";

after(() => killRunningServers());

for (const kind of DATABASES) {
  describe(`two instances on one outbox (${kind})`, () => {
    let smtp: TestSmtpServer;
    let a: TestApp;
    let b: TestApp;
    before(async () => {
      smtp = await TestSmtpServer.start();
      // A slow server keeps the first instance busy long enough for the second to claim rows too.
      smtp.replyDelayMs = 100;
      a = await startTestApp(kind, { env: { SMTP_URL: smtp.url() } });
      b = await startTestApp(kind, { env: { SMTP_URL: smtp.url() }, database: a.database });
    });
    after(async () => {
      await a.close();
      await b.close();
      await a.database.drop();
      await smtp.close();
    });

    it("30 mails written on one instance are received exactly once, both instances sending", async () => {
      const mails = Array.from({ length: 30 }, (_, i) => testMail(`user${i}@example.test`));
      await a.app.database.db.transaction().execute(async (trx) => {
        for (const mail of mails) await a.app.mailer.enqueue(trx, mail);
      });
      await smtp.waitForMails(30, 30_000);
      // Long enough for a second copy of any mail to arrive.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.deepEqual(smtp.mails.map((m) => m.subject).sort(), mails.map((m) => m.subject).sort());
      const sentByA = await mailCount(a.app, "sent");
      const sentByB = await mailCount(b.app, "sent");
      console.log(`# ${kind}: instance A sent ${sentByA}, instance B ${sentByB}`);
      assert.equal(sentByA + sentByB, 30);
      assert.ok(sentByA > 0 && sentByB > 0, `A sent ${sentByA}, B ${sentByB}`);
      const rows = await a.app.database.db.selectFrom("mail_outbox").select(["status", "attempts"]).execute();
      assert.deepEqual(new Set(rows.map((r) => `${r.status}/${r.attempts}`)), new Set(["sent/1"]));
    });
  });
}

describe("a server killed while delivering (sqlite, the real server process)", () => {
  let smtp: TestSmtpServer;
  let database: TestDatabase;
  let writer: Services;
  before(async () => {
    smtp = await TestSmtpServer.start();
    database = createTestDatabase("sqlite");
  });
  after(async () => {
    await writer?.close();
    await database.drop();
    await smtp.close();
  });

  it("leaves the mail claimed; the restarted server sends it exactly once when the claim lapses", async () => {
    const env = { ...database.env, NODE_ENV: "development", LOG_LEVEL: "debug", SMTP_URL: smtp.url() };
    // The SMTP server accepts connections and never greets: the delivery is in flight when the process dies.
    smtp.mode = "hang";
    const server = await ServerProcess.start(env, database.dataDir);
    // Another process writes the mail, as a CLI command would (no sender of its own).
    const config = loadConfig({ ...env, LOG_LEVEL: "error" }, database.dataDir);
    writer = await createServices(config, { logger: createLogger(config), background: false });
    const mail = testMail();
    await writer.database.db.transaction().execute((trx) => writer.mailer.enqueue(trx, mail));
    const row = () => writer.database.db.selectFrom("mail_outbox").selectAll().executeTakeFirstOrThrow();
    await eventually(async () => (await row()).attempts === 1, "the server claimed the mail");
    await eventually(() => smtp.connections > 0, "the server connected to SMTP");
    await server.signal("SIGKILL", 5000);
    const killedAt = performance.now();
    const claimed = await row();
    assert.equal(claimed.status, "queued");
    assert.ok(claimed.locked_until !== null);

    smtp.mode = "up";
    const restarted = await ServerProcess.start(env, database.dataDir);
    try {
      await smtp.waitForMails(1, 90_000);
      console.log(
        `# the restarted server sent the mail ${Math.round((performance.now() - killedAt) / 1000)} s after the crash`,
      );
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.deepEqual(
        smtp.mails.map((m) => m.subject),
        [mail.subject],
      );
      const sent = await row();
      assert.equal(sent.status, "sent");
      assert.equal(sent.attempts, 2);
      assert.ok(restarted.logs().some((line) => line.msg === "mail sent" && line.mailId === sent.id));
    } finally {
      await restarted.stop();
    }
  });
});
