// Kysely's migration guide types migrations as Kysely<any>: a step sees the database as it was when
// the step was written, not as today's schema.ts describes it.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { type Kysely, type Migration, sql } from "kysely";

/**
 * 0010: multi-factor sign-in (issue 26). Each session holds its assurance (AAL1 or AAL2), the
 * methods that proved it and whether a second factor is still owed; a refresh copies them from the
 * row and can never raise them. The factors: a user's TOTP secret (encrypted, with the last step
 * accepted, so that a code works once), recovery codes (hashes, each spent by one conditional
 * write), passkeys (WebAuthn credentials with their counter and backup flags) and WebAuthn
 * challenges (server-side, single use, short-lived). `ts` is the dialect's timestamp column type.
 */
export function multiFactor(ts: string): Migration {
  return {
    async up(db: Kysely<any>) {
      await addSessionAssurance(db);
      await createFactorTables(db, ts);
      await createPasskeyTables(db, ts);
    },
  };
}

/** The assurance columns of sessions. */
async function addSessionAssurance(db: Kysely<any>): Promise<void> {
  // 1 or 2. Sessions started before this migration were password sessions.
  await db.schema
    .alterTable("sessions")
    .addColumn("aal", "integer", (c) => c.notNull().defaultTo(1))
    .execute();
  // Space-separated methods (RFC 8176 names: pwd, otp, recovery, passkey, reset).
  await db.schema
    .alterTable("sessions")
    .addColumn("amr", "text", (c) => c.notNull().defaultTo("pwd"))
    .execute();
  // 1 while the session still owes its user's second factor (verifyMfa clears it).
  await db.schema
    .alterTable("sessions")
    .addColumn("mfa_pending", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}

/** TOTP and recovery codes. */
async function createFactorTables(db: Kysely<any>, ts: string): Promise<void> {
  await db.schema
    .createTable("mfa_totp")
    .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id").onDelete("cascade"))
    // The secret, encrypted (AES-256-GCM) under the key named in it.
    .addColumn("secret_enc", "text", (c) => c.notNull())
    .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
    // Null until confirmTotp: an unconfirmed enrollment is no second factor.
    .addColumn("confirmed_at", sql.raw(ts))
    // The last 30-second step a code was accepted for: a code is taken only for a later step.
    .addColumn("last_step", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable("mfa_recovery_codes")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("code_hash", "text", (c) => c.notNull().unique())
    .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
    .addColumn("used_at", sql.raw(ts))
    .execute();
  await db.schema.createIndex("mfa_recovery_codes_user_idx").on("mfa_recovery_codes").column("user_id").execute();
}

/** Passkeys and their challenges. */
async function createPasskeyTables(db: Kysely<any>, ts: string): Promise<void> {
  await db.schema
    .createTable("passkeys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    // The credential id (base64url) the authenticator names it by.
    .addColumn("credential_id", "text", (c) => c.notNull().unique())
    // The COSE public key, base64url.
    .addColumn("public_key", "text", (c) => c.notNull())
    .addColumn("counter", "bigint", (c) => c.notNull().defaultTo(0))
    // Comma-separated AuthenticatorTransport values the browser reported.
    .addColumn("transports", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("device_type", "text", (c) => c.notNull())
    .addColumn("backed_up", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
    .addColumn("last_used_at", sql.raw(ts))
    .execute();
  // The passkeys list pages through it in order (keyset), like every list.
  await db.schema
    .createIndex("passkeys_user_created_idx")
    .on("passkeys")
    .columns(["user_id", "created_at", "id"])
    .execute();
  await db.schema
    .createTable("webauthn_challenges")
    .addColumn("id", "text", (c) => c.primaryKey())
    // SHA-256 of the challenge (base64url): found by what the browser signed.
    .addColumn("challenge_hash", "text", (c) => c.notNull().unique())
    // registration, or authentication (a sign-in, or a passkey as the second factor).
    .addColumn("purpose", "text", (c) => c.notNull())
    // The user it was issued for; null for a discoverable sign-in.
    .addColumn("user_id", "text", (c) => c.references("users.id").onDelete("cascade"))
    // The session it was issued to (registration and second factor): only that session may finish it.
    .addColumn("session_id", "text")
    .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
    .addColumn("expires_at", sql.raw(ts), (c) => c.notNull())
    .addColumn("used_at", sql.raw(ts))
    .execute();
  await db.schema
    .createIndex("webauthn_challenges_expires_at_idx")
    .on("webauthn_challenges")
    .column("expires_at")
    .execute();
}
