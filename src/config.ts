import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseEnv } from "node:util";
import { z } from "zod";

import { parseDuration, parseDurationMs } from "./durations.js";

/** The validated, frozen configuration every other module receives. Only this file reads `process.env`. */
export interface Config {
  readonly nodeEnv: "development" | "production" | "test";
  readonly isProduction: boolean;
  readonly host: string;
  readonly port: number;
  /** Absolute path of the folder for the SQLite file, generated keys and the development secret. */
  readonly dataDir: string;
  /** `postgres://…` selects PostgreSQL; undefined selects SQLite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** PostgreSQL schema to use instead of `public` (created when missing). */
  readonly databaseSchema: string | undefined;
  readonly jwt: {
    /** Undefined means: generate one in `dataDir` (refused in production). */
    readonly secretKey: string | undefined;
    /** HS256: older secrets that still verify (not sign) during a rotation. */
    readonly previousSecretKeys: readonly string[];
    readonly algorithm: "HS256" | "RS256" | "ES256";
    /** RS256/ES256: PEM file of the signing key; undefined means generate one into DATA_DIR/keys. */
    readonly privateKeyFile: string | undefined;
    /** RS256/ES256: PEM files of older public keys that still verify during a rotation. */
    readonly previousPublicKeyFiles: readonly string[];
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    /**
     * How long after a rotation the rotated refresh token (the direct parent of the session's
     * current one) still returns the current one instead of ending the session; 0 is strict single use.
     */
    readonly refreshTokenReuseIntervalMs: number;
    readonly issuer: string;
    readonly audience: string;
  };
  readonly admin: { readonly username: string; readonly password: string } | undefined;
  /** Failed-login throttling (see `src/rate-limits/login-throttle.ts`). */
  readonly loginThrottle: {
    /** Failed logins one username may have from one IP within the window before that pair is throttled. */
    readonly maxFailuresPerUserIp: number;
    /** Failed logins one IP may have within the window (any usernames) before all its logins are throttled. */
    readonly maxFailuresPerIp: number;
    readonly windowSeconds: number;
  };
  /** `redis://…`: every rate limit's counters live in Redis; undefined keeps them in the database. */
  readonly redisUrl: string | undefined;
  /** Prepended to every Redis key, so several deployments can share one Redis. */
  readonly redisKeyPrefix: string;
  /**
   * Longest wait, in milliseconds, for a database connection or statement (PostgreSQL connect and
   * statement timeouts, SQLite's busy wait). Past it the request gets SERVICE_UNAVAILABLE.
   */
  readonly databaseTimeoutMs: number;
  /** Longest wait, in milliseconds, for one Redis command; past it each instance counts on its own. */
  readonly redisTimeoutMs: number;
  /** Flood limits on writes anybody can cause; `0` switches a limit off. */
  readonly floodLimits: {
    /** Successful registrations per client IP per hour. */
    readonly registrationsPerIpPerHour: number;
    /** Posts one user may create per hour. */
    readonly postsPerUserPerHour: number;
  };
  // --- Issue 22 (writes): budgets per user of writes, successful logins and live sessions. ---
  /** Per-user budgets of what signed-in users (and successful logins) write; `0` switches a flood limit off. */
  readonly userBudgets: {
    /** updatePost calls one user may make per hour (each one is an event every subscriber runs). */
    readonly postUpdatesPerHour: number;
    /** Successful logins (the right password) to one account per hour: each writes a session and a refresh token. */
    readonly loginsPerHour: number;
    /** refreshToken calls of one user's sessions per hour: each writes a refresh token and an audit row. */
    readonly refreshesPerHour: number;
    /** Every other signed-in write of one user per hour (deletePost, logout, revokeSession, API tokens, ADMIN changes, …). */
    readonly writesPerHour: number;
    /** Live sessions one user may hold; a new one ends the least recently used past it. At least 1. */
    readonly maxSessions: number;
  };
  // --- end of issue 22 (writes) ---
  readonly audit: {
    /** Audit events older than this are deleted (hourly, and at start). */
    readonly retentionSeconds: number;
  };
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Checked on every operation before it runs; see `src/graphql/query-limits.ts`. */
  readonly queryLimits: QueryLimits;
  // Issue 22, the size of an answer (RESPONSE_MAX_BYTES).
  /**
   * The most bytes of JSON one answer may take, an HTTP response or one WebSocket event; a larger
   * one is never built and the client gets RESPONSE_TOO_LARGE (see `src/graphql/response-size.ts`).
   */
  readonly responseMaxBytes: number;
  /**
   * Which peers may speak for the client through `X-Forwarded-For`/`-Proto`/`-Host`: `false` (the
   * socket's address is the client), `true` (every peer), or addresses and CIDR ranges (and
   * proxy-addr's names `loopback`, `linklocal`, `uniquelocal`). Fastify's `trustProxy`.
   */
  readonly trustProxy: boolean | readonly string[];
  /** Exact origins that browsers may call the API from (CORS); empty means no CORS headers at all. */
  readonly corsOrigins: readonly string[];
  /** The Prometheus listener (main.ts), apart from the public port; `port` 0 switches it off. */
  readonly metrics: { readonly host: string; readonly port: number };
  /** The HTTP server's edges and its shutdown (src/http/connections.ts, src/main.ts). */
  readonly http: HttpLimits;
  /** WebSocket connections and subscriptions: caps, idle anonymous sockets, event delivery (docs/limits.md). */
  readonly subscriptions: SubscriptionLimits;
}

