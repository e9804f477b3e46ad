import { ApolloServerErrorCode } from "@apollo/server/errors";
import { GraphQLError } from "graphql";

/**
 * Every `extensions.code` this service produces itself. Clients switch on these; the error tables
 * of docs/errors.md are checked against this object by a test.
 */
export const ErrorCode = {
  UNAUTHENTICATED: "UNAUTHENTICATED",
  FORBIDDEN: "FORBIDDEN",
  BAD_USER_INPUT: ApolloServerErrorCode.BAD_USER_INPUT,
  NOT_FOUND: "NOT_FOUND",
  FRESH_TOKEN_REQUIRED: "FRESH_TOKEN_REQUIRED",
  RATE_LIMITED: "RATE_LIMITED",
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  RESPONSE_TOO_LARGE: "RESPONSE_TOO_LARGE",
  INTERNAL_SERVER_ERROR: ApolloServerErrorCode.INTERNAL_SERVER_ERROR,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Codes produced by the HTTP and GraphQL layers before any resolver runs (Apollo Server's own,
 * imported from @apollo/server/errors, plus the one this service adds for bodies Fastify refuses). Documented next to {@link ErrorCode}.
 */
export const ProtocolErrorCode = {
  BAD_REQUEST: ApolloServerErrorCode.BAD_REQUEST,
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  GRAPHQL_PARSE_FAILED: ApolloServerErrorCode.GRAPHQL_PARSE_FAILED,
  GRAPHQL_VALIDATION_FAILED: ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED,
  PERSISTED_QUERY_NOT_SUPPORTED: ApolloServerErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
  /** With TRUSTED_DOCUMENTS: a document that is not in the manifest, from a caller without OPERATIONS_ANY (HTTP 400). */
  PERSISTED_QUERY_NOT_ALLOWED: "PERSISTED_QUERY_NOT_ALLOWED",
  OPERATION_RESOLUTION_FAILURE: ApolloServerErrorCode.OPERATION_RESOLUTION_FAILURE,
} as const;

/**
 * `extensions.reason` on every UNAUTHENTICATED and FORBIDDEN error: what a client should do next.
 * TOKEN_EXPIRED means refresh and retry; API_TOKEN_EXPIRED and API_TOKEN_REVOKED mean a new API
 * token; every other UNAUTHENTICATED reason means sign in again; a FORBIDDEN reason means the same
 * request will not succeed. docs/errors.md lists each one.
 */
export const ErrorReason = {
  /** A protected field without a token. */
  NOT_SIGNED_IN: "NOT_SIGNED_IN",
  /** login failed: one reason for an unknown username and a wrong password. */
  BAD_CREDENTIALS: "BAD_CREDENTIALS",
  /** 401: the access token expired. The only reason to refresh. */
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  /** 401: malformed, forged, of the wrong kind, or refused for any reason but its age. */
  TOKEN_INVALID: "TOKEN_INVALID",
  /** 401 (or 200 where the account behind a valid token is gone): the session was ended. */
  SESSION_ENDED: "SESSION_ENDED",
  /** refreshToken with an unknown, expired or spent refresh token, or one of an ended session. */
  REFRESH_TOKEN_INVALID: "REFRESH_TOKEN_INVALID",
  /** refreshToken without its argument, and the request carried no refresh-token cookie. */
  REFRESH_TOKEN_MISSING: "REFRESH_TOKEN_MISSING",
  /** 401: an API token past its expiresAt. No refresh: its owner creates a new one. */
  API_TOKEN_EXPIRED: "API_TOKEN_EXPIRED",
  /** 401: a revoked API token (revokeApiToken, revokeUserSessions, a disabled or deleted account). */
  API_TOKEN_REVOKED: "API_TOKEN_REVOKED",
  /** login with the right password to an account an ADMIN disabled (a wrong one is still BAD_CREDENTIALS). */
  ACCOUNT_DISABLED: "ACCOUNT_DISABLED",
  /** Signed in without the role the field needs. */
  ROLE: "ROLE",
  /** Signed in, but the post or session is someone else's. */
  OWNERSHIP: "OWNERSHIP",
  /** The refresh-token cookie was sent from a page whose origin is neither the server's nor in CORS_ORIGINS. */
  ORIGIN: "ORIGIN",
  /** An API token without the scope the field needs, or on a field only a session token may use. */
  SCOPE: "SCOPE",
  /** resetPassword with an unknown, expired, spent or voided reset token. */
  RESET_TOKEN_INVALID: "RESET_TOKEN_INVALID",
  /** verifyEmail with an unknown, expired or spent verification token, or an address verified by another account since. */
  VERIFICATION_TOKEN_INVALID: "VERIFICATION_TOKEN_INVALID",
  /** A field that sends mail, in production without SMTP_URL. */
  EMAIL_NOT_CONFIGURED: "EMAIL_NOT_CONFIGURED",
  /**
   * The session still owes its user's second factor (verifyMfa or verifyMfaWithPasskey), or the
   * field needs assurance AAL2 (step-up); resetPassword of an enrolled user without a valid mfaCode.
   */
  MFA_REQUIRED: "MFA_REQUIRED",
  /** A field of a role in MFA_REQUIRED_ROLES, for a user who has no second factor yet: enroll one first. */
  MFA_ENROLLMENT_REQUIRED: "MFA_ENROLLMENT_REQUIRED",
} as const;
export type ErrorReason = (typeof ErrorReason)[keyof typeof ErrorReason];

/** Base class: a GraphQL error whose code is always one of {@link ErrorCode}. */
export abstract class AppError extends GraphQLError {
  abstract readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions } });
  }
}

