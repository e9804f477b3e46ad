import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";

import {
  type DeepReadonly,
  type EnvVariable,
  checkedText,
  count,
  countOrOff,
  list,
  matching,
  milliseconds,
  optionalMilliseconds,
  optionalText,
  port,
  deepFreeze,
  group,
  readDotEnv,
  readEnv,
  readWith,
  seconds,
  variable,
  variablesOf,
} from "./env-schema.js";

// The configuration is declared once, in configSchema below: each setting is an environment
// variable with its parser, default and description, placed where the config holds it. The type
// (Config), the validation and the mapping from variable names to the nested object all derive
// from it, and test/readme.test.ts checks docs/configuration.md against it.

/** Thrown by {@link readConfig}; `problems` holds one line per invalid variable, each naming it. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * The rules and defaults of settings whose owners live above this module, passed in by
 * load-config.ts so that this module depends on nothing of the app. A rule returns why a value is
 * refused, or undefined; the defaults are asked for only when a variable is unset.
 */
export interface SettingRules {
  /** JWT_SECRET_KEY and JWT_PREVIOUS_SECRET_KEYS (access/secrets.ts). */
  readonly secret: (value: string) => string | undefined;
  /** ADMIN_USERNAME and ADMIN_PASSWORD (users/account-rules.ts). */
  readonly username: (value: string) => string | undefined;
  readonly password: (value: string) => string | undefined;
  /** An entry of CORS_ORIGINS (http/cors.ts). */
  readonly origin: (value: string) => string | undefined;
  /** TRUST_PROXY's value, and one line per problem (http/request-info.ts). */
  readonly trustProxy: (value: string | undefined) => { value: boolean | string[]; problems: string[] };
  readonly defaults: () => OwnedDefaults;
  /** Rules across settings, in the order their problems are listed. */
  readonly across: readonly CrossRule[];
}

/** The environment as read: the `.env` file's variables under the real ones. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A rule across settings: why `config` (undefined when a variable is invalid) or the raw `env` is refused. */
export type CrossRule = (config: Config | undefined, env: Env) => string | undefined;

/** Whether `name` is set to more than blanks in `env`. */
export const isSet = (env: Env, name: string) => (env[name] ?? "").trim() !== "";

/** METRICS_PORT and PORT: metrics are never served on the public port. */
export const metricsPortProblem: CrossRule = (config) =>
  config && config.metrics.port !== 0 && config.metrics.port === config.port
    ? "METRICS_PORT must differ from PORT: metrics are never served on the public port (0 switches them off)"
    : undefined;

type Owned = (key: string) => number;
/** The defaults of a group of settings another module owns, by their keys in the config. */
type Defaults<G extends (owned: Owned) => z.ZodType> = { readonly [K in keyof z.output<ReturnType<G>>]-?: number };

/** Defaults chosen by the modules that enforce them. */
export interface OwnedDefaults {
  readonly queryLimits: Defaults<typeof queryLimitSettings>; // graphql/query-limits.ts
  readonly responseMaxBytes: number; // graphql/response-size.ts
  readonly http: Defaults<typeof httpSettings>; // http/connections.ts; shutdownDrainMs in production only
  readonly subscriptions: Defaults<typeof subscriptionSettings>; // graphql/subscription-server.ts
  /** CORS_ORIGINS when unset or empty (http/cors.ts). */
  readonly corsOrigins: (isProduction: boolean) => readonly string[];
}

export const DEFAULT_ISSUER = "graphql-token-auth";
export const DEFAULT_AUDIENCE = "graphql-token-auth-api";
const MODES = ["development", "production", "test"] as const;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const MAX_TIMEOUT_MS = 600_000;

/** QUERY_MAX_*: the limits every GraphQL operation must stay within. */
const queryLimitSettings = (owned: Owned) =>
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
const httpSettings = (owned: Owned) =>
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
    // Unset: the owner's drain in production, none elsewhere (configSchema).
    .extend({ shutdownDrainMs: variable("SHUTDOWN_DRAIN", optionalMilliseconds(300_000, true), "drain on SIGTERM") });

