// The groups of settings config.ts declares, each a zod object (or, for settings that sit at the
// top of the config, a shape to spread) of variables with their parser, default and description.
// Settings whose defaults another module owns take them through `owned`, asked only when unset.
import { existsSync } from "node:fs";

import { z } from "zod";

import {
  checkedText,
  count,
  countOrOff,
  group,
  list,
  matching,
  milliseconds,
  optionalMilliseconds,
  optionalText,
  port,
  seconds,
  text,
  variable,
} from "./env-schema.js";

export const DEFAULT_ISSUER = "graphql-token-auth";
export const DEFAULT_AUDIENCE = "graphql-token-auth-api";

/** The longest any timeout setting may be. */
export const MAX_TIMEOUT_MS = 600_000;

/** A default another module owns, by the setting's key in its group. */
export type Owned = (key: string) => number;

/** The defaults of a group of settings another module owns, by their keys in the config. */
export type Defaults<G extends (owned: Owned) => z.ZodType> = {
  readonly [K in keyof z.output<ReturnType<G>>]-?: number;
};

/** DATABASE_URL and DATABASE_SCHEMA: which database, PostgreSQL's schema. */
export const databaseSettings = () => ({
  databaseUrl: variable(
    "DATABASE_URL",
    matching(
      /^postgres(ql)?:\/\//,
      "must be a postgres:// or postgresql:// URL (leave it unset for SQLite in DATA_DIR)",
    ),
    "postgres://… selects PostgreSQL; unset: SQLite in DATA_DIR",
  ),
  databaseSchema: variable(
    "DATABASE_SCHEMA",
    matching(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case PostgreSQL identifier (letters, digits, underscore)"),
    "PostgreSQL: the schema to use instead of public",
  ),
});

/**
 * JWT_*, REFRESH_TOKEN_REUSE_INTERVAL and REFRESH_TOKEN_RETENTION: the signing keys, the tokens' lifetimes, issuer and
 * audience. `secretRule` refuses a weak secret; `path` resolves a file name against the working folder.
 */
export const jwtSettings = (secretRule: (value: string) => string | undefined, path: (p: string) => string) =>
  z.object({
    secretKey: variable("JWT_SECRET_KEY", checkedText(secretRule), "HS256's secret; unset: generated"),
    previousSecretKeys: variable(
      "JWT_PREVIOUS_SECRET_KEYS",
      list((secret) => {
        const weak = secretRule(secret);
        return weak && `has a secret that ${weak}`;
      }),
      "HS256: older secrets that still verify",
    ),
    algorithm: variable(
      "JWT_ALGORITHM",
      z.enum(["HS256", "RS256", "ES256"], { message: "must be HS256, RS256 or ES256" }).default("HS256"),
      "the signing algorithm",
    ),
    privateKeyFile: variable(
      "JWT_PRIVATE_KEY_FILE",
      optionalText()
        .refine((v) => v === undefined || existsSync(v), "must name an existing PEM file")
        .transform((v) => (v === undefined ? undefined : path(v))),
      "RS256/ES256: the signing key's PEM file; unset: generated",
    ),
    previousPublicKeyFiles: variable(
      "JWT_PREVIOUS_PUBLIC_KEY_FILES",
      list()
        .refine((files) => files.every((f) => existsSync(f)), "must name existing PEM files")
        .transform((files) => files.map(path)),
      "RS256/ES256: older public keys that still verify",
    ),
    accessTokenTtlSeconds: variable("JWT_ACCESS_TOKEN_EXPIRES", seconds("15m"), "an access token's lifetime"),
    refreshTokenTtlSeconds: variable("JWT_REFRESH_TOKEN_EXPIRES", seconds("30d"), "a session's lifetime"),
    refreshTokenReuseIntervalMs: variable(
      "REFRESH_TOKEN_REUSE_INTERVAL",
      milliseconds("10s", 300_000, true),
      "how long a rotated refresh token still returns the current one",
    ),
    refreshTokenRetentionSeconds: variable(
      "REFRESH_TOKEN_RETENTION",
      seconds("7d"),
      "how long a spent refresh token is kept for reuse detection",
    ),
    issuer: variable("JWT_ISSUER", text(DEFAULT_ISSUER), "every token's iss"),
    audience: variable("JWT_AUDIENCE", text(DEFAULT_AUDIENCE), "every token's aud"),
  });

/** ADMIN_USERNAME and ADMIN_PASSWORD: an ADMIN ensured at start, when both are set. */
export const adminSettings = (
  usernameRule: (value: string) => string | undefined,
  passwordRule: (value: string) => string | undefined,
) =>
  z
    .object({
      username: variable("ADMIN_USERNAME", checkedText(usernameRule), "an ADMIN ensured at start"),
      password: variable("ADMIN_PASSWORD", checkedText(passwordRule), "its password, if it is created"),
    })
    .transform(({ username, password }) =>
      username !== undefined && password !== undefined ? { username, password } : undefined,
    );

/** LOGIN_MAX_FAILURES_* and LOGIN_THROTTLE_WINDOW: the login throttle. */
export const loginThrottleSettings = () =>
  z.object({
    maxFailuresPerUserIp: variable("LOGIN_MAX_FAILURES_PER_USER_IP", count(5), "failed logins per user and IP"),
    maxFailuresPerIp: variable("LOGIN_MAX_FAILURES_PER_IP", count(100), "failed logins per IP"),
    windowSeconds: variable("LOGIN_THROTTLE_WINDOW", seconds("15m"), "the login throttle's window"),
  });

/** The login throttle, and PASSWORD_QUEUE_MAX (its default from users/passwords.ts). */
export const signInSettings = (passwordQueueMax: () => number) => ({
  loginThrottle: loginThrottleSettings(),
  passwordQueueMax: variable(
    "PASSWORD_QUEUE_MAX",
    count(passwordQueueMax),
    "password checks waiting for a thread; past it SERVICE_UNAVAILABLE",
  ),
});

/** REDIS_URL and REDIS_KEY_PREFIX: where the rate limits count when not in the database. */
export const redisSettings = () => ({
  redisUrl: variable(
    "REDIS_URL",
    matching(
      /^rediss?:\/\/[^\s]+$/,
      "must be a redis:// or rediss:// URL (leave it unset to keep the rate limits' counters in the database)",
    ),
    "the rate limits' counters in Redis; unset: in the database",
  ),
  redisKeyPrefix: variable(
    "REDIS_KEY_PREFIX",
    z
      .string()
      .default("graphql-token-auth:")
      .refine((v) => /^[A-Za-z0-9_.:-]{0,64}$/.test(v), "must be at most 64 characters of A-Z a-z 0-9 _ . : -"),
    "prepended to every Redis key",
  ),
});

/** REGISTER_MAX_PER_IP and CREATE_POST_MAX_PER_USER: the flood limits. */
export const floodLimitSettings = () =>
  z.object({
    registrationsPerIpPerHour: variable("REGISTER_MAX_PER_IP", countOrOff(30), "registrations per IP per hour"),
    postsPerUserPerHour: variable("CREATE_POST_MAX_PER_USER", countOrOff(60), "posts per user per hour"),
  });

/** *_MAX_PER_USER and SESSIONS_MAX_PER_USER: what one account may do per hour, and hold at once. */
export const userBudgetSettings = () =>
  z.object({
    postUpdatesPerHour: variable("UPDATE_POST_MAX_PER_USER", countOrOff(120), "updatePost per user per hour"),
    loginsPerHour: variable("LOGIN_MAX_PER_USER", countOrOff(60), "successful logins per account per hour"),
    refreshesPerHour: variable("REFRESH_MAX_PER_USER", countOrOff(600), "refreshToken per user per hour"),
    writesPerHour: variable("WRITES_MAX_PER_USER", countOrOff(600), "other signed-in writes per user per hour"),
    maxSessions: variable("SESSIONS_MAX_PER_USER", count(20), "live sessions per user"),
  });

/** METRICS_HOST and METRICS_PORT: the metrics listener, apart from the public port. */
export const metricsSettings = () =>
  z.object({
    host: variable("METRICS_HOST", text("127.0.0.1"), "the metrics listener's address"),
    port: variable(
      "METRICS_PORT",
      port("9464", "must be a port number from 1 to 65535, or 0 for no metrics listener"),
      "the metrics listener's port; 0: none",
    ),
  });

/** QUERY_MAX_*: the limits every GraphQL operation must stay within. */
export const queryLimitSettings = (owned: Owned) =>
  group(
    {
      maxDepth: ["QUERY_MAX_DEPTH", "deepest nesting of fields"],
      maxAliases: ["QUERY_MAX_ALIASES", "aliases per operation"],
      maxDirectives: ["QUERY_MAX_DIRECTIVES", "directives per operation"],
      maxTokens: ["QUERY_MAX_TOKENS", "lexical tokens in a document"],
      maxCost: ["QUERY_MAX_COST", "the most an operation may be able to return"],
      maxCostInFlight: ["QUERY_MAX_COST_IN_FLIGHT", "cost of the operations running at once over HTTP"],
    },
    (key) => count(() => owned(key)),
  );

/** HTTP_* and SHUTDOWN_DRAIN: the HTTP server's edges and how it stops. */
export const httpSettings = (owned: Owned) =>
  group(
    {
      headersTimeoutMs: ["HTTP_HEADERS_TIMEOUT", "longest time for a request's headers"],
      requestTimeoutMs: ["HTTP_REQUEST_TIMEOUT", "longest time for a whole request"],
      keepAliveTimeoutMs: ["HTTP_KEEP_ALIVE_TIMEOUT", "how long an idle keep-alive connection is kept"],
    },
    (key) => milliseconds(() => owned(key), MAX_TIMEOUT_MS),
  )
    .extend(
      group(
        {
          maxConnections: ["HTTP_MAX_CONNECTIONS", "open TCP connections"],
          maxBodyBytesInFlight: ["HTTP_MAX_BODY_BYTES_IN_FLIGHT", "bytes of request bodies held at once"],
        },
        (key) => count(() => owned(key)),
      ).shape,
    )
    // Unset: the owner's drain in production, none elsewhere (config.ts's configSchema).
    .extend({ shutdownDrainMs: variable("SHUTDOWN_DRAIN", optionalMilliseconds(300_000, true), "drain on SIGTERM") });

/** WS_* and SUBSCRIPTION_*: the WebSocket transport's budget. */
export const subscriptionSettings = (owned: Owned) =>
  group(
    {
      maxConnections: ["WS_MAX_CONNECTIONS", "open WebSockets"],
      maxConnectionsPerIp: ["WS_MAX_CONNECTIONS_PER_IP", "open WebSockets per client IP"],
      maxAnonymousConnections: ["WS_MAX_ANONYMOUS_CONNECTIONS", "acknowledged anonymous WebSockets"],
      maxSubscriptions: ["WS_MAX_SUBSCRIPTIONS", "active subscriptions"],
      maxSubscriptionsPerIp: ["WS_MAX_SUBSCRIPTIONS_PER_IP", "active subscriptions per client IP"],
      maxAnonymousSubscriptions: ["WS_MAX_ANONYMOUS_SUBSCRIPTIONS", "active subscriptions of anonymous sockets"],
      maxSubscriptionsPerConnection: ["WS_MAX_SUBSCRIPTIONS_PER_CONNECTION", "active subscriptions per socket"],
      maxCost: ["SUBSCRIPTION_MAX_COST", "a subscription's cost limit"],
      deliveryConcurrency: ["SUBSCRIPTION_DELIVERY_CONCURRENCY", "events executed at once"],
      maxQueuedEvents: ["SUBSCRIPTION_MAX_QUEUED_EVENTS", "events kept per subscriber"],
      maxBufferedBytes: ["WS_MAX_BUFFERED_BYTES", "bytes queued on one socket"],
    },
    (key) => count(() => owned(key)),
  ).extend({
    anonymousIdleMs: variable(
      "WS_ANONYMOUS_IDLE_TIMEOUT",
      milliseconds(() => owned("anonymousIdleMs"), 86_400_000),
      "an anonymous socket without a subscription is closed after it",
    ),
  });

/** A link template: an absolute http(s) URL holding `{token}` once. */
const linkTemplate = () =>
  optionalText().refine(
    (v) => v === undefined || (/^https?:\/\/[^\s]+$/.test(v) && v.split("{token}").length === 2),
    "must be an absolute http:// or https:// URL holding {token} exactly once",
  );

/**
 * PUBLIC_URL, SMTP_URL, MAIL_FROM, the two link templates, the two token lifetimes and
 * EMAIL_REQUESTS_MAX_PER_IP: e-mail on accounts. PUBLIC_URL and the templates default from PORT in
 * config.ts's transform.
 */
export const emailSettings = () =>
  z.object({
    publicUrl: variable(
      "PUBLIC_URL",
      matching(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, "must be an absolute http:// or https:// URL"),
      "where users reach this API; links in mails derive from it",
    ),
    smtpUrl: variable(
      "SMTP_URL",
      matching(/^smtps?:\/\/[^\s]+$/, "must be an smtp:// or smtps:// URL"),
      "smtp(s)://user:pass@host:port; unset: mail to the log and DATA_DIR/mail (development)",
    ),
    from: variable("MAIL_FROM", text("graphql-token-auth <no-reply@localhost>"), "the sender of every mail"),
    passwordResetUrl: variable("PASSWORD_RESET_URL", linkTemplate(), "the reset link's template, {token} replaced"),
    verificationUrl: variable(
      "EMAIL_VERIFICATION_URL",
      linkTemplate(),
      "the verification link's template, {token} replaced",
    ),
    resetTokenTtlSeconds: variable("PASSWORD_RESET_TOKEN_EXPIRES", seconds("30m"), "a reset link's lifetime"),
    verificationTokenTtlSeconds: variable(
      "EMAIL_VERIFICATION_TOKEN_EXPIRES",
      seconds("24h"),
      "a verification link's lifetime",
    ),
    requestsPerIpPerHour: variable(
      "EMAIL_REQUESTS_MAX_PER_IP",
      countOrOff(20),
      "mail-sending requests per client IP per hour",
    ),
  });
