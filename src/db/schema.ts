import type { ColumnType, Generated } from "kysely";

/** Written as an ISO string; read back as a Date (PostgreSQL) or the same string (SQLite). */
export type Timestamp = ColumnType<Date | string, string, string>;

export interface UsersTable {
  id: string;
  username: string;
  /** Lower-cased username; its unique index makes names unique without regard to case. */
  username_normalized: string;
  password_hash: string;
  /** JSON array of role names, e.g. `["USER","ADMIN"]`. */
  roles: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** When the roles last changed; instances re-read roles of users changed within a token lifetime. */
  roles_changed_at: Timestamp | null;
  /** Set while an ADMIN has the account disabled (setUserDisabled): it cannot sign in. */
  disabled_at: Timestamp | null;
  /** The account's address as typed; null without one. A changed address waits in email_tokens until verified. */
  email: string | null;
  /** Lower-cased `email`; unique among verified addresses (users_verified_email_idx). */
  email_normalized: string | null;
  /** When `email` was verified; null while it is not. Sign-in and resets by address need it. */
  email_verified_at: Timestamp | null;
}

export interface PostsTable {
  id: string;
  author_id: string;
  title: string;
  body: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  /** The absolute end of the session (JWT_REFRESH_TOKEN_EXPIRES after it began). */
  expires_at: Timestamp;
  user_agent: string | null;
  ip: string | null;
  revoked_at: Timestamp | null;
  revoked_reason: string | null;
  /**
   * 32 random bytes (base64url) that each refresh token's successor is derived from with an HMAC,
   * so the reuse interval can hand the same successor out again; null for sessions started before
   * migration 0004 (strict single use).
   */
  chain_key: string | null;
  /** 1 or 2: the session's authenticator assurance level (migration 0010). */
  aal: Generated<number>;
  /** Space-separated methods that proved it: pwd, otp, recovery, passkey, reset. */
  amr: Generated<string>;
  /** 1 while the session still owes its user's second factor; only me, verifyMfa, verifyMfaWithPasskey, logout and refreshToken work. */
  mfa_pending: Generated<number>;
}

/** One refresh token of a session's chain. Only the SHA-256 of the token is stored. */
export interface RefreshTokensTable {
  id: string;
  session_id: string;
  token_hash: string;
  created_at: Timestamp;
  /** Set when the token was exchanged; presenting it again afterwards is reuse. */
  rotated_at: Timestamp | null;
}

/** One security event (see `src/audit/`). Never holds a password, a token or a secret. */
export interface AuditEventsTable {
  /** Assigned by the database, increasing; a bigint that PostgreSQL returns as a string. */
  id: Generated<number | string>;
  type: string;
  user_id: string | null;
  username: string | null;
  ip: string | null;
  user_agent: string | null;
  session_id: string | null;
  /** `key=value` pairs saying what the event was about, e.g. `reason=EXPIRED`. */
  detail: string | null;
  at: Timestamp;
}

/** One scoped API token (see `src/api-tokens/`). Only the SHA-256 of its secret is stored. */
export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  /** JSON array of scope names, e.g. `["POSTS_WRITE","PROFILE_READ"]`. */
  scopes: string;
  secret_hash: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  /** Written coarsely (at most every few minutes per instance), never once per request. */
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
  revoked_reason: string | null;
}

/**
 * Credentials ended by deleting their account, whose rows went with it: the revocation sync reads
 * them here, so every instance refuses their tokens within a second. Rows older than a day are
 * pruned (no access token or cached API token lookup lives that long).
 */
export interface RevokedCredentialsTable {
  /** A session id or an API token id. */
  id: string;
  kind: "session" | "api_token";
  revoked_at: Timestamp;
}

/** A single-use link's token (a reset or a verification). Only the SHA-256 of the token is stored. */
export interface EmailTokensTable {
  id: string;
  user_id: string;
  purpose: "password_reset" | "email_verification";
  token_hash: string;
  /** The address the link was sent to: for a verification, the address it verifies. */
  email: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  /** Set by the one conditional write that spends the token (or voids it). */
  used_at: Timestamp | null;
}

/**
 * One mail, written in the transaction of the change it reports and sent in the background.
 * `suppressed` rows are never sent: they stand for a mail that is not sent (an unknown address, a
 * spent per-address allowance), so that both answers do the same work.
 */
export interface MailOutboxTable {
  id: string;
  status: "queued" | "sent" | "failed" | "suppressed";
  recipient: string;
  subject: string;
  text_body: string;
  html_body: string;
  /** The Message-ID header, fixed when the row is written so that a retry sends the same one. */
  message_id: string;
  created_at: Timestamp;
  /** When the sender may next try it (backoff after each failure). */
  next_attempt_at: Timestamp;
  attempts: Generated<number>;
  /** A sender's claim: no other sender takes the row before then (a crashed sender's claim lapses). */
  locked_until: Timestamp | null;
  sent_at: Timestamp | null;
  /** The transport's last refusal, without the message (an SMTP reply code and text). */
  last_error: string | null;
}

export interface Database {
  users: UsersTable;
  posts: PostsTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  audit_events: AuditEventsTable;
  api_tokens: ApiTokensTable;
  revoked_credentials: RevokedCredentialsTable;
  email_tokens: EmailTokensTable;
  mail_outbox: MailOutboxTable;
  mfa_totp: MfaTotpTable;
  mfa_recovery_codes: MfaRecoveryCodesTable;
  passkeys: PasskeysTable;
  webauthn_challenges: WebauthnChallengesTable;
}

/** A user's TOTP factor (one per user): unconfirmed until confirmTotp, then a second factor. */
export interface MfaTotpTable {
  user_id: string;
  /** The secret, encrypted at rest (AES-256-GCM), with the id of the key it was encrypted under. */
  secret_enc: string;
  created_at: Timestamp;
  confirmed_at: Timestamp | null;
  /** The last 30-second step a code was accepted for; raised by one conditional write per code. */
  last_step: Generated<number | string>;
}

/** One recovery code: only its hash is stored; spent by one conditional write. */
export interface MfaRecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  created_at: Timestamp;
  used_at: Timestamp | null;
}

/** A WebAuthn credential (passkey) of a user. */
export interface PasskeysTable {
  id: string;
  user_id: string;
  /** base64url credential id. */
  credential_id: string;
  /** base64url COSE public key. */
  public_key: string;
  /** The authenticator's signature counter (0 for those that keep none); never allowed to go backwards. */
  counter: Generated<number | string>;
  /** Comma-separated AuthenticatorTransport values. */
  transports: Generated<string>;
  /** singleDevice or multiDevice (backup eligible). */
  device_type: string;
  /** 1 when the authenticator reports it backed up. */
  backed_up: Generated<number>;
  name: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
}

/** A WebAuthn challenge: stored server-side (as a hash), single use, short-lived. */
export interface WebauthnChallengesTable {
  id: string;
  challenge_hash: string;
  purpose: "registration" | "authentication";
  user_id: string | null;
  session_id: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  used_at: Timestamp | null;
}

/** Both drivers' timestamp values as a Date. */
export function toDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}

/** Which database a handle talks to. */
export type Dialect = "sqlite" | "postgres";
