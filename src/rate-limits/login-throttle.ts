import type { Logger } from "pino";
import { type RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

import type { Config } from "../config.js";
import { safeError } from "../db/unavailable.js";
import type { CounterStore } from "../rate-limits/counter-store.js";
import { normalizeUsername } from "../users/index.js";

/** The table rate-limiter-flexible keeps the counters in when they live in the app's database. */
export const LOGIN_THROTTLE_TABLE = "login_throttle";

/** Which limit refused a login: the username from this IP, or the IP as a whole. */
export type ThrottleLimit = "USER_IP" | "IP";

/** The outcome of {@link LoginThrottle.begin}. */
export type LoginAttempt =
  | {
      readonly allowed: true;
      /** The password was right: forget the pair's failures and give the IP its attempt back. */
      succeeded(): Promise<void>;
      /** No password was checked (the server was too busy): give the pair and the IP their attempt back. */
      notChecked(): Promise<void>;
    }
  | { readonly allowed: false; readonly limit: ThrottleLimit; readonly retryAfterSeconds: number };

/**
 * Counts failed logins per (lower-cased username, IP) and per IP in a store every instance shares,
 * so several instances enforce one limit. Each attempt is counted *before* the password is checked
 * (an atomic increment in the store, which is also the check), and given back when it succeeds:
 * parallel attempts cannot all pass a read-then-write check, and a throttled attempt costs no
 * argon2 work. Windows are fixed: they start with the first counted failure and last
 * LOGIN_THROTTLE_WINDOW.
 */
export class LoginThrottle {
  constructor(
    private readonly perUserIp: RateLimiterAbstract,
    private readonly perIp: RateLimiterAbstract,
    private readonly logger: Logger,
  ) {}

  /**
   * Counts one login attempt for `username` from `ip`. Refused (with the seconds until the window
   * ends) once the pair has had `maxFailuresPerUserIp` failures, or the IP `maxFailuresPerIp`,
   * within the window. Counts stay unless {@link LoginAttempt.succeeded} or `notChecked` is called. A database
   * store that fails makes this throw (the login then fails as an internal error): failing open
   * would switch brute-force protection off exactly when someone might be causing the outage. With
   * Redis, each instance counts on its own while Redis is unreachable.
   */
  async begin(username: string, ip: string): Promise<LoginAttempt> {
    const pairKey = `${normalizeUsername(username).slice(0, 64)}|${ip}`;
    try {
      await this.perUserIp.consume(pairKey);
    } catch (error) {
      if (error instanceof RateLimiterRes) return refused("USER_IP", error);
      throw error;
    }
    try {
      await this.perIp.consume(ip);
    } catch (error) {
      // No attempt is made, so the pair must not be charged for it.
      await this.perUserIp
        .reward(pairKey)
        .catch((e: unknown) => this.warn(e, "could not return a login attempt to its pair"));
      if (error instanceof RateLimiterRes) return refused("IP", error);
      throw error;
    }
    return {
      allowed: true,
      succeeded: async () => {
        await Promise.all([
          this.perUserIp
            .delete(pairKey)
            .catch((e: unknown) => this.warn(e, "could not reset the failed logins of a pair")),
          this.perIp.reward(ip).catch((e: unknown) => this.warn(e, "could not return a login attempt to its IP")),
        ]);
      },
      notChecked: async () => {
        await Promise.all([
          this.perUserIp
            .reward(pairKey)
            .catch((e: unknown) => this.warn(e, "could not return a login attempt to its pair")),
          this.perIp.reward(ip).catch((e: unknown) => this.warn(e, "could not return a login attempt to its IP")),
        ]);
      },
    };
  }

  private warn(error: unknown, message: string): void {
    this.logger.warn({ err: safeError(error) }, message);
  }
}

function refused(limit: ThrottleLimit, res: RateLimiterRes): LoginAttempt {
  return { allowed: false, limit, retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) };
}

/**
 * Builds the {@link LoginThrottle} the configuration asks for, on the app's {@link CounterStore}:
 * counters in Redis when REDIS_URL is set, otherwise in the app's own database, in the table
 * {@link LOGIN_THROTTLE_TABLE}.
 */
export async function createLoginThrottle(
  config: Pick<Config, "loginThrottle">,
  counters: CounterStore,
  logger: Logger,
): Promise<LoginThrottle> {
  const { maxFailuresPerUserIp, maxFailuresPerIp, windowSeconds } = config.loginThrottle;
  // One after the other: in the database, the first creates the table and the second finds it.
  const perUserIp = await counters.counter({
    keyPrefix: "login:user_ip",
    points: maxFailuresPerUserIp,
    duration: windowSeconds,
    tableName: LOGIN_THROTTLE_TABLE,
  });
  const perIp = await counters.counter({
    keyPrefix: "login:ip",
    points: maxFailuresPerIp,
    duration: windowSeconds,
    tableName: LOGIN_THROTTLE_TABLE,
  });
  return new LoginThrottle(perUserIp, perIp, logger);
}