// --- Issue 22, HTTP connections and shutdown (docs/limits.md) ---------------------------------
/** How long the HTTP server waits for a client, how many connections it holds, how it stops. */
export interface HttpLimits {
  /** From a connection's opening (on a kept-alive one, a request's first byte) to the end of the request's headers; milliseconds. */
  readonly headersTimeoutMs: number;
  /** From a request's first byte to the end of its body (a 1 MB body included); milliseconds. */
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept for its next request; milliseconds. */
  readonly keepAliveTimeoutMs: number;
  /** Open TCP connections, WebSockets included; past it a new connection is closed before it is read. */
  readonly maxConnections: number;
  /** Bytes of request bodies held at once while they arrive, beyond each body's first 64 KB; past it 503. */
  readonly maxBodyBytesInFlight: number;
  /** After SIGTERM/SIGINT: how long /readyz answers 503 while requests are still served, before the listener closes; milliseconds. */
  readonly shutdownDrainMs: number;
}

// --- end of issue 22's HTTP block -------------------------------------------------------------

// --- Issue 22, WebSocket connections and subscriptions (docs/limits.md) -----------------------
/**
 * The budget of the WebSocket transport (src/graphql/subscription-server.ts). Defaults are chosen
 * from measurement on npm start's 96 MB heap (after a forced collection): about 8.5 KB of heap per
 * socket and 10 to 15 KB per `postUpdated` subscription (the larger for a selection near
 * SUBSCRIPTION_MAX_COST), so the worst case the caps allow (1,000 sockets and 2,000 subscriptions)
 * holds about 38 MB beside the app's own 27 MB: 65 MB, and the process stayed up with 10 updates
 * delivered to all 2,000 subscribers.
 */
export interface SubscriptionLimits {
  /** Open sockets in all (upgrades past it get HTTP 503 with Retry-After). */
  readonly maxConnections: number;
  /** Open sockets per client IP, as TRUST_PROXY reads it (HTTP 429 with Retry-After). */
  readonly maxConnectionsPerIp: number;
  /** Acknowledged anonymous sockets in all; `connection_init` past it is closed with 1013. */
  readonly maxAnonymousConnections: number;
  /** An anonymous socket without an active subscription for this long is closed with 4408; milliseconds. */
  readonly anonymousIdleMs: number;
  /** Active subscriptions in all, per client IP, of anonymous sockets in all, and per socket. */
  readonly maxSubscriptions: number;
  readonly maxSubscriptionsPerIp: number;
  readonly maxAnonymousSubscriptions: number;
  readonly maxSubscriptionsPerConnection: number;
  /** The cost limit of a subscription's selection, which runs on every event (QUERY_MAX_COST's measure). */
  readonly maxCost: number;
  /** Selections of events being executed (and sent) at once, over all subscribers. */
  readonly deliveryConcurrency: number;
  /** Events one subscriber has not taken yet; past it the oldest is dropped. */
  readonly maxQueuedEvents: number;
  /** Bytes queued on one socket (ws `bufferedAmount`) past which it is closed with 1013 instead of sent more. */
  readonly maxBufferedBytes: number;
}

