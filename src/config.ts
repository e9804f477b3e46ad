import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
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

export const DEFAULT_HTTP_LIMITS = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1500,
  maxBodyBytesInFlight: 64 * 1024 * 1024,
  /** Production's drain; development and tests stop at once unless SHUTDOWN_DRAIN says otherwise. */
  shutdownDrainMs: 5_000,
});
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

export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = Object.freeze({
  maxConnections: 1000,
  maxConnectionsPerIp: 50,
  maxAnonymousConnections: 500,
  anonymousIdleMs: 60_000,
  maxSubscriptions: 2000,
  maxSubscriptionsPerIp: 200,
  maxAnonymousSubscriptions: 1000,
  maxSubscriptionsPerConnection: 20,
  maxCost: 100,
  deliveryConcurrency: 8,
  maxQueuedEvents: 20,
  maxBufferedBytes: 256 * 1024,
});
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

/**
 * Well above what this API's clients send, well below what abuse needs. Useful queries nest about
 * 6 levels (`me { posts { author { posts { … } } } }`). The cost prices text by its declared
 * maximum length (a post body 20, a title 1: src/graphql/query-cost.ts), so it bounds the size of
 * an answer as well as its count of values, and 12,000 is the cost of the largest ordinary query
 * in the tests: a page of 100 posts, each with its author and the author's 3 newest posts, every
 * field and `__typename` included, 100 × (2 + 25 + (2 + 5 + 3 × (2 + 25 + 1) + 1) + 1) = 12,000.
 * A plain page of 100 posts with every post and author field costs 3,200, and `posts(first: $n)
 * { author { posts(first: $n) { … { id } } } }` nested 8 deep runs with n = 7 (8,799, 2,401 ids)
 * and is refused with n = 8 (14,624). `post { author { posts(first: 40) { author { posts(first:
 * 40) { body } } } } }`, 1,600 bodies (32 MB) from a 125-byte request, costs 2 + 2 + 40 × (2 + 2 +
 * 40 × 22) = 35,364: refused. A body costs at least 20 wherever it is, so no answer within the
 * limit holds more than 600 bodies, and every answer at most 12,000 values and about 13 million
 * characters of text and keys (at most 1,000 of text and 99 of an alias per unit);
 * {@link DEFAULT_RESPONSE_MAX_BYTES} stops it well before that. Apollo Sandbox's introspection is
 * under 200 tokens, and its `__schema` part counts for neither depth nor cost. The token limit is
 * what refuses 600 repeated fields: no other rule counts a plain field selected again and again.
 */
export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxDepth: 10,
  maxAliases: 15,
  maxDirectives: 50,
  maxTokens: 500,
  maxCost: 12_000,
  // Three operations at the cost limit at once (about 12 MB of text each at most), or thousands of
  // ordinary ones: what they build together stays well inside npm start's heap (docs/limits.md).
  maxCostInFlight: 36_000,
});

/**
 * 4 MiB: twice a page of 100 posts with 20,000-character ASCII bodies (2 MB), and what the cost
 * cannot see stops here: characters of more than one byte (up to 3 in UTF-8), control characters
 * stored before they were refused (6 bytes each once escaped), emoji sequences that count as one
 * character, long aliases repeated in every item. The answer is measured before it is serialised,
 * so a refused one is never built. Measured with npm start's 96 MB heap (test/abuse/answer-size.test.ts
 * and its notes): 32 concurrent answers of 4 MB each held RSS near 150 MB (8 MiB answers: 370 MB).
 */
export const DEFAULT_RESPONSE_MAX_BYTES = 4 * 1024 * 1024;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Where Apollo's hosted Sandbox runs: allowed by CORS outside production so it can reach a local server. */
export const APOLLO_STUDIO_ORIGIN = "https://studio.apollographql.com";

/** Why `value` is not an exact browser origin (`https://host[:port]`), or undefined when it is one. */
export function originProblem(value: string): string | undefined {
  if (value === "*") return "lists exact origins; `*` is not accepted";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `has ${JSON.stringify(value)}, which is not an origin like https://app.example`;
  }
  // Not repeated: whatever follows the scheme may be a password.
  if (url.username !== "" || url.password !== "")
    return "has an entry with credentials in it; an origin is only scheme, host and port";
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `has ${JSON.stringify(value)}, which is not an http or https origin`;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return `has ${JSON.stringify(value)}, which is not an origin: it has a path, query or fragment (write ${url.origin})`;
  }
  if (url.origin !== value) {
    // A trailing slash, upper case or a default port: browsers send an origin in one serialized
    // form and the comparison is exact, so name that form.
    return `has ${JSON.stringify(value)}, which browsers never send; write it as ${url.origin}`;
  }
  return undefined;
}

