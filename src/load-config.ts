import { weakSecretReason } from "./access/secrets.js";
import { type Config, readConfig } from "./config.js";
import { checkPasswordRules, checkUsernameRules } from "./users/account-rules.js";

/**
 * Reads and validates the configuration from `env` (default `process.env`) merged over a `.env`
 * file in `cwd` (default the working directory), with each rule from the module that owns it: the
 * JWT secrets' strength from access/secrets.ts, ADMIN_USERNAME and ADMIN_PASSWORD from
 * users/account-rules.ts. Throws ConfigError listing every problem at once.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): Config {
  return readConfig(env, cwd, { secret: weakSecretReason, username: checkUsernameRules, password: checkPasswordRules });
}