/** WS_* and SUBSCRIPTION_*: the WebSocket transport's budget. */
const subscriptionSettings = (owned: Owned) =>
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

/** The configuration, declared once: the variable, parser, default and description of every setting. */
function configSchema(rules: SettingRules, cwd: string) {
  const owned = rules.defaults;
  // A group's defaults by key (its keys are the group's own, so every one is there).
  const ownedOf = (group: "queryLimits" | "http" | "subscriptions"): Owned => {
    return (key) => (owned()[group] as Readonly<Record<string, number>>)[key] ?? Number.NaN;
  };
  const path = (p: string) => resolve(cwd, p);
  const text = (defaultValue: string) => z.string().min(1).default(defaultValue);
  return z
    .object({
      nodeEnv: variable("NODE_ENV", z.enum(MODES).default("development"), "production hardens; test is development"),
      host: variable("HOST", text("0.0.0.0"), "the public port's address"),
      port: variable("PORT", port("4000", "must be a port number from 0 to 65535"), "the public port"),
      dataDir: variable("DATA_DIR", text("./data").transform(path), "SQLite, generated keys and secret"),
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
      jwt: z.object({
        secretKey: variable("JWT_SECRET_KEY", checkedText(rules.secret), "HS256's secret; unset: generated"),
        previousSecretKeys: variable(
          "JWT_PREVIOUS_SECRET_KEYS",
          list((secret) => {
            const weak = rules.secret(secret);
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
        issuer: variable("JWT_ISSUER", text(DEFAULT_ISSUER), "every token's iss"),
        audience: variable("JWT_AUDIENCE", text(DEFAULT_AUDIENCE), "every token's aud"),
      }),
      admin: z
        .object({
          username: variable("ADMIN_USERNAME", checkedText(rules.username), "an ADMIN ensured at start"),
          password: variable("ADMIN_PASSWORD", checkedText(rules.password), "its password, if it is created"),
        })
        .transform(({ username, password }) =>
          username !== undefined && password !== undefined ? { username, password } : undefined,
        ),
      loginThrottle: z.object({
        maxFailuresPerUserIp: variable("LOGIN_MAX_FAILURES_PER_USER_IP", count(5), "failed logins per user and IP"),
        maxFailuresPerIp: variable("LOGIN_MAX_FAILURES_PER_IP", count(100), "failed logins per IP"),
        windowSeconds: variable("LOGIN_THROTTLE_WINDOW", seconds("15m"), "the login throttle's window"),
      }),
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
      databaseTimeoutMs: variable("DATABASE_TIMEOUT", milliseconds("5s", MAX_TIMEOUT_MS), "longest database wait"),
      redisTimeoutMs: variable("REDIS_TIMEOUT", milliseconds("500ms", 60_000), "longest wait for a Redis command"),
      floodLimits: z.object({
        registrationsPerIpPerHour: variable("REGISTER_MAX_PER_IP", countOrOff(30), "registrations per IP per hour"),
        postsPerUserPerHour: variable("CREATE_POST_MAX_PER_USER", countOrOff(60), "posts per user per hour"),
      }),
      userBudgets: z.object({
        postUpdatesPerHour: variable("UPDATE_POST_MAX_PER_USER", countOrOff(120), "updatePost per user per hour"),
        loginsPerHour: variable("LOGIN_MAX_PER_USER", countOrOff(60), "successful logins per account per hour"),
        refreshesPerHour: variable("REFRESH_MAX_PER_USER", countOrOff(600), "refreshToken per user per hour"),
        writesPerHour: variable("WRITES_MAX_PER_USER", countOrOff(600), "other signed-in writes per user per hour"),
        maxSessions: variable("SESSIONS_MAX_PER_USER", count(20), "live sessions per user"),
      }),
      audit: z.object({ retentionSeconds: variable("AUDIT_RETENTION", seconds("90d"), "how long audit events stay") }),
      logLevel: variable(
        "LOG_LEVEL",
        z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
        "pino's level",
      ),
      queryLimits: queryLimitSettings(ownedOf("queryLimits")),
      responseMaxBytes: variable(
        "RESPONSE_MAX_BYTES",
        count(() => owned().responseMaxBytes).refine(
          (v) => v >= 1024,
          "must be at least 1024 (bytes; the refusal itself takes a few hundred)",
        ),
        "bytes of JSON one answer may take",
      ),
      trustProxy: variable("TRUST_PROXY", readWith(rules.trustProxy), "the peers that may set X-Forwarded-*"),
      corsOrigins: variable("CORS_ORIGINS", list(rules.origin), "origins whose pages may call the API"),
      metrics: z.object({
        host: variable("METRICS_HOST", text("127.0.0.1"), "the metrics listener's address"),
        port: variable(
          "METRICS_PORT",
          port("9464", "must be a port number from 1 to 65535, or 0 for no metrics listener"),
          "the metrics listener's port; 0: none",
        ),
      }),
      http: httpSettings(ownedOf("http")),
      subscriptions: subscriptionSettings(ownedOf("subscriptions")),
    })
    .transform(({ http, ...config }) => {
      const isProduction = config.nodeEnv === "production";
      const { shutdownDrainMs } = http;
      return {
        ...config,
        isProduction,
        corsOrigins: config.corsOrigins.length > 0 ? config.corsOrigins : [...owned().corsOrigins(isProduction)],
        // A load balancer needs the drain in production; a developer's Ctrl-C and the tests do not.
        http: { ...http, shutdownDrainMs: shutdownDrainMs ?? (isProduction ? owned().http.shutdownDrainMs : 0) },
      };
    });
}

/** The validated, frozen configuration every other module receives. Only this file reads `process.env`. */
export type Config = DeepReadonly<z.output<ReturnType<typeof configSchema>>>;
export type QueryLimits = Config["queryLimits"];
export type HttpLimits = Config["http"];
export type SubscriptionLimits = Config["subscriptions"];

/** The variables as `rules` (load-config.ts's, for their real defaults) declare them. */
export function configVariables(rules: SettingRules, cwd = "."): readonly EnvVariable[] {
  return variablesOf(configSchema(rules, cwd));
}

/**
 * Reads the variables this service understands from `env` merged over a `.env` file in `cwd` (the
 * environment wins), validates them with `rules` for the values other modules own, and returns a
 * frozen {@link Config}. Throws {@link ConfigError} listing every problem at once. The app calls it
 * through load-config.ts's `loadConfig`, which passes the real rules.
 */
export function readConfig(env: Env, cwd: string, rules: SettingRules): Config {
  const merged = { ...readDotEnv(resolve(cwd, ".env")), ...env };
  const read = readEnv(configSchema(rules, cwd), merged);
  // Rules across variables run on the raw values too, so that one invalid variable hides none of them.
  const problems = [...read.problems, ...rules.across.map((rule) => rule(read.value, merged))];
  if (read.value === undefined || problems.some((p) => p !== undefined)) {
    throw new ConfigError(problems.filter((p) => p !== undefined));
  }
  return deepFreeze(read.value);
}

// Only the names are read: no rule runs and no default is asked for.
const accept = () => undefined;
const NAMES_ONLY: SettingRules = {
  secret: accept,
  username: accept,
  password: accept,
  origin: accept,
  trustProxy: () => ({ value: false, problems: [] }),
  defaults: () => ({}) as OwnedDefaults,
  across: [],
};

/** Every variable this service reads; the tables of docs/configuration.md are checked against it. */
export const CONFIG_VARIABLES: readonly string[] = configVariables(NAMES_ONLY).map((v) => v.name);
