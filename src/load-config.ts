import { productionKeyProblem } from "./access/keys.js";
import { weakSecretReason } from "./access/secrets.js";
import { tokenLifetimeProblem } from "./access/tokens.js";
import { type Config, metricsPortProblem, readConfig, type SettingRules } from "./config.js";
import { costInFlightProblem, DEFAULT_QUERY_LIMITS } from "./graphql/query-limits.js";
import { DEFAULT_RESPONSE_MAX_BYTES } from "./graphql/response-size.js";
import { DEFAULT_HTTP_LIMITS, headersTimeoutProblem } from "./http/connections.js";
import { defaultCorsOrigins, originProblem } from "./http/cors.js";
import { readTrustProxy } from "./http/request-info.js";
import { DEFAULT_SUBSCRIPTION_LIMITS } from "./http/ws/server.js";
import { adminPairProblem, checkPasswordRules, checkUsernameRules, DEFAULT_PASSWORD_QUEUE_MAX } from "./users/index.js";

/** Each setting's rules and owned defaults, from the module that owns them. */
export const SETTING_RULES: SettingRules = {
  secret: weakSecretReason,
  username: checkUsernameRules,
  password: checkPasswordRules,
  origin: originProblem,
  trustProxy: readTrustProxy,
  defaults: () => ({
    queryLimits: DEFAULT_QUERY_LIMITS,
    responseMaxBytes: DEFAULT_RESPONSE_MAX_BYTES,
    passwordQueueMax: DEFAULT_PASSWORD_QUEUE_MAX,
    http: DEFAULT_HTTP_LIMITS,
    subscriptions: DEFAULT_SUBSCRIPTION_LIMITS,
    corsOrigins: defaultCorsOrigins,
  }),
  across: [
    tokenLifetimeProblem,
    metricsPortProblem,
    productionKeyProblem,
    costInFlightProblem,
    headersTimeoutProblem,
    adminPairProblem,
  ],
};

/**
 * Reads and validates the configuration from `env` (default `process.env`) merged over a `.env`
 * file in `cwd` (default the working directory), with each rule from the module that owns it: the
 * JWT secrets' strength from access/secrets.ts, ADMIN_USERNAME and ADMIN_PASSWORD from
 * users/account-rules.ts, CORS_ORIGINS and TRUST_PROXY from http/, and the defaults of the query,
 * answer, password-queue, HTTP and WebSocket limits from the modules that enforce them. Throws ConfigError listing
 * every problem at once.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): Config {
  return readConfig(env, cwd, SETTING_RULES);
}
