// Kysely's migration guide types migrations as Kysely<any>: a step sees the database as it was when
// the step was written, not as today's schema.ts describes it.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { type Kysely, type Migration, sql } from "kysely";

/**
 * 0009: e-mail on accounts (issue 25). An address on the user, unique among verified addresses only
 * (an address someone typed but never verified blocks nobody); single-use tokens of resets and
 * verifications, stored as hashes; and the outbox every mail is written to in the transaction of
 * the change it reports. `ts` is the dialect's timestamp column type.
 */
export function emailAccounts(ts: string): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("users").addColumn("email", "text").execute();
      await db.schema.alterTable("users").addColumn("email_normalized", "text").execute();
      await db.schema.alterTable("users").addColumn("email_verified_at", sql.raw(ts)).execute();
      await db.schema
        .createIndex("users_verified_email_idx")
        .unique()
        .on("users")
        .column("email_normalized")
        .where(sql.ref("email_verified_at"), "is not", null)
        .execute();
      await db.schema
        .createTable("email_tokens")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
        .addColumn("purpose", "text", (c) => c.notNull())
        .addColumn("token_hash", "text", (c) => c.notNull().unique())
        .addColumn("email", "text", (c) => c.notNull())
        .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
        .addColumn("expires_at", sql.raw(ts), (c) => c.notNull())
        .addColumn("used_at", sql.raw(ts))
        .execute();
      await db.schema
        .createIndex("email_tokens_user_purpose_idx")
        .on("email_tokens")
        .columns(["user_id", "purpose"])
        .execute();
      await db.schema.createIndex("email_tokens_expires_at_idx").on("email_tokens").column("expires_at").execute();
      await db.schema
        .createTable("mail_outbox")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("recipient", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull())
        .addColumn("text_body", "text", (c) => c.notNull())
        .addColumn("html_body", "text", (c) => c.notNull())
        .addColumn("message_id", "text", (c) => c.notNull())
        .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
        .addColumn("next_attempt_at", sql.raw(ts), (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("locked_until", sql.raw(ts))
        .addColumn("sent_at", sql.raw(ts))
        .addColumn("last_error", "text")
        .execute();
      await db.schema
        .createIndex("mail_outbox_due_idx")
        .on("mail_outbox")
        .columns(["status", "next_attempt_at"])
        .execute();
      await db.schema.createIndex("mail_outbox_created_at_idx").on("mail_outbox").column("created_at").execute();
    },
  };
}
