import type { Kysely } from "kysely";

import type { Database } from "./db/schema.js";

/** One e-mail to one address, in plain text and HTML. */
export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  /** May carry a single-use link, so neither body is ever logged in production. */
  readonly text: string;
  readonly html: string;
}

/**
 * The port every feature sends mail through; the core holds one per app (src/mail/ builds it).
 * Mail is never sent while a request waits: `enqueue` writes it to the outbox through `db`, which
 * is the transaction of the change the mail reports, and a background sender delivers it later
 * with retries. A failing or hung SMTP server therefore never delays or fails a mutation.
 */
export interface Mailer {
  /** False in production without SMTP_URL: the fields that send mail refuse with EMAIL_NOT_CONFIGURED. */
  readonly configured: boolean;
  /** Writes `message` to the outbox in `db` (a transaction or the database), to be sent once. */
  enqueue(db: Kysely<Database>, message: MailMessage): Promise<void>;
  /**
   * Writes a row that is never sent, standing for a mail that is not sent (an unknown address, a
   * spent allowance): both answers then do the same work.
   */
  suppress(db: Kysely<Database>, message: MailMessage): Promise<void>;
}
