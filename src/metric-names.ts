// The names and label values of the service's metrics: closed lists, so that a label never takes a
// value a client chose. metrics.ts defines the metrics on them; this module imports nothing.

/** The common prefix of every metric this service defines (process metrics included). */
export const METRICS_PREFIX = "gta_";

/** The path the metrics listener serves; anything else there is a 404. */
export const METRICS_PATH = "/metrics";

export const LOGIN_OUTCOMES = ["succeeded", "failed", "throttled", "disabled"] as const;
export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];

export const REFRESH_OUTCOMES = ["rotated", "reuse_interval", "reuse_detected", "invalid", "missing"] as const;
export type RefreshOutcome = (typeof REFRESH_OUTCOMES)[number];

/** Each rate limit, named by the variable that sets it. */
export const RATE_LIMITS = [
  "LOGIN_MAX_FAILURES_PER_USER_IP",
  "LOGIN_MAX_FAILURES_PER_IP",
  "REGISTER_MAX_PER_IP",
  "CREATE_POST_MAX_PER_USER",
  "UPDATE_POST_MAX_PER_USER",
  "LOGIN_MAX_PER_USER",
  "REFRESH_MAX_PER_USER",
  "WRITES_MAX_PER_USER",
  "EMAIL_REQUESTS_MAX_PER_IP",
  // Issue 26, wrong second-factor codes: per sign-in challenge (the session) and per account.
  "MFA_FAILURES_PER_CHALLENGE",
  "MFA_FAILURES_PER_USER",
  // startPasskeySignIn is public and writes a challenge row.
  "PASSKEY_CHALLENGES_MAX_PER_IP",
  // Issue 27, POST /oauth/introspect: per calling API token per minute.
  "INTROSPECTION_MAX_PER_TOKEN",
] as const;
export type RateLimitName = (typeof RATE_LIMITS)[number];

/**
 * Every budget a client can run into (docs/limits.md), named by the variable that sets it or, for a
 * fixed limit, by its constant. Counted by `gta_limit_refusals_total{limit}` each time one refuses.
 * A new limit adds its name here and its row to docs/limits.md (test/readme.test.ts checks).
 */
export const LIMITS = [
  "JSON_MAX_NESTING",
  // Issue 22, GraphQL operations: the query limits and the size of an answer.
  "QUERY_MAX_DEPTH",
  "QUERY_MAX_ALIASES",
  "QUERY_MAX_DIRECTIVES",
  "QUERY_MAX_TOKENS",
  "QUERY_MAX_COST",
  "QUERY_MAX_COST_IN_FLIGHT",
  "RESPONSE_MAX_BYTES",
  // Lists (graphql/pagination.ts): a `first` or an `offset` over its cap.
  "FIRST_MAX",
  "OFFSET_MAX",
  // Issue 22, HTTP connections and requests (src/http/connections.ts, src/http/request-limits.ts).
  "BODY_LIMIT_BYTES",
  "HTTP_HEADERS_TIMEOUT",
  "HTTP_REQUEST_TIMEOUT",
  "HTTP_MAX_CONNECTIONS",
  "HTTP_MAX_BODY_BYTES_IN_FLIGHT",
  // WebSocket connections and subscriptions (src/http/ws/, graphql/pub-sub.ts).
  "WS_MAX_CONNECTIONS",
  "WS_MAX_CONNECTIONS_PER_IP",
  "WS_MAX_ANONYMOUS_CONNECTIONS",
  "WS_ANONYMOUS_IDLE_TIMEOUT",
  "WS_MAX_SUBSCRIPTIONS",
  "WS_MAX_SUBSCRIPTIONS_PER_IP",
  "WS_MAX_ANONYMOUS_SUBSCRIPTIONS",
  "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
  "WS_MAX_BUFFERED_BYTES",
  "WS_MAX_RENEWALS_PER_MINUTE",
  "SUBSCRIPTION_MAX_COST",
  "SUBSCRIPTION_MAX_QUEUED_EVENTS",
  // Issue 28, fan-out: published events waiting for their turn on the bus (src/graphql/pub-sub.ts).
  "SUBSCRIPTION_MAX_PENDING_EVENTS",
  // Issue 25, e-mail: the allowance of mails to one address (further requests send nothing).
  "EMAIL_MAX_PER_ADDRESS",
  // Issue 26, multi-factor: passkeys per user, the size of a WebAuthn response, live challenges per session.
  "PASSKEYS_MAX_PER_USER",
  "WEBAUTHN_RESPONSE_MAX_BYTES",
  // Issue 27, POST /oauth/introspect: its form body.
  "INTROSPECTION_BODY_MAX_BYTES",
  // Issue 28, password checks waiting for an argon2 thread (src/users/passwords.ts).
  "PASSWORD_QUEUE_MAX",
] as const;
export type LimitName = (typeof LIMITS)[number];

/** `unknown`: a document that does not parse, or names no operation to run. */
export const OPERATION_TYPES = ["query", "mutation", "subscription", "unknown"] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];
export const OPERATION_OUTCOMES = ["ok", "error"] as const;
export type OperationOutcome = (typeof OPERATION_OUTCOMES)[number];

/** What happened to a mail of the outbox: written, written but never to be sent, sent, failed once (retried later), given up. */
export const MAIL_OUTCOMES = ["queued", "suppressed", "sent", "retried", "failed"] as const;
export type MailOutcome = (typeof MAIL_OUTCOMES)[number];

/** The steps of the e-mail flows (accounts and e-mail), each counted once when it happens. */
export const EMAIL_STEPS = [
  "reset_requested",
  "reset_completed",
  "reset_token_invalid",
  "verification_requested",
  "verified",
  "verification_token_invalid",
  "email_changed",
] as const;
export type EmailStep = (typeof EMAIL_STEPS)[number];

/** The second factors, as the MFA metrics label them. */
/**
 * With TRUSTED_DOCUMENTS, what became of a request's document: trusted (in the manifest), arbitrary
 * (not in it, sent by an API token with OPERATIONS_ANY), refused (PERSISTED_QUERY_NOT_ALLOWED).
 */
export const DOCUMENT_KINDS = ["trusted", "arbitrary", "refused"] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

/**
 * POST /oauth/introspect by result: active, inactive (`{"active":false}`), unauthorized (no valid
 * API token), forbidden (a token without INTROSPECT), rate_limited, bad_request (no `token` or two,
 * a body over 8 KiB or not a form).
 */
export const INTROSPECTION_RESULTS = [
  "active",
  "inactive",
  "unauthorized",
  "forbidden",
  "rate_limited",
  "bad_request",
  "unavailable",
] as const;
export type IntrospectionResult = (typeof INTROSPECTION_RESULTS)[number];

/**
 * What the compiled lane did with a POST to /graphql (GRAPHQL_COMPILED_LANE): answered it (served),
 * or handed it to Apollo unchanged (handed_over: not the plain case, an unknown document, a refusal).
 */
export const LANE_RESULTS = ["served", "handed_over"] as const;
export type LaneResult = (typeof LANE_RESULTS)[number];

export const MFA_METHODS = ["totp", "recovery", "passkey"] as const;
export type MfaMethod = (typeof MFA_METHODS)[number];

/** What happened in a multi-factor step: a factor added or removed, a proof accepted, refused or throttled. */
export const MFA_OUTCOMES = ["enrolled", "verified", "failed", "throttled", "removed"] as const;
export type MfaOutcome = (typeof MFA_OUTCOMES)[number];
