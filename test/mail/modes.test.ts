// Where mail goes in each mode: development without SMTP_URL writes it to the log (with its link)
// and to DATA_DIR/mail (private); production with SMTP_URL never logs a body, even at trace;
// production without SMTP_URL sends nothing and says so once at start.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { simpleParser } from "mailparser";

import { startTestApp, type TestApp } from "../helpers/app.js";
import { enqueue, eventually, mailCount, outboxRows, testMail } from "../helpers/outbox.js";
import { TestSmtpServer } from "../helpers/smtp.js";

describe("development without SMTP_URL", () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp("sqlite", {
      env: { NODE_ENV: "development", LOG_LEVEL: "info", MAIL_FROM: "Dev <dev@example.test>" },
    });
  });
  after(async () => {
    await t.close();
    await t.database.drop();
  });

  it("writes each mail to the log at info with its text, and as an .eml file to DATA_DIR/mail (0600 in a 0700 folder)", async () => {
    const mail = testMail("dave@example.test");
    await enqueue(t.app, mail);
    await eventually(() => t.logs.some((l) => l.includes(mail.marker)), "the mail's log line");
    const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.mail?.subject === mail.subject);
    assert.equal(line.level, 30);
    assert.equal(line.mail.to, "dave@example.test");
    assert.equal(line.mail.text, mail.text);
    const [row] = await outboxRows(t.app);
    assert.equal(line.mail.id, row!.id);
    await eventually(async () => (await outboxRows(t.app))[0]!.status === "sent", "row sent");
    assert.equal(await mailCount(t.app, "sent"), 1);

    const folder = join(t.database.dataDir, "mail");
    assert.equal(statSync(folder).mode & 0o777, 0o700);
    const files = readdirSync(folder);
    assert.deepEqual(files, [line.file.split("/").pop()]);
    assert.match(files[0]!, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-[0-9a-f-]{36}\.eml$/);
    const file = join(folder, files[0]!);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const parsed = await simpleParser(readFileSync(file));
    assert.equal(parsed.subject, mail.subject);
    assert.equal(parsed.text?.trim(), mail.text);
    assert.equal(parsed.html, mail.html);
    assert.equal(parsed.messageId, row!.message_id);
    assert.equal(parsed.from?.value[0]?.address, "dev@example.test");
    assert.ok(parsed.date instanceof Date);
  });
});

describe("production with SMTP_URL at LOG_LEVEL=trace", () => {
  let smtp: TestSmtpServer;
  let t: TestApp;
  before(async () => {
    smtp = await TestSmtpServer.start({ auth: { user: "prod", pass: "smtp-password-never-logged" } });
    t = await startTestApp("sqlite", {
      env: {
        NODE_ENV: "production",
        LOG_LEVEL: "trace",
        SMTP_URL: smtp.url("greetingTimeout=1000&socketTimeout=1000"),
      },
    });
  });
  after(async () => {
    await t.close();
    await t.database.drop();
    await smtp.close();
  });

  it("logs no body, subject, address or SMTP password in any line, through a delivery, a retry and a refusal", async () => {
    const delivered = testMail("erin@example.test");
    await enqueue(t.app, delivered);
    await smtp.waitForMails(1);
    smtp.mode = "tempfail";
    const retried = testMail("frank@example.test");
    await enqueue(t.app, retried);
    await eventually(async () => (await mailCount(t.app, "retried")) >= 1, "a retry");
    smtp.mode = "reject";
    const refused = testMail("grace@example.test");
    await enqueue(t.app, refused);
    await eventually(async () => (await mailCount(t.app, "failed")) === 1, "a refusal");
    await eventually(() => t.logs.some((l) => l.includes("mail sent")), "the sent line");
    for (const line of t.logs) {
      for (const secret of [
        delivered.marker,
        retried.marker,
        refused.marker,
        "erin@",
        "frank@",
        "grace@",
        "smtp-password-never-logged",
      ]) {
        assert.ok(!line.includes(secret), `${secret} in ${line}`);
      }
    }
    assert.ok(t.logs.some((l) => l.includes('"toDomain":"example.test"')));
    assert.ok(t.logs.some((l) => l.includes(`"smtp":"smtp://127.0.0.1:${smtp.port}"`)));
  });
});

describe("production without SMTP_URL", () => {
  const t = { current: undefined as TestApp | undefined };
  after(async () => {
    await t.current?.close();
    await t.current?.database.drop();
  });

  it("logs one warning at start naming EMAIL_NOT_CONFIGURED, and sends nothing", async () => {
    t.current = await startTestApp("sqlite", { env: { NODE_ENV: "production" } });
    assert.equal(t.current.app.mailer.configured, false);
    const warnings = t.current.logs.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && /SMTP_URL/.test(l.msg));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].msg, /reason EMAIL_NOT_CONFIGURED, until SMTP_URL is set$/);
    await enqueue(t.current.app, testMail());
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await outboxRows(t.current.app))[0]!.status, "queued");
    assert.equal(await mailCount(t.current.app, "sent"), 0);
  });
});

describe("stopping while the SMTP server hangs", () => {
  it("takes a few seconds, not the server's timeouts, and leaves the mail due again with its failure recorded", async () => {
    const smtp = await TestSmtpServer.start();
    smtp.mode = "hang";
    // The default timeouts (10 s for the greeting): the delivery is still waiting when the app stops.
    const first = await startTestApp("sqlite", { env: { SMTP_URL: smtp.url() } });
    try {
      await enqueue(first.app, testMail());
      await eventually(() => smtp.connections > 0, "the sender connected");
      const started = performance.now();
      await first.close();
      const took = performance.now() - started;
      assert.ok(took < 8000, `stopping took ${took} ms`);
      // Production without SMTP_URL runs no sender: the row is read as the stop left it.
      const after = await startTestApp("sqlite", { database: first.database, env: { NODE_ENV: "production" } });
      const [row] = await outboxRows(after.app);
      await after.close();
      assert.equal(row!.status, "queued");
      assert.equal(row!.attempts, 1);
      assert.ok(row!.last_error);
    } finally {
      await first.database.drop();
      await smtp.close();
    }
  });
});
