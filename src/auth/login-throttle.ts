import { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
  RateLimiterSQLite,
} from "rate-limiter-flexible";

import type { Config } from "../config.js";
import type { DatabaseHandle } from "../db/database.js";
import { OutageLog, safeError } from "../db/unavailable.js";
import { normalizeUsername } from "../users/user.store.js";

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
    private readonly hooks: { clearExpired?: () => Promise<void>; close?: () => Promise<void> } = {},
  ) {}

  /**
   * Counts one login attempt for `username` from `ip`. Refused (with the seconds until the window
   * ends) once the pair has had `maxFailuresPerUserIp` failures, or the IP `maxFailuresPerIp`,
   * within the window. Counts stay unless {@link LoginAttempt.succeeded} is called. A database
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
      await this.perUserIp.reward(pairKey).catch((e: unknown) => this.warn(e, "could not return a login attempt to its pair"));
      if (error instanceof RateLimiterRes) return refused("IP", error);
      throw error;
    }
    return {
      allowed: true,
      succeeded: async () => {
        await Promise.all([
          this.perUserIp.delete(pairKey).catch((e: unknown) => this.warn(e, "could not reset the failed logins of a pair")),
          this.perIp.reward(ip).catch((e: unknown) => this.warn(e, "could not return a login attempt to its IP")),
        ]);
      },
    };
  }

  /** Deletes counters whose window has passed (database stores; Redis expires keys by itself). */
  async clearExpired(): Promise<void> {
    try {
      await this.hooks.clearExpired?.();
    } catch (error) {
      this.warn(error, "clearing expired login throttle counters failed");
    }
  }

  /** Releases the store's own connection, if it has one (Redis). */
  async close(): Promise<void> {
    await this.hooks.close?.();
  }

  private warn(error: unknown, message: string): void {
    this.logger.warn({ err: safeError(error) }, message);
  }
}

function refused(limit: ThrottleLimit, res: RateLimiterRes): LoginAttempt {
  return { allowed: false, limit, retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) };
}

/**
 * Builds the {@link LoginThrottle} the configuration asks for: counters in Redis when REDIS_URL is
 * set (connected here; an unreachable Redis fails the start), otherwise in the app's own database,
 * in the table {@link LOGIN_THROTTLE_TABLE}, which rate-limiter-flexible creates when missing.
 */
export async function createLoginThrottle(
  config: Pick<Config, "loginThrottle" | "redisUrl" | "redisKeyPrefix" | "databaseSchema" | "redisTimeoutMs">,
  database: DatabaseHandle,
  logger: Logger,
): Promise<LoginThrottle> {
  const { maxFailuresPerUserIp, maxFailuresPerIp, windowSeconds } = config.loginThrottle;
  const limits = [
    { keyPrefix: "user_ip", points: maxFailuresPerUserIp, duration: windowSeconds },
    { keyPrefix: "ip", points: maxFailuresPerIp, duration: windowSeconds },
  ] as const;

  if (config.redisUrl) {
    const outage = new OutageLog(logger, "Redis for the login throttle (counting per instance meanwhile)");
    const redis = await connectRedis(config.redisUrl, config.redisTimeoutMs, outage);
    const limiter = (limit: (typeof limits)[number]) =>
      new RateLimiterRedis({
        ...limit,
        keyPrefix: `${config.redisKeyPrefix}login:${limit.keyPrefix}`,
        storeClient: redis,
        // While Redis is unreachable, or slower than REDIS_TIMEOUT, each instance keeps counting on
        // its own rather than letting every attempt through, refusing every login or hanging them.
        rejectIfRedisNotReady: true,
        insuranceLimiter: new FallbackLimiter({ ...limit }, outage),
      });
    const perUserIp = limiter(limits[0]);
    const perIp = limiter(limits[1]);
    // A Redis that froze and thawed never reconnects, so 'ready' never says it is back: while the
    // fallback is in use, a ping a second finds out.
    const probe = setInterval(() => {
      if (outage.isDown && redis.status === "ready") redis.ping().then(() => outage.recovered(), () => undefined);
    }, 1000);
    probe.unref();
    return new LoginThrottle(perUserIp, perIp, logger, {
      close: async () => {
        clearInterval(probe);
        await redis.quit().catch(() => redis.disconnect());
      },
    });
  }

  const driver = database.driver;
  const store = { tableName: LOGIN_THROTTLE_TABLE, clearExpiredByTimeout: false };
  // The table is created by the first limiter; the second one finds it.
  const build = (limit: (typeof limits)[number]) =>
    new Promise<RateLimiterSQLite | RateLimiterPostgres>((resolve, reject) => {
      let limiter: RateLimiterSQLite | RateLimiterPostgres;
      const ready = (error?: Error) => (error ? reject(error) : resolve(limiter));
      limiter =
        "sqlite" in driver
          ? // The app's own connection, not a second one: better-sqlite3 is synchronous, so a second
            // connection waiting on the first one's write lock would block the very event loop the
            // first one needs to commit. (An increment made while a Kysely transaction is open on
            // the connection joins it as a savepoint and commits with it.)
            new RateLimiterSQLite({ ...limit, ...store, storeClient: driver.sqlite, storeType: "better-sqlite3" }, ready)
          : new RateLimiterPostgres({ ...limit, ...store, storeClient: driver.pool, storeType: "pool", schemaName: config.databaseSchema }, ready);
    });
  const perUserIp = await build(limits[0]);
  const perIp = await build(limits[1]);
  // Both limiters share the table, so one sweep clears both.
  const sweepable = perUserIp as unknown as { clearExpired(beforeMs: number): Promise<void> };
  return new LoginThrottle(perUserIp, perIp, logger, { clearExpired: () => sweepable.clearExpired(Date.now()) });
}

/**
 * The per-instance counters a Redis limiter falls back to. rate-limiter-flexible calls it whenever a
 * Redis command fails or times out; each call marks the outage (logged once), and the outage ends
 * when Redis is ready again.
 */
class FallbackLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly outage: OutageLog,
  ) {
    super(options);
  }

  override consume(...args: Parameters<RateLimiterMemory["consume"]>) {
    this.outage.failed(new Error("a Redis command failed or timed out"));
    return super.consume(...args);
  }
}

/**
 * Connects to Redis for the throttle's counters. Commands are not queued while disconnected and each
 * one gives up after `timeoutMs` (REDIS_TIMEOUT), so the limiter falls back at once instead of
 * hanging a login behind a Redis that is down or frozen; connection trouble is logged once per
 * outage, without the URL (which may hold a password).
 */
async function connectRedis(url: string, timeoutMs: number, outage: OutageLog): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(timeoutMs, 1000),
    commandTimeout: timeoutMs,
    // Reconnect soon after an outage, then at most every two seconds.
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2000),
  });
  let lastError: Error | undefined;
  redis.on("error", (error: Error) => {
    lastError = error;
    outage.failed(error);
  });
  redis.on("ready", () => outage.recovered());
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`REDIS_URL: cannot connect to Redis for the login throttle (${(lastError ?? (error as Error)).message})`);
  }
  return redis;
}
