// Writing mail to an app's outbox the way a mutation does (in a transaction, through the app's
// mailer), and reading what operators see: the outbox rows and the mail metrics.
import { randomBytes } from "node:crypto";

import type { App } from "../../src/app.js";
import type { MailMessage } from "../../src/mailer.js";

/** A mail with a unique marker in its subject and both bodies (`marker`), to find it (or its absence) anywhere. */
export function testMail(to = "alice@example.test"): MailMessage & { marker: string } {
  const marker = `marker-${randomBytes(8).toString("hex")}`;
  return {
    marker,
    to,
    subject: `Reset your password ${marker}`,
    text: `Open https://app.example.test/reset-password#token=${marker} to choose a new password.`,
    html: `<p>Open <a href="https://app.example.test/reset-password#token=${marker}">this link</a>.</p>`,
  };
}

/** Enqueues `mail` through the app's mailer inside a transaction, as a mutation does; resolves when committed. */
export async function enqueue(app: App, mail: MailMessage): Promise<void> {
  await app.database.db.transaction().execute((trx) => app.mailer.enqueue(trx, mail));
}

export interface OutboxRow {
  id: string;
  status: string;
  recipient: string;
  subject: string;
  attempts: number;
  message_id: string;
  last_error: string | null;
  created_at: Date | string;
  next_attempt_at: Date | string;
  sent_at: Date | string | null;
}

/** Every row of the outbox, oldest first. */
export async function outboxRows(app: App): Promise<OutboxRow[]> {
  return await app.database.db
    .selectFrom("mail_outbox")
    .select([
      "id",
      "status",
      "recipient",
      "subject",
      "attempts",
      "message_id",
      "last_error",
      "created_at",
      "next_attempt_at",
      "sent_at",
    ])
    .orderBy("created_at")
    .orderBy("id")
    .execute();
}

/** The value of one sample in Prometheus' text format; undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const rendered = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(",");
  const prefix = rendered === "" ? `${name} ` : `${name}{${rendered}} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** `gta_mails_total{outcome}` of the app, now. */
export async function mailCount(app: App, outcome: string): Promise<number> {
  return sample(await app.metrics.text(), "gta_mails_total", { outcome }) ?? 0;
}

/** Polls `check` every 50 ms until it returns true; rejects after `timeoutMs` with `what`. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
