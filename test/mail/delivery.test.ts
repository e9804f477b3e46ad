// The outbox's sender against a real SMTP server (test/helpers/smtp.ts): what a recipient receives,
// that writing a mail never waits for the server, and that outages, stalls and refusals end with
// each mail received exactly once, or given up and counted.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { startTestApp, type TestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { enqueue, eventually, mailCount, outboxRows, sample, testMail } from "../helpers/outbox.js";
import { TestSmtpServer } from "../helpers/smtp.js";

/** Timeouts of a second, so that a stalled server becomes a failure quickly (SMTP_URL's query overrides the 10 s defaults). */
const FAST = "connectionTimeout=1000&greetingTimeout=1000&socketTimeout=1000";
const FROM = "Example App <no-reply@example.test>";

for (const kind of DATABASES) {
  describe(`the mail sender (${kind})`, () => {
    let smtp: TestSmtpServer;
    let t: TestApp;
    before(async () => {
      smtp = await TestSmtpServer.start({ auth: { user: "mailer", pass: "s3cret-smtp-pass" } });
      t = await startTestApp(kind, { env: { SMTP_URL: smtp.url(FAST), MAIL_FROM: FROM } });
    });
    after(async () => {
      await t.close();
      await t.database.drop();
      await smtp.close();
    });

    it("delivers a mail written in a transaction: From, To, Subject, text and HTML parts, Date and the row's Message-ID", async () => {
      smtp.mails.length = 0;
      const mail = testMail("bob@example.test");
      const before = Date.now();
      await enqueue(t.app, mail);
      const [received] = await smtp.waitForMails(1);
      const [row] = (await outboxRows(t.app)).filter((r) => r.subject === mail.subject);
      assert.ok(received && row);
      assert.deepEqual(received.envelopeTo, ["bob@example.test"]);
      assert.deepEqual(received.to, ["bob@example.test"]);
      assert.equal(received.from, "no-reply@example.test");
      assert.equal(received.subject, mail.subject);
      assert.equal(received.text.trim(), mail.text);
      assert.equal(received.html, mail.html);
      assert.equal(received.messageId, row.message_id);
      assert.match(row.message_id, /^<[0-9a-f-]{36}@example\.test>$/);
      assert.ok(received.date && received.date.getTime() >= before - 1000 && received.date.getTime() <= Date.now());
      // Nothing about this server beyond what the mail itself says.
      const headers = [...received.headers.keys()].sort();
      assert.deepEqual(headers, ["content-type", "date", "from", "message-id", "mime-version", "subject", "to"]);
      await eventually(
        async () => (await outboxRows(t.app)).find((r) => r.id === row.id)?.status === "sent",
        "row sent",
      );
      const text = await t.app.metrics.text();
      assert.equal(sample(text, "gta_mails_total", { outcome: "queued" }), 1);
      assert.equal(sample(text, "gta_mails_total", { outcome: "sent" }), 1);
      assert.equal(sample(text, "gta_mail_delivery_delay_seconds_count"), 1);
      // The SMTP password is in SMTP_URL; no log line holds it.
      assert.ok(!t.logs.some((line) => line.includes("s3cret-smtp-pass")));
    });

    it("writing a mail takes milliseconds while the server hangs, and the mail arrives once it answers again", async () => {
      smtp.mails.length = 0;
      smtp.mode = "hang";
      const mail = testMail();
      const started = performance.now();
      await enqueue(t.app, mail);
      const took = performance.now() - started;
      assert.ok(took < 500, `enqueue took ${took} ms`);
      const retriedBefore = await mailCount(t.app, "retried");
      await eventually(async () => (await mailCount(t.app, "retried")) > retriedBefore, "a failed attempt");
      assert.equal(smtp.mails.length, 0);
      smtp.mode = "up";
      const received = await smtp.waitForMails(1);
      assert.equal(received.length, 1);
      assert.equal(received[0]!.subject, mail.subject);
      const row = (await outboxRows(t.app)).find((r) => r.subject === mail.subject)!;
      await eventually(async () => (await outboxRows(t.app)).find((r) => r.id === row.id)?.status === "sent", "sent");
      assert.ok((await outboxRows(t.app)).find((r) => r.id === row.id)!.attempts >= 2);
    });

    it("a server that takes DATA and never answers is a failure, retried: the mail is received once afterwards", async () => {
      smtp.mails.length = 0;
      smtp.mode = "stall";
      const mail = testMail();
      const retriedBefore = await mailCount(t.app, "retried");
      await enqueue(t.app, mail);
      await eventually(async () => (await mailCount(t.app, "retried")) > retriedBefore, "a stalled attempt");
      smtp.mode = "up";
      await smtp.waitForMails(1, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(
        smtp.mails.map((m) => m.subject),
        [mail.subject],
      );
    });

    it("after an outage every waiting mail is received exactly once, within seconds of the server coming back", async () => {
      smtp.mails.length = 0;
      await smtp.stop();
      const mails = Array.from({ length: 20 }, (_, i) => testMail(`user${i}@example.test`));
      const retriedBefore = await mailCount(t.app, "retried");
      const started = performance.now();
      await Promise.all(mails.map((mail) => enqueue(t.app, mail)));
      assert.ok(performance.now() - started < 2000, "20 mails written while the server is down");
      await eventually(async () => (await mailCount(t.app, "retried")) >= retriedBefore + 20, "every mail failed once");
      await smtp.restart();
      const back = performance.now();
      await smtp.waitForMails(20, 30_000);
      const delay = performance.now() - back;
      console.log(`# ${kind}: 20 mails delivered ${Math.round(delay)} ms after the SMTP server came back`);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(smtp.mails.map((m) => m.subject).sort(), mails.map((m) => m.subject).sort());
      assert.ok(delay < 10_000, `backlog took ${delay} ms`);
      const rows = (await outboxRows(t.app)).filter((r) => mails.some((m) => m.subject === r.subject));
      await eventually(
        async () => (await outboxRows(t.app)).filter((r) => r.status === "sent").length >= 20,
        "rows sent",
      );
      assert.equal(rows.length, 20);
    });

    it("a temporary refusal (451) is retried; a permanent one (550) marks the mail failed at once, counted and logged without its content", async () => {
      smtp.mails.length = 0;
      smtp.mode = "tempfail";
      const later = testMail("carol@example.test");
      await enqueue(t.app, later);
      await eventually(
        async () =>
          (await outboxRows(t.app)).find((r) => r.subject === later.subject)?.last_error?.includes("451") === true,
        "451 recorded",
      );
      const row = (await outboxRows(t.app)).find((r) => r.subject === later.subject)!;
      assert.equal(row.status, "queued");
      assert.match(row.last_error!, /^EENVELOPE 451 .*Try again later/);
      assert.ok(!row.last_error!.includes("carol@"), row.last_error!);

      smtp.mode = "reject";
      const refused = testMail("nobody@example.test");
      const failedBefore = await mailCount(t.app, "failed");
      await enqueue(t.app, refused);
      await eventually(
        async () => (await outboxRows(t.app)).find((r) => r.subject === refused.subject)?.status === "failed",
        "marked failed",
      );
      assert.equal(await mailCount(t.app, "failed"), failedBefore + 1);
      const failedRow = (await outboxRows(t.app)).find((r) => r.subject === refused.subject)!;
      assert.equal(failedRow.attempts, 1);
      const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.mailId === failedRow.id && l.level === 40);
      assert.equal(line?.msg, "mail refused for good by the SMTP server (5xx): marked failed");
      assert.match(line.error, /550/);
      assert.ok(!t.logs.some((l) => l.includes('level":40') && l.includes(refused.marker)));
      smtp.mode = "up";
      await smtp.waitForMails(1, 30_000);
      assert.deepEqual(
        smtp.mails.map((m) => m.subject),
        [later.subject],
      );
    });
  });
}
