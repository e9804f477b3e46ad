import "reflect-metadata";

import { Field, ID, ObjectType } from "type-graphql";

import { Bounded } from "../graphql/query-cost.js";

/**
 * Every security event the audit log records. Stored as text; the list is closed, so clients may
 * switch on it.
 */
export const AuditEventType = {
  LOGIN_SUCCEEDED: "LOGIN_SUCCEEDED",
  LOGIN_FAILED: "LOGIN_FAILED",
  /** A login refused by the login throttle; coalesced per client IP, limit (and name tried, for USER_IP) per minute. */
  LOGIN_THROTTLED: "LOGIN_THROTTLED",
  REGISTERED: "REGISTERED",
  /** A registration refused by REGISTER_MAX_PER_IP; coalesced per client IP per minute. */
  REGISTRATION_THROTTLED: "REGISTRATION_THROTTLED",
  /** An operator created an account: `npm run cli -- users create` (by=CLI) or ADMIN_USERNAME at start. */
  USER_CREATED: "USER_CREATED",
  TOKEN_REFRESHED: "TOKEN_REFRESHED",
  REFRESH_TOKEN_REUSED: "REFRESH_TOKEN_REUSED",
  LOGGED_OUT: "LOGGED_OUT",
  SESSION_REVOKED: "SESSION_REVOKED",
  /** A new session of the user ended their least recently used one past SESSIONS_MAX_PER_USER. */
  SESSION_EVICTED: "SESSION_EVICTED",
  /** An ADMIN (revokeUserSessions) or an operator (`users revoke-sessions`, by=CLI) ended every session of a user. */
  SESSIONS_REVOKED_BY_ADMIN: "SESSIONS_REVOKED_BY_ADMIN",
  PASSWORD_CHANGED: "PASSWORD_CHANGED",
  ROLES_CHANGED: "ROLES_CHANGED",
  TOKEN_REJECTED: "TOKEN_REJECTED",
  /** A user created an API token (`detail`: its id, scopes and lifetime; never the token). */
  API_TOKEN_CREATED: "API_TOKEN_CREATED",
  /** A user revoked one of their API tokens (revokeApiToken). */
  API_TOKEN_REVOKED: "API_TOKEN_REVOKED",
  /** An ADMIN (setUserDisabled) or an operator (`users disable`, by=CLI) disabled an account, ending its sessions and API tokens. */
  ACCOUNT_DISABLED: "ACCOUNT_DISABLED",
  /** An ADMIN or an operator (`users enable`) enabled a disabled account. */
  ACCOUNT_ENABLED: "ACCOUNT_ENABLED",
  /** A user deleted their account (deleteAccount); the event keeps the username and id. */
  ACCOUNT_DELETED: "ACCOUNT_DELETED",
  /** A reset link was mailed (requestPasswordReset for a verified address) or printed (`users reset-link`, by=CLI). Requests for unknown addresses are not recorded per address. */
  PASSWORD_RESET_REQUESTED: "PASSWORD_RESET_REQUESTED",
  /** resetPassword set a new password and ended every session and API token of the user. */
  PASSWORD_RESET: "PASSWORD_RESET",
  /** verifyEmail verified an address (`detail`: whether it replaced another). */
  EMAIL_VERIFIED: "EMAIL_VERIFIED",
  /** changeEmail sent a verification to a new address (it replaces the old one once verified). */
  EMAIL_CHANGED: "EMAIL_CHANGED",
  /** A second factor took effect: confirmTotp, or a passkey registered (`detail.method`: totp or passkey). */
  MFA_ENROLLED: "MFA_ENROLLED",
  /** A session proved its second factor (`detail.method`: totp, recovery or passkey) and became AAL2. */
  MFA_VERIFIED: "MFA_VERIFIED",
  /** A wrong TOTP or recovery code, a refused passkey (`detail.reason`, e.g. COUNTER_REGRESSION), or a throttled attempt (`detail.reason`: THROTTLED, coalesced). */
  MFA_FAILED: "MFA_FAILED",
  /** disableTotp removed the user's TOTP factor and recovery codes. */
  MFA_DISABLED: "MFA_DISABLED",
  /** A recovery code was spent (`detail.remaining`). */
  RECOVERY_CODE_USED: "RECOVERY_CODE_USED",
  PASSKEY_ADDED: "PASSKEY_ADDED",
  PASSKEY_REMOVED: "PASSKEY_REMOVED",
  /** An ADMIN (or the CLI, by=CLI) removed every second factor of a user and ended their sessions. */
  MFA_RESET_BY_ADMIN: "MFA_RESET_BY_ADMIN",
  /** With TRUSTED_DOCUMENTS: a document refused (PERSISTED_QUERY_NOT_ALLOWED); coalesced per client IP and transport per minute. */
  DOCUMENT_REFUSED: "DOCUMENT_REFUSED",
} as const;
export type AuditEventType = (typeof AuditEventType)[keyof typeof AuditEventType];

/** Longest stored value of each free-text field: a client chooses them, so they are capped where they are stored. */
export const AUDIT_FIELD_LIMITS = { username: 64, ip: 64, userAgent: 512, detail: 512 } as const;

@ObjectType("AuditEvent", {
  description:
    "A security event: who it concerns, from where, and what happened, as far as known. Never holds a password, a token or a secret.",
})
export class AuditEvent {
  @Field(() => ID, { description: "Increasing in the order events were stored." })
  id!: string;

  @Field({ description: `What happened: one of ${Object.values(AuditEventType).join(", ")}.` })
  @Bounded(Math.max(...Object.values(AuditEventType).map((type) => type.length)))
  type!: string;

  @Field(() => ID, {
    nullable: true,
    description:
      "The account the event concerns, when known. For ROLES_CHANGED the user whose roles changed (`detail` says who changed them).",
  })
  userId!: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      "That account's username; for LOGIN_FAILED and LOGIN_THROTTLED the name that was tried, which may not exist.",
  })
  @Bounded(AUDIT_FIELD_LIMITS.username)
  username!: string | null;

  @Field(() => String, { nullable: true, description: "Client address of the request that caused the event." })
  @Bounded(AUDIT_FIELD_LIMITS.ip)
  ip!: string | null;

  @Field(() => String, {
    nullable: true,
    description: `User-Agent header of that request (at most ${AUDIT_FIELD_LIMITS.userAgent} characters).`,
  })
  @Bounded(AUDIT_FIELD_LIMITS.userAgent)
  userAgent!: string | null;

  @Field(() => ID, {
    nullable: true,
    description: "The session the event concerns: the one started, refreshed, revoked or ended, or the caller's own.",
  })
  sessionId!: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      "Space-separated key=value pairs with the rest, e.g. `reason=EXPIRED` for TOKEN_REJECTED or `scope=ALL ended=3` for LOGGED_OUT.",
  })
  @Bounded(AUDIT_FIELD_LIMITS.detail)
  detail!: string | null;

  @Field()
  at!: Date;
}