// --- end of issue 22's WebSocket block --------------------------------------------------------

/** The limits every GraphQL operation must stay within; each is a positive whole number. */
export interface QueryLimits {
  /** Nesting of selections (`__schema` introspection is not counted). */
  readonly maxDepth: number;
  readonly maxAliases: number;
  readonly maxDirectives: number;
  /** Lexical tokens in the whole document; the parser stops at the first one over. */
  readonly maxTokens: number;
  /**
   * Most values an operation may be able to return (see `src/graphql/query-cost.ts`): objects count 2, scalars
   * 1, text one per started 1,000 characters of its declared maximum length, and a list its `first`
   * (literal, variable or default) times its selection.
   */
  readonly maxCost: number;
  /**
   * Most cost of the operations running at once over HTTP, all clients together (one address at most
   * half): past it an operation waits briefly for room, then gets SERVICE_UNAVAILABLE
   * (`src/graphql/cost-budget.ts`). At least `maxCost`.
   */
  readonly maxCostInFlight: number;
}

/** Thrown by {@link loadConfig}; `problems` holds one line per invalid variable, each naming it. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export const DEFAULT_ISSUER = "graphql-token-auth";
export const DEFAULT_AUDIENCE = "graphql-token-auth-api";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

/** A comma-separated list; empty when unset. */
function list() {
  return z
    .string()
    .optional()
    .transform((v) =>
      (v ?? "")
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== ""),
    );
}

/** A default, or a function giving it when the variable is unset (a default another module owns). */
type Default<T> = T | (() => T);
const valueOf = <T>(value: Default<T>): T => (typeof value === "function" ? (value as () => T)() : value);

/** A positive whole number, with a default. */
function positiveInteger(defaultValue: Default<number>) {
  return z
    .string()
    .default(() => String(valueOf(defaultValue)))
    .refine((v) => /^\d{1,9}$/.test(v.trim()) && Number(v) > 0, "must be a whole number from 1 to 999999999")
    .transform((v) => Number(v));
}

/** A whole number from 0 (switched off) up, with a default. */
function nonNegativeInteger(defaultValue: number) {
  return z
    .string()
    .default(String(defaultValue))
    .refine((v) => /^\d{1,9}$/.test(v.trim()), "must be a whole number from 0 (off) to 999999999")
    .transform((v) => Number(v));
}

/**
 * A duration in milliseconds (`500ms`, `5s`), with a default and an upper bound; with `zeroAllowed`
 * a zero with a unit (`0s`) switches the setting off.
 */
function durationMs(defaultValue: Default<string>, maxMs: number, options: { zeroAllowed?: boolean } = {}) {
  return z
    .string()
    .default(() => valueOf(defaultValue))
    .transform((value, ctx) => {
      if (options.zeroAllowed && /^0+(ms|s|m|h|d)$/.test(value.trim())) return 0;
      const ms = parseDurationMs(value);
      if (ms !== undefined && ms <= maxMs) return ms;
      ctx.addIssue({
        code: "custom",
        message:
          ms !== undefined
            ? `must be at most ${maxMs / 1000}s`
            : /^\d+$/.test(value.trim())
              ? "must have a unit (for example 500ms, 5s or 1m); a bare number is ambiguous"
              : `must be a ${options.zeroAllowed ? "" : "positive "}duration with a unit: ms, s, m, h or d (for example 5s${options.zeroAllowed ? ", or 0s for off" : ""})`,
      });
      return z.NEVER;
    });
}

