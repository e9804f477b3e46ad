import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";

import type { Database, MailOutboxTable } from "../db/schema.js";
import type { MailMessage } from "../mailer.js";

/** The host part of every Message-ID this service writes. */
export function messageIdDomain(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return address.split("@")[1]?.trim() || "localhost";
}

/**
 * The one owner of `mail_outbox`: writes a mail as a row (in the caller's transaction), and the
 * sender's claims, results and pruning.
 */
export class OutboxStore {
  constructor(private readonly domain: string) {}

  /** Writes `message` as `status` at `now`, due at once. */
  async write(
    db: Kysely<Database>,
    message: MailMessage,
    status: Extract<MailOutboxTable["status"], "queued" | "suppressed">,
    now: Date,
  ): Promise<string> {
    const id = randomUUID();
    const at = now.toISOString();
    await db
      .insertInto("mail_outbox")
      .values({
        id,
        status,
        recipient: message.to,
        subject: message.subject,
        text_body: message.text,
        html_body: message.html,
        message_id: `<${id}@${this.domain}>`,
        created_at: at,
        next_attempt_at: at,
        locked_until: null,
        sent_at: null,
        last_error: null,
      })
      .execute();
    return id;
  }
}