/** The reasons an UNAUTHENTICATED error in a 200 response may carry. */
export type UnauthenticatedReason =
  | typeof ErrorReason.NOT_SIGNED_IN
  | typeof ErrorReason.BAD_CREDENTIALS
  | typeof ErrorReason.REFRESH_TOKEN_INVALID
  | typeof ErrorReason.REFRESH_TOKEN_MISSING
  | typeof ErrorReason.SESSION_ENDED
  | typeof ErrorReason.ACCOUNT_DISABLED
  | typeof ErrorReason.RESET_TOKEN_INVALID
  | typeof ErrorReason.VERIFICATION_TOKEN_INVALID;

/** Not signed in where sign-in is required, wrong credentials or a refused refresh token. HTTP 200. */
export class UnauthenticatedError extends AppError {
  readonly code = ErrorCode.UNAUTHENTICATED;
  constructor(
    readonly reason: UnauthenticatedReason,
    message = "You must be signed in to do this.",
  ) {
    super(message, ErrorCode.UNAUTHENTICATED, { reason });
  }
}

/** The one message for an unknown username and a wrong password, so neither is revealed. */
export const INVALID_CREDENTIALS_MESSAGE = "Invalid username or password.";

/** The answer to the right password of a disabled account. */
export const ACCOUNT_DISABLED_MESSAGE = "This account is disabled. Ask an administrator to enable it.";

/** What a client reads of any error nobody expected (its details are logged, never sent in production). */
export const INTERNAL_ERROR_MESSAGE = "Internal server error.";

/** The one message for every rejected access token, whatever the reason. */
export const INVALID_TOKEN_MESSAGE = "The access token is invalid or has expired.";

/**
 * What a client is told of each 401: one message for every access-token reason, so a forgery learns
 * nothing, and messages written for scripts for an API token that expired or was revoked (a script
 * cannot refresh or sign in: its owner creates a new token).
 */
export const INVALID_TOKEN_MESSAGES: Readonly<Record<InvalidTokenReason, string>> = {
  TOKEN_EXPIRED: INVALID_TOKEN_MESSAGE,
  TOKEN_INVALID: INVALID_TOKEN_MESSAGE,
  SESSION_ENDED: INVALID_TOKEN_MESSAGE,
  API_TOKEN_EXPIRED: "The API token has expired. Create a new one (createApiToken) and use it instead.",
  API_TOKEN_REVOKED:
    "The API token was revoked (by its owner, an administrator, or with its owner's account) and will not work " +
    "again. Its owner can create a new one (createApiToken).",
};

/**
 * A token was sent and is unusable: the whole request is refused with HTTP 401 and the
 * RFC 6750 `WWW-Authenticate` challenge, so HTTP-level clients know to refresh or sign in again.
 * `message` replaces the reason's {@link INVALID_TOKEN_MESSAGES} entry where the header's shape
 * says more (a `Bearer undefined` sent before sign-in).
 */
export class InvalidTokenError extends AppError {
  readonly code = ErrorCode.UNAUTHENTICATED;
  constructor(
    readonly reason: InvalidTokenReason,
    message: string = INVALID_TOKEN_MESSAGES[reason],
  ) {
    super(message, ErrorCode.UNAUTHENTICATED, {
      reason,
      http: { status: 401, headers: new Map([["www-authenticate", bearerChallenge(reason)]]) },
    });
  }
}

/**
 * The reasons of a 401: refresh on TOKEN_EXPIRED, a new API token on API_TOKEN_EXPIRED and
 * API_TOKEN_REVOKED, sign in on the others.
 */
export type InvalidTokenReason =
  | typeof ErrorReason.TOKEN_EXPIRED
  | typeof ErrorReason.TOKEN_INVALID
  | typeof ErrorReason.SESSION_ENDED
  | typeof ErrorReason.API_TOKEN_EXPIRED
  | typeof ErrorReason.API_TOKEN_REVOKED;

/** RFC 6750 §3's challenge for a refused token, with the reason as its `error_description`. */
export function bearerChallenge(reason: InvalidTokenReason): string {
  return `Bearer error="invalid_token", error_description="${reason}"`;
}