function duration(defaultValue: string) {
  return z
    .string()
    .default(defaultValue)
    .transform((value, ctx) => {
      const seconds = parseDuration(value);
      if (seconds !== undefined) return seconds;
      ctx.addIssue({
        code: "custom",
        message: /^\d+$/.test(value.trim())
          ? "must have a unit (for example 900s, 15m, 1h or 30d); a bare number is ambiguous"
          : "must be a positive duration with a unit: s, m, h or d (for example 15m)",
      });
      return z.NEVER;
    });
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
  /** An entry of CORS_ORIGINS (http/security-headers.ts). */
  readonly origin: (value: string) => string | undefined;
  /** TRUST_PROXY's value, and one line per problem (http/client-address.ts). */
  readonly trustProxy: (value: string | undefined) => { value: boolean | string[]; problems: string[] };
  readonly defaults: () => OwnedDefaults;
  /** Rules across settings, in the order their problems are listed. */
  readonly across: readonly CrossRule[];
}

/** Defaults chosen by the modules that enforce them. */
export interface OwnedDefaults {
  readonly queryLimits: QueryLimits; // graphql/query-limits.ts
  readonly responseMaxBytes: number; // graphql/response-size.ts
  readonly http: HttpLimits; // http/connections.ts; shutdownDrainMs in production only
  readonly subscriptions: SubscriptionLimits; // graphql/subscription-server.ts
  /** CORS_ORIGINS when unset or empty (http/security-headers.ts). */
  readonly corsOrigins: (isProduction: boolean) => readonly string[];
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

// Only the names are read: no rule runs and no default is asked for.
const accept = () => undefined;
const ACCEPT_ALL: SettingRules = {
  secret: accept,
  username: accept,
  password: accept,
  origin: accept,
  trustProxy: () => ({ value: false, problems: [] }),
  defaults: () => ({}) as OwnedDefaults,
  across: [],
};

const envSchema = (rules: SettingRules) =>
  z.object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    HOST: z.string().min(1).default("0.0.0.0"),
    PORT: z
      .string()
      .regex(/^\d{1,5}$/, "must be a port number from 0 to 65535")
      .default("4000")
      .transform(Number)
      .refine((n) => n <= 65535, "must be a port number from 0 to 65535"),
    METRICS_HOST: z.string().min(1).default("127.0.0.1"),
    METRICS_PORT: z
      .string()
      .regex(/^\d{1,5}$/, "must be a port number from 1 to 65535, or 0 for no metrics listener")
      .default("9464")
      .transform(Number)
      .refine((n) => n <= 65535, "must be a port number from 1 to 65535, or 0 for no metrics listener"),
    DATA_DIR: z.string().min(1).default("./data"),
    DATABASE_URL: optionalText.refine(
      (v) => v === undefined || /^postgres(ql)?:\/\//.test(v),
      "must be a postgres:// or postgresql:// URL (leave it unset for SQLite in DATA_DIR)",
    ),
    DATABASE_SCHEMA: optionalText.refine(
      (v) => v === undefined || /^[a-z_][a-z0-9_]{0,62}$/.test(v),
      "must be a lower-case PostgreSQL identifier (letters, digits, underscore)",
    ),
    JWT_SECRET_KEY: optionalText.superRefine((v, ctx) => {
      const weak = v === undefined ? undefined : rules.secret(v);
      if (weak) ctx.addIssue({ code: "custom", message: weak });
    }),
    JWT_PREVIOUS_SECRET_KEYS: list().superRefine((secrets, ctx) => {
      for (const secret of secrets) {
        const weak = rules.secret(secret);
        if (weak) ctx.addIssue({ code: "custom", message: `has a secret that ${weak}` });
      }
    }),
    JWT_ALGORITHM: z.enum(["HS256", "RS256", "ES256"], { message: "must be HS256, RS256 or ES256" }).default("HS256"),
    JWT_PRIVATE_KEY_FILE: optionalText.refine(
      (v) => v === undefined || existsSync(v),
      "must name an existing PEM file",
    ),
    JWT_PREVIOUS_PUBLIC_KEY_FILES: list().refine(
      (files) => files.every((f) => existsSync(f)),
      "must name existing PEM files",
    ),
    JWT_ACCESS_TOKEN_EXPIRES: duration("15m"),
    JWT_REFRESH_TOKEN_EXPIRES: duration("30d"),
    REFRESH_TOKEN_REUSE_INTERVAL: durationMs("10s", 300_000, { zeroAllowed: true }),
    JWT_ISSUER: z.string().min(1).default(DEFAULT_ISSUER),
    JWT_AUDIENCE: z.string().min(1).default(DEFAULT_AUDIENCE),
    ADMIN_USERNAME: optionalText.superRefine((v, ctx) => {
      const problem = v === undefined ? undefined : rules.username(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    ADMIN_PASSWORD: optionalText.superRefine((v, ctx) => {
      const problem = v === undefined ? undefined : rules.password(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    LOGIN_MAX_FAILURES_PER_USER_IP: positiveInteger(5),
    LOGIN_MAX_FAILURES_PER_IP: positiveInteger(100),
    LOGIN_THROTTLE_WINDOW: duration("15m"),
    REDIS_URL: optionalText.refine(
      (v) => v === undefined || /^rediss?:\/\/[^\s]+$/.test(v),
      "must be a redis:// or rediss:// URL (leave it unset to keep the rate limits' counters in the database)",
    ),
    REDIS_KEY_PREFIX: z
      .string()
      .default("graphql-token-auth:")
      .refine((v) => /^[A-Za-z0-9_.:-]{0,64}$/.test(v), "must be at most 64 characters of A-Z a-z 0-9 _ . : -"),
    DATABASE_TIMEOUT: durationMs("5s", 600_000),
    REDIS_TIMEOUT: durationMs("500ms", 60_000),
    REGISTER_MAX_PER_IP: nonNegativeInteger(30),
    CREATE_POST_MAX_PER_USER: nonNegativeInteger(60),
    // --- Issue 22 (writes): budgets per user of writes, successful logins and live sessions. ---
    UPDATE_POST_MAX_PER_USER: nonNegativeInteger(120),
    LOGIN_MAX_PER_USER: nonNegativeInteger(60),
    REFRESH_MAX_PER_USER: nonNegativeInteger(600),
    WRITES_MAX_PER_USER: nonNegativeInteger(600),
    SESSIONS_MAX_PER_USER: positiveInteger(20),
    // --- end of issue 22 (writes) ---
    AUDIT_RETENTION: duration("90d"),
    LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
    QUERY_MAX_DEPTH: positiveInteger(() => rules.defaults().queryLimits.maxDepth),
    QUERY_MAX_ALIASES: positiveInteger(() => rules.defaults().queryLimits.maxAliases),
    QUERY_MAX_DIRECTIVES: positiveInteger(() => rules.defaults().queryLimits.maxDirectives),
    QUERY_MAX_TOKENS: positiveInteger(() => rules.defaults().queryLimits.maxTokens),
    QUERY_MAX_COST: positiveInteger(() => rules.defaults().queryLimits.maxCost),
    QUERY_MAX_COST_IN_FLIGHT: positiveInteger(() => rules.defaults().queryLimits.maxCostInFlight),
    // Issue 22, the size of an answer.
    RESPONSE_MAX_BYTES: positiveInteger(() => rules.defaults().responseMaxBytes).refine(
      (v) => v >= 1024,
      "must be at least 1024 (bytes; the refusal itself takes a few hundred)",
    ),
    TRUST_PROXY: optionalText.transform((v, ctx) => {
      const { value, problems } = rules.trustProxy(v);
      for (const message of problems) ctx.addIssue({ code: "custom", message });
      return problems.length > 0 ? z.NEVER : value;
    }),
    CORS_ORIGINS: list().superRefine((origins, ctx) => {
      for (const origin of origins) {
        const problem = rules.origin(origin);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }
    }),
    // Issue 22: HTTP connections and shutdown (HttpLimits).
    HTTP_HEADERS_TIMEOUT: durationMs(() => `${rules.defaults().http.headersTimeoutMs}ms`, 600_000),
    HTTP_REQUEST_TIMEOUT: durationMs(() => `${rules.defaults().http.requestTimeoutMs}ms`, 600_000),
    HTTP_KEEP_ALIVE_TIMEOUT: durationMs(() => `${rules.defaults().http.keepAliveTimeoutMs}ms`, 600_000),
    HTTP_MAX_CONNECTIONS: positiveInteger(() => rules.defaults().http.maxConnections),
    HTTP_MAX_BODY_BYTES_IN_FLIGHT: positiveInteger(() => rules.defaults().http.maxBodyBytesInFlight),
    SHUTDOWN_DRAIN: durationMs("0s", 300_000, { zeroAllowed: true }),
    // Issue 22: WebSocket connections and subscriptions (SubscriptionLimits).
    WS_MAX_CONNECTIONS: positiveInteger(() => rules.defaults().subscriptions.maxConnections),
    WS_MAX_CONNECTIONS_PER_IP: positiveInteger(() => rules.defaults().subscriptions.maxConnectionsPerIp),
    WS_MAX_ANONYMOUS_CONNECTIONS: positiveInteger(() => rules.defaults().subscriptions.maxAnonymousConnections),
    WS_ANONYMOUS_IDLE_TIMEOUT: durationMs(() => `${rules.defaults().subscriptions.anonymousIdleMs}ms`, 86_400_000),
    WS_MAX_SUBSCRIPTIONS: positiveInteger(() => rules.defaults().subscriptions.maxSubscriptions),
    WS_MAX_SUBSCRIPTIONS_PER_IP: positiveInteger(() => rules.defaults().subscriptions.maxSubscriptionsPerIp),
    WS_MAX_ANONYMOUS_SUBSCRIPTIONS: positiveInteger(() => rules.defaults().subscriptions.maxAnonymousSubscriptions),
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInteger(
      () => rules.defaults().subscriptions.maxSubscriptionsPerConnection,
    ),
    WS_MAX_BUFFERED_BYTES: positiveInteger(() => rules.defaults().subscriptions.maxBufferedBytes),
    SUBSCRIPTION_MAX_COST: positiveInteger(() => rules.defaults().subscriptions.maxCost),
    SUBSCRIPTION_DELIVERY_CONCURRENCY: positiveInteger(() => rules.defaults().subscriptions.deliveryConcurrency),
    SUBSCRIPTION_MAX_QUEUED_EVENTS: positiveInteger(() => rules.defaults().subscriptions.maxQueuedEvents),
  });

/**
 * Reads the variables this service understands from `env` merged over a `.env` file in `cwd` (the
 * environment wins), validates them with `rules` for the values other modules own, and returns a
 * frozen {@link Config}. Throws {@link ConfigError} listing every problem at once. The app calls it
 * through load-config.ts's `loadConfig`, which passes the real rules.
 */
export function readConfig(env: Record<string, string | undefined>, cwd: string, rules: SettingRules): Config {
  const merged = { ...readDotEnv(cwd), ...env };
  const parsed = envSchema(rules).safeParse(merged);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join(".")} ${issue.message}`);
  }
  // Rules across variables run on the raw values too, so that one invalid variable hides none of them.
  const config = parsed.success ? mapped(parsed.data, merged, cwd, rules) : undefined;
  for (const rule of rules.across) {
    const problem = rule(config, merged);
    if (problem !== undefined) problems.push(problem);
  }
  if (config === undefined || problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** The nested config of the validated variables `e`. */
function mapped(e: z.output<ReturnType<typeof envSchema>>, env: Env, cwd: string, rules: SettingRules): Config {
  const isProduction = e.NODE_ENV === "production";
  return {
    nodeEnv: e.NODE_ENV,
    isProduction,
    host: e.HOST,
    port: e.PORT,
    dataDir: resolve(cwd, e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA,
    jwt: {
      secretKey: e.JWT_SECRET_KEY,
      previousSecretKeys: e.JWT_PREVIOUS_SECRET_KEYS,
      algorithm: e.JWT_ALGORITHM,
      privateKeyFile: e.JWT_PRIVATE_KEY_FILE === undefined ? undefined : resolve(cwd, e.JWT_PRIVATE_KEY_FILE),
      previousPublicKeyFiles: e.JWT_PREVIOUS_PUBLIC_KEY_FILES.map((f) => resolve(cwd, f)),
      accessTokenTtlSeconds: e.JWT_ACCESS_TOKEN_EXPIRES,
      refreshTokenTtlSeconds: e.JWT_REFRESH_TOKEN_EXPIRES,
      refreshTokenReuseIntervalMs: e.REFRESH_TOKEN_REUSE_INTERVAL,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
    },
    admin:
      e.ADMIN_USERNAME !== undefined && e.ADMIN_PASSWORD !== undefined
        ? { username: e.ADMIN_USERNAME, password: e.ADMIN_PASSWORD }
        : undefined,
    loginThrottle: {
      maxFailuresPerUserIp: e.LOGIN_MAX_FAILURES_PER_USER_IP,
      maxFailuresPerIp: e.LOGIN_MAX_FAILURES_PER_IP,
      windowSeconds: e.LOGIN_THROTTLE_WINDOW,
    },
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    databaseTimeoutMs: e.DATABASE_TIMEOUT,
    redisTimeoutMs: e.REDIS_TIMEOUT,
    floodLimits: {
      registrationsPerIpPerHour: e.REGISTER_MAX_PER_IP,
      postsPerUserPerHour: e.CREATE_POST_MAX_PER_USER,
    },
    // --- Issue 22 (writes) ---
    userBudgets: {
      postUpdatesPerHour: e.UPDATE_POST_MAX_PER_USER,
      loginsPerHour: e.LOGIN_MAX_PER_USER,
      refreshesPerHour: e.REFRESH_MAX_PER_USER,
      writesPerHour: e.WRITES_MAX_PER_USER,
      maxSessions: e.SESSIONS_MAX_PER_USER,
    },
    // --- end of issue 22 (writes) ---
    audit: { retentionSeconds: e.AUDIT_RETENTION },
    logLevel: e.LOG_LEVEL,
    queryLimits: {
      maxDepth: e.QUERY_MAX_DEPTH,
      maxAliases: e.QUERY_MAX_ALIASES,
      maxDirectives: e.QUERY_MAX_DIRECTIVES,
      maxTokens: e.QUERY_MAX_TOKENS,
      maxCost: e.QUERY_MAX_COST,
      maxCostInFlight: e.QUERY_MAX_COST_IN_FLIGHT,
    },
    // Issue 22, the size of an answer.
    responseMaxBytes: e.RESPONSE_MAX_BYTES,
    trustProxy: e.TRUST_PROXY,
    corsOrigins: e.CORS_ORIGINS.length > 0 ? e.CORS_ORIGINS : rules.defaults().corsOrigins(isProduction),
    metrics: { host: e.METRICS_HOST, port: e.METRICS_PORT },
    // Issue 22: HTTP connections and shutdown.
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
      maxBodyBytesInFlight: e.HTTP_MAX_BODY_BYTES_IN_FLIGHT,
      // A load balancer needs the drain in production; a developer's Ctrl-C and the tests do not.
      shutdownDrainMs: isSet(env, "SHUTDOWN_DRAIN")
        ? e.SHUTDOWN_DRAIN
        : isProduction
          ? rules.defaults().http.shutdownDrainMs
          : 0,
    },
    // Issue 22: WebSocket connections and subscriptions.
    subscriptions: {
      maxConnections: e.WS_MAX_CONNECTIONS,
      maxConnectionsPerIp: e.WS_MAX_CONNECTIONS_PER_IP,
      maxAnonymousConnections: e.WS_MAX_ANONYMOUS_CONNECTIONS,
      anonymousIdleMs: e.WS_ANONYMOUS_IDLE_TIMEOUT,
      maxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
      maxSubscriptionsPerIp: e.WS_MAX_SUBSCRIPTIONS_PER_IP,
      maxAnonymousSubscriptions: e.WS_MAX_ANONYMOUS_SUBSCRIPTIONS,
      maxSubscriptionsPerConnection: e.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      maxCost: e.SUBSCRIPTION_MAX_COST,
      deliveryConcurrency: e.SUBSCRIPTION_DELIVERY_CONCURRENCY,
      maxQueuedEvents: e.SUBSCRIPTION_MAX_QUEUED_EVENTS,
      maxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
    },
  };
}

function readDotEnv(cwd: string): Record<string, string> {
  const file = resolve(cwd, ".env");
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, "utf8")) as Record<string, string>;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Every variable this service reads; the tables of docs/configuration.md are checked against it. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema(ACCEPT_ALL).shape);