// proxy-addr's names for the loopback, link-local and private ranges (IPv4 and IPv6).
const PROXY_RANGE_NAMES = ["loopback", "linklocal", "uniquelocal"];

/** Whether `value` is an IP address, a CIDR range (`10.0.0.0/8`, `fd00::/8`) or one of proxy-addr's range names. */
function isProxyAddress(value: string): boolean {
  if (PROXY_RANGE_NAMES.includes(value) || isIP(value) !== 0) return true;
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(value);
  if (!cidr) return false;
  const version = isIP(cidr[1]!);
  return version !== 0 && Number(cidr[2]) <= (version === 4 ? 32 : 128);
}

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

/** A positive whole number, with a default. */
function positiveInteger(defaultValue: number) {
  return z
    .string()
    .default(String(defaultValue))
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
function durationMs(defaultValue: string, maxMs: number, options: { zeroAllowed?: boolean } = {}) {
  return z
    .string()
    .default(defaultValue)
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
 * The checks whose owners live elsewhere (the secret rule in access/, the account rules in
 * users/), passed in by load-config.ts, so that this module depends on nothing of the app. Each
 * returns why a value is refused, or undefined.
 */
export interface SettingRules {
  secret(value: string): string | undefined;
  username(value: string): string | undefined;
  password(value: string): string | undefined;
}

const ACCEPT_ALL: SettingRules = { secret: () => undefined, username: () => undefined, password: () => undefined };

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
    QUERY_MAX_DEPTH: positiveInteger(DEFAULT_QUERY_LIMITS.maxDepth),
    QUERY_MAX_ALIASES: positiveInteger(DEFAULT_QUERY_LIMITS.maxAliases),
    QUERY_MAX_DIRECTIVES: positiveInteger(DEFAULT_QUERY_LIMITS.maxDirectives),
    QUERY_MAX_TOKENS: positiveInteger(DEFAULT_QUERY_LIMITS.maxTokens),
    QUERY_MAX_COST: positiveInteger(DEFAULT_QUERY_LIMITS.maxCost),
    QUERY_MAX_COST_IN_FLIGHT: positiveInteger(DEFAULT_QUERY_LIMITS.maxCostInFlight),
    // Issue 22, the size of an answer.
    RESPONSE_MAX_BYTES: positiveInteger(DEFAULT_RESPONSE_MAX_BYTES).refine(
      (v) => v >= 1024,
      "must be at least 1024 (bytes; the refusal itself takes a few hundred)",
    ),
    TRUST_PROXY: optionalText.transform((v, ctx): boolean | string[] => {
      const value = v?.trim().toLowerCase();
      if (value === undefined || value === "false") return false;
      if (value === "true") return true;
      if (/^\d+$/.test(value)) {
        // Fastify 5.12.1 dropped hop counts (they cannot tell a proxy from a client that connects
        // directly and writes its own X-Forwarded-For) and quietly trusts nobody instead: say so.
        ctx.addIssue({
          code: "custom",
          message:
            "cannot be a hop count; list the proxies' addresses or CIDR ranges instead (e.g. 10.0.0.0/8 or uniquelocal)",
        });
        return z.NEVER;
      }
      const entries = value
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "");
      for (const entry of entries.filter((e) => !isProxyAddress(e))) {
        ctx.addIssue({
          code: "custom",
          message: `has ${JSON.stringify(entry)}: expected true, false, or IP addresses and CIDR ranges (e.g. 10.0.0.0/8) separated by commas`,
        });
      }
      return entries;
    }),
    CORS_ORIGINS: list().superRefine((origins, ctx) => {
      for (const origin of origins) {
        const problem = originProblem(origin);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }
    }),
    // Issue 22: HTTP connections and shutdown (HttpLimits).
    HTTP_HEADERS_TIMEOUT: durationMs(`${DEFAULT_HTTP_LIMITS.headersTimeoutMs / 1000}s`, 600_000),
    HTTP_REQUEST_TIMEOUT: durationMs(`${DEFAULT_HTTP_LIMITS.requestTimeoutMs / 1000}s`, 600_000),
    HTTP_KEEP_ALIVE_TIMEOUT: durationMs(`${DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs / 1000}s`, 600_000),
    HTTP_MAX_CONNECTIONS: positiveInteger(DEFAULT_HTTP_LIMITS.maxConnections),
    HTTP_MAX_BODY_BYTES_IN_FLIGHT: positiveInteger(DEFAULT_HTTP_LIMITS.maxBodyBytesInFlight),
    SHUTDOWN_DRAIN: durationMs("0s", 300_000, { zeroAllowed: true }),
    // Issue 22: WebSocket connections and subscriptions (SubscriptionLimits).
    WS_MAX_CONNECTIONS: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxConnections),
    WS_MAX_CONNECTIONS_PER_IP: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxConnectionsPerIp),
    WS_MAX_ANONYMOUS_CONNECTIONS: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxAnonymousConnections),
    WS_ANONYMOUS_IDLE_TIMEOUT: durationMs(`${DEFAULT_SUBSCRIPTION_LIMITS.anonymousIdleMs / 1000}s`, 86_400_000),
    WS_MAX_SUBSCRIPTIONS: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxSubscriptions),
    WS_MAX_SUBSCRIPTIONS_PER_IP: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxSubscriptionsPerIp),
    WS_MAX_ANONYMOUS_SUBSCRIPTIONS: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxAnonymousSubscriptions),
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxSubscriptionsPerConnection),
    WS_MAX_BUFFERED_BYTES: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxBufferedBytes),
    SUBSCRIPTION_MAX_COST: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxCost),
    SUBSCRIPTION_DELIVERY_CONCURRENCY: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.deliveryConcurrency),
    SUBSCRIPTION_MAX_QUEUED_EVENTS: positiveInteger(DEFAULT_SUBSCRIPTION_LIMITS.maxQueuedEvents),
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
  // Rules across variables are checked on the raw values too, so that one invalid variable does
  // not hide them: every problem is reported at once.
  const isSet = (name: string) => (merged[name] ?? "").trim() !== "";
  if (parsed.success && parsed.data.JWT_REFRESH_TOKEN_EXPIRES < parsed.data.JWT_ACCESS_TOKEN_EXPIRES) {
    problems.push("JWT_REFRESH_TOKEN_EXPIRES must not be shorter than JWT_ACCESS_TOKEN_EXPIRES");
  }
  if (parsed.success && parsed.data.METRICS_PORT !== 0 && parsed.data.METRICS_PORT === parsed.data.PORT) {
    problems.push(
      "METRICS_PORT must differ from PORT: metrics are never served on the public port (0 switches them off)",
    );
  }
  const algorithm = merged.JWT_ALGORITHM ?? "HS256";
  if (merged.NODE_ENV === "production" && algorithm === "HS256" && !isSet("JWT_SECRET_KEY")) {
    problems.push(
      "JWT_SECRET_KEY is required when NODE_ENV=production (at least 32 random bytes, e.g. `openssl rand -base64 48`)",
    );
  }
  if (
    merged.NODE_ENV === "production" &&
    (algorithm === "RS256" || algorithm === "ES256") &&
    !isSet("JWT_PRIVATE_KEY_FILE")
  ) {
    // Generated keys in a production DATA_DIR work on one machine, but every instance must share
    // them: say so rather than let a second instance mint tokens the first cannot verify.
    problems.push(`JWT_PRIVATE_KEY_FILE is required when NODE_ENV=production and JWT_ALGORITHM=${algorithm}`);
  }
  if (parsed.success && parsed.data.QUERY_MAX_COST_IN_FLIGHT < parsed.data.QUERY_MAX_COST) {
    problems.push(
      "QUERY_MAX_COST_IN_FLIGHT must be at least QUERY_MAX_COST (an operation at the cost limit must be able to run)",
    );
  }
  if (parsed.success && parsed.data.HTTP_HEADERS_TIMEOUT > parsed.data.HTTP_REQUEST_TIMEOUT) {
    problems.push(
      "HTTP_HEADERS_TIMEOUT must not be longer than HTTP_REQUEST_TIMEOUT (the headers are part of the request)",
    );
  }
  if (isSet("ADMIN_USERNAME") !== isSet("ADMIN_PASSWORD")) {
    problems.push("ADMIN_USERNAME and ADMIN_PASSWORD must be set together");
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const e = parsed.data;
  const isProduction = e.NODE_ENV === "production";

  return deepFreeze({
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
    // Outside production the hosted Sandbox may call a local server; production allows no origin
    // unless told, so a browser page elsewhere can never read the API's responses by default.
    corsOrigins: e.CORS_ORIGINS.length > 0 ? e.CORS_ORIGINS : isProduction ? [] : [APOLLO_STUDIO_ORIGIN],
    metrics: { host: e.METRICS_HOST, port: e.METRICS_PORT },
    // Issue 22: HTTP connections and shutdown.
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
      maxBodyBytesInFlight: e.HTTP_MAX_BODY_BYTES_IN_FLIGHT,
      // A load balancer needs the drain in production; a developer's Ctrl-C and the tests do not.
      shutdownDrainMs: isSet("SHUTDOWN_DRAIN")
        ? e.SHUTDOWN_DRAIN
        : isProduction
          ? DEFAULT_HTTP_LIMITS.shutdownDrainMs
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
  });
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