/** Signed in but not allowed: a missing role or scope, someone else's resource, a foreign origin. HTTP 200. */
export class ForbiddenError extends AppError {
  readonly code = ErrorCode.FORBIDDEN;
  constructor(
    readonly reason:
      | typeof ErrorReason.ROLE
      | typeof ErrorReason.OWNERSHIP
      | typeof ErrorReason.ORIGIN
      | typeof ErrorReason.SCOPE
      | typeof ErrorReason.EMAIL_NOT_CONFIGURED
      | typeof ErrorReason.MFA_REQUIRED
      | typeof ErrorReason.MFA_ENROLLMENT_REQUIRED,
    message: string,
  ) {
    super(message, ErrorCode.FORBIDDEN, { reason });
  }
}

/** One broken input rule: the argument path (`input.username`), the rule's name and a sentence. */
export interface FieldProblem {
  field: string;
  rule: string;
  message: string;
}

/** Input breaks a rule; `extensions.fields` lists every failing field and rule. HTTP 200. */
export class BadUserInputError extends AppError {
  readonly code = ErrorCode.BAD_USER_INPUT;
  readonly fields: readonly FieldProblem[];
  constructor(fields: readonly FieldProblem[]) {
    const summary = fields.map((f) => `${f.field} ${f.message}`).join("; ");
    super(`Invalid input: ${summary}.`, ErrorCode.BAD_USER_INPUT, { fields });
    this.fields = fields;
  }
}

/** The post or user named does not exist. HTTP 200. */
export class NotFoundError extends AppError {
  readonly code = ErrorCode.NOT_FOUND;
  constructor(what: "Post" | "User" | "Session" | "ApiToken" | "Passkey", id: string) {
    super(`${what} ${JSON.stringify(id)} does not exist.`, ErrorCode.NOT_FOUND);
  }
}

/** A sensitive mutation needs a token minted by login or register, not by a refresh. HTTP 200. */
export class FreshTokenRequiredError extends AppError {
  readonly code = ErrorCode.FRESH_TOKEN_REQUIRED;
  constructor() {
    super(
      "This action needs a fresh sign-in: log in again and retry with the new access token.",
      ErrorCode.FRESH_TOKEN_REQUIRED,
    );
  }
}

/**
 * A limit was reached: too many failed logins, registrations from one address, or posts by one
 * user. `extensions.retryAfter` says how many seconds to wait. HTTP 200. `what` names the limit,
 * without a full stop (default "Too many failed attempts").
 */
export class RateLimitedError extends AppError {
  readonly code = ErrorCode.RATE_LIMITED;
  constructor(retryAfterSeconds: number, what = "Too many failed attempts") {
    super(`${what}. Try again in ${retryAfterSeconds} seconds.`, ErrorCode.RATE_LIMITED, {
      retryAfter: retryAfterSeconds,
    });
  }
}

/** What a client is told to wait before retrying after SERVICE_UNAVAILABLE (`Retry-After`, `retryAfter`). */
export const SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** The one message for a request that needed a database (or Redis) that did not answer in time. */
export const SERVICE_UNAVAILABLE_MESSAGE =
  "The service is temporarily unavailable: its database did not answer in time. Try again shortly.";

/**
 * A database or Redis the request needs did not answer within its timeout, or a queue the request
 * needs (the password checks') is full: `message` says which. HTTP 200 with the field's error, or
 * 503 with `Retry-After` when nothing ran ({@link serviceUnavailableStatus}).
 */
export class ServiceUnavailableError extends AppError {
  readonly code = ErrorCode.SERVICE_UNAVAILABLE;
  constructor(message = SERVICE_UNAVAILABLE_MESSAGE) {
    super(message, ErrorCode.SERVICE_UNAVAILABLE, {
      retryAfter: SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS,
    });
  }
}

/**
 * The one message for an operation refused by a query limit (depth, aliases, directives, tokens,
 * cost) in production: which limit, and its value, stay private so they cannot be probed.
 */
export const QUERY_TOO_COMPLEX_MESSAGE = "Query is too complex.";

/** The message of {@link ResponseTooLargeError}. */
export const RESPONSE_TOO_LARGE_MESSAGE =
  "The answer is larger than this server sends at once (RESPONSE_MAX_BYTES): ask for fewer items or fields.";

/**
 * The answer to an operation would take more than RESPONSE_MAX_BYTES of JSON, so none of it is
 * sent. HTTP 400: the client must ask for less (retrying the same operation gets the same answer).
 * The operation did run: a mutation's changes stay.
 */
export class ResponseTooLargeError extends AppError {
  readonly code = ErrorCode.RESPONSE_TOO_LARGE;
  constructor() {
    super(RESPONSE_TOO_LARGE_MESSAGE, ErrorCode.RESPONSE_TOO_LARGE, { http: { status: 400 } });
  }
}
