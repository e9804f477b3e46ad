import { randomUUID } from "node:crypto";

import { type Kysely, type Selectable, sql } from "kysely";

import type { Database, Dialect, MailOutboxTable } from "../db/schema.js";
import { toDate } from "../db/schema.js";
import type { MailMessage } from "../mailer.js";

/** The host part of every Message-ID this service writes. */
export function messageIdDomain(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return address.split("@")[1]?.trim() || "localhost";
}

/** A row a sender has claimed: the mail, and the attempt this claim is (its `attempts` after the claim). */
export interface ClaimedMail {
  readonly id: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** With its angle brackets, the same on every attempt. */
  readonly messageId: string;
  readonly createdAt: Date;
  /** 1 on the first claim; a result is recorded only while the row still holds this claim. */
  readonly attempt: number;
}

/** Statuses whose rows the housekeeping deletes once old enough. */
export type Prunable = Extract<MailOutboxTable["status"], "sent" | "suppressed" | "failed">;

/**
 * The one owner of `mail_outbox`: writes a mail as a row (in the caller's transaction), and the
 * sender's claims, results and pruning. A claim is `locked_until` in the future and `attempts`
 * raised by one; every result is written only where `attempts` still equals the claim's, so a
 * sender whose claim lapsed (it hung, or another instance took the row over) writes nothing.
 */
export class OutboxStore {
  constructor(
    private readonly domain: string,
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /** Writes `message` as `status` at `now`, due at once, in `db` (the caller's transaction). */
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

  /**
   * Claims up to `limit` due rows (queued, next attempt reached, no live claim) until `leaseUntil`,
   * in one statement: on PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so concurrent
   * senders never pick the same one; on SQLite the statement is one write, which SQLite runs alone.
   */
  async claim(limit: number, now: Date, leaseUntil: Date): Promise<ClaimedMail[]> {
    const at = now.toISOString();
    const dueRows = this.db
      .selectFrom("mail_outbox")
      .select("id")
      .where("status", "=", "queued")
      .where("next_attempt_at", "<=", at)
      .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<", at)]));
    // A plain read first: most looks find nothing, and on SQLite an UPDATE takes the write lock even then.
    if ((await dueRows.limit(1).execute()).length === 0) return [];
    const due = dueRows
      .orderBy("next_attempt_at")
      .limit(limit)
      .$if(this.dialect === "postgres", (q) => q.forUpdate().skipLocked());
    const rows = await this.db
      .updateTable("mail_outbox")
      .set((eb) => ({ locked_until: leaseUntil.toISOString(), attempts: eb("attempts", "+", 1) }))
      // On PostgreSQL `id in (subquery … limit n for update skip locked)` may run the subquery more
      // than once and claim more than n rows; an array is computed once.
      .$if(this.dialect === "postgres", (q) => q.where(sql<boolean>`id = any(array(${due}))`))
      .$if(this.dialect === "sqlite", (q) => q.where("id", "in", due))
      // Again on the row itself: SQLite has no row locks, and this keeps the claim one conditional write.
      .where("status", "=", "queued")
      .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<", at)]))
      .returningAll()
      .execute();
    return rows.map(toClaimed);
  }

  /** Marks the claimed row sent; false when the claim had lapsed and another sender holds the row. */
  async markSent(mail: ClaimedMail, now: Date): Promise<boolean> {
    return this.settle(mail, { status: "sent", sent_at: now.toISOString(), locked_until: null, last_error: null });
  }

  /** Releases the claim with the transport's refusal, to be tried again at `nextAttemptAt`. */
  async retryLater(mail: ClaimedMail, nextAttemptAt: Date, error: string): Promise<boolean> {
    return this.settle(mail, { next_attempt_at: nextAttemptAt.toISOString(), locked_until: null, last_error: error });
  }

  /** Gives the row up: it is never tried again. */
  async markFailed(mail: ClaimedMail, error: string): Promise<boolean> {
    return this.settle(mail, { status: "failed", locked_until: null, last_error: error });
  }

  private async settle(
    mail: ClaimedMail,
    values: {
      status?: "sent" | "failed";
      sent_at?: string;
      next_attempt_at?: string;
      locked_until: null;
      last_error: string | null;
    },
  ): Promise<boolean> {
    const result = await this.db
      .updateTable("mail_outbox")
      .set(values)
      .where("id", "=", mail.id)
      .where("status", "=", "queued")
      .where("attempts", "=", mail.attempt)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Makes queued rows that wait on their backoff due at `now`, the soonest first, at most `limit`
   * (all by default): once the SMTP server answers again the backlog of an outage goes out at once
   * rather than over the next minutes. Returns how many.
   */
  async pullForward(now: Date, limit?: number): Promise<number> {
    const at = now.toISOString();
    const waiting = this.db
      .selectFrom("mail_outbox")
      .select("id")
      .where("status", "=", "queued")
      .where("next_attempt_at", ">", at)
      .orderBy("next_attempt_at")
      .$if(limit !== undefined, (q) => q.limit(limit!));
    const result = await this.db
      .updateTable("mail_outbox")
      .set({ next_attempt_at: at })
      .$if(this.dialect === "postgres", (q) => q.where(sql<boolean>`id = any(array(${waiting}))`))
      .$if(this.dialect === "sqlite", (q) => q.where("id", "in", waiting))
      .where("status", "=", "queued")
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** How many mails wait to be sent (queued), through the (status, next_attempt_at) index. */
  async countWaiting(): Promise<number> {
    const row = await this.db
      .selectFrom("mail_outbox")
      .select((eb) => eb.fn.countAll<number | string | bigint>().as("n"))
      .where("status", "=", "queued")
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Deletes up to `batch` rows of `statuses` written before `cutoff` (through the created_at index)
   * and returns how many: the housekeeping calls it until a batch comes back short.
   */
  async pruneBatch(statuses: readonly Prunable[], cutoff: Date, batch: number): Promise<number> {
    const ids = await this.db
      .selectFrom("mail_outbox")
      .select("id")
      .where("created_at", "<", cutoff.toISOString())
      .where("status", "in", statuses)
      .limit(batch)
      .execute();
    if (ids.length === 0) return 0;
    const result = await this.db
      .deleteFrom("mail_outbox")
      .where(
        "id",
        "in",
        ids.map((row) => row.id),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toClaimed(row: Selectable<MailOutboxTable>): ClaimedMail {
  return {
    id: row.id,
    to: row.recipient,
    subject: row.subject,
    text: row.text_body,
    html: row.html_body,
    messageId: row.message_id,
    createdAt: toDate(row.created_at),
    attempt: row.attempts,
  };
}
