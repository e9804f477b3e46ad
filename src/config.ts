import { resolve } from "node:path";

import { z } from "zod";

import {
  adminSettings,
  databaseSettings,
  type Defaults,
  emailSettings,
  floodLimitSettings,
  httpSettings,
  jwtSettings,
  MAX_TIMEOUT_MS,
  metricsSettings,
  type Owned,
  queryLimitSettings,
  redisSettings,
  signInSettings,
  subscriptionSettings,
  userBudgetSettings,
} from "./config-groups.js";
import { mfaSettings } from "./config-mfa.js";
import { surfaceSettings } from "./config-surface.js";
import {
  count,
  deepFreeze,
  type DeepReadonly,
  type EnvVariable,
  list,
  milliseconds,
  port,
  readDotEnv,
  readEnv,
  readWith,
  seconds,
  text,
  variable,
  variablesOf,
} from "./env-schema.js";

export { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "./config-groups.js";

// The configuration is declared once, in configSchema below (its groups in config-groups.ts): each
// setting is an environment variable with its parser, default and description, placed where the
// config holds it. The type (Config), the validation and the mapping from variable names to the
// nested object all derive from it, and test/readme.test.ts checks docs/configuration.md against it.

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

/** Defaults chosen by the modules that enforce them. */
export interface OwnedDefaults {
  readonly queryLimits: Defaults<typeof queryLimitSettings>; // graphql/query-limits.ts
  readonly responseMaxBytes: number; // graphql/response-size.ts
  readonly passwordQueueMax: number; // users/passwords.ts
  readonly http: Defaults<typeof httpSettings>; // http/connections.ts; shutdownDrainMs in production only
  readonly subscriptions: Defaults<typeof subscriptionSettings>; // http/ws/server.ts
  /** CORS_ORIGINS when unset or empty (http/cors.ts). */
  readonly corsOrigins: (isProduction: boolean) => readonly string[];
}

const MODES = ["development", "production", "test"] as const;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** The configuration, declared once: the variable, parser, default and description of every setting. */
function configSchema(rules: SettingRules, cwd: string) {
  const owned = rules.defaults;
  // A group's defaults by key (its keys are the group's own, so every one is there).
  const ownedOf = (group: "queryLimits" | "http" | "subscriptions"): Owned => {
    return (key) => (owned()[group] as Readonly<Record<string, number>>)[key] ?? Number.NaN;
  };
  const path = (p: string) => resolve(cwd, p);
  return z
    .object({
      nodeEnv: variable("NODE_ENV", z.enum(MODES).default("development"), "production hardens; test is development"),
      host: variable("HOST", text("0.0.0.0"), "the public port's address"),
      port: variable("PORT", port("4000", "must be a port number from 0 to 65535"), "the public port"),
      dataDir: variable("DATA_DIR", text("./data").transform(path), "SQLite, generated keys and secret"),
      ...databaseSettings(),
      jwt: jwtSettings(rules.secret, path),
      admin: adminSettings(rules.username, rules.password),
      ...signInSettings(() => owned().passwordQueueMax),
      ...redisSettings(),
      databaseTimeoutMs: variable("DATABASE_TIMEOUT", milliseconds("5s", MAX_TIMEOUT_MS), "longest database wait"),
      redisTimeoutMs: variable("REDIS_TIMEOUT", milliseconds("500ms", 60_000), "longest wait for a Redis command"),
      floodLimits: floodLimitSettings(),
      userBudgets: userBudgetSettings(),
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
      metrics: metricsSettings(),
      http: httpSettings(ownedOf("http")),
      subscriptions: subscriptionSettings(ownedOf("subscriptions")),
      email: emailSettings(),
      mfa: mfaSettings(rules.origin),
      surface: surfaceSettings(path),
    })
    .transform(({ http, email, mfa, ...config }) => {
      const isProduction = config.nodeEnv === "production";
      const { shutdownDrainMs } = http;
      return {
        ...config,
        isProduction,
        email: withLinkDefaults(email, config.port),
        mfa: withWebauthnDefaults(mfa, withLinkDefaults(email, config.port).publicUrl),
        corsOrigins: config.corsOrigins.length > 0 ? config.corsOrigins : [...owned().corsOrigins(isProduction)],
        // A load balancer needs the drain in production; a developer's Ctrl-C and the tests do not.
        http: { ...http, shutdownDrainMs: shutdownDrainMs ?? (isProduction ? owned().http.shutdownDrainMs : 0) },
      };
    });
}

/**
 * PUBLIC_URL defaults to this machine on PORT, and the two link templates to the pages this server
 * serves under it; a trailing slash of PUBLIC_URL is dropped so that paths join it cleanly.
 */
function withLinkDefaults<E extends { publicUrl?: string; passwordResetUrl?: string; verificationUrl?: string }>(
  email: E,
  port: number,
) {
  const publicUrl = (email.publicUrl ?? `http://localhost:${port}`).replace(/\/+$/, "");
  return {
    ...email,
    publicUrl,
    passwordResetUrl: email.passwordResetUrl ?? `${publicUrl}/reset-password#token={token}`,
    verificationUrl: email.verificationUrl ?? `${publicUrl}/verify-email#token={token}`,
  };
}

/** WEBAUTHN_RP_ID defaults to PUBLIC_URL's host name, WEBAUTHN_ORIGINS to its origin. */
function withWebauthnDefaults<M extends { rpId?: string; origins: string[] }>(mfa: M, publicUrl: string) {
  const url = new URL(publicUrl);
  return { ...mfa, rpId: mfa.rpId ?? url.hostname, origins: mfa.origins.length > 0 ? mfa.origins : [url.origin] };
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
