import { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterSQLite,
} from "rate-limiter-flexible";

import type { Config } from "../config.js";
import type { DatabaseHandle } from "../db/database.js";
import { OutageLog, safeError } from "../db/unavailable.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";

/** One counter: `points` per `duration` seconds per key, with keys under `keyPrefix`. */
export interface CounterOptions {
  /** Distinguishes this counter's keys from every other counter's in the shared store. */
  keyPrefix: string;
  points: number;
  /** Window length in seconds; windows are fixed and start with the first point consumed. */
  duration: number;
  /** Database stores only: the table the counts live in (rate-limiter-flexible creates it when missing). */
  tableName: string;
}

/**
 * Where every rate limit of one app keeps its counters, so that all instances enforce one limit:
 * Redis when REDIS_URL is set (one connection per app, shared by every counter), otherwise the app's
 * own database. With Redis, each counter falls back to counting per instance while Redis fails or
 * is slower than REDIS_TIMEOUT (logged once per outage), never hanging or refusing everything.
 */
export interface CounterStore {
  /** Builds a counter (in the database, its table is created when missing). */
  counter(options: CounterOptions): Promise<RateLimiterAbstract>;
  /** Deletes counts whose window has passed from every database table in use (Redis expires keys itself). */
  clearExpired(): Promise<void>;
  /** Releases the Redis connection, if there is one. */
  close(): Promise<void>;
}

/**
 * Builds the {@link CounterStore} the configuration asks for. With REDIS_URL it connects here: an
 * unreachable Redis fails the start with a message naming REDIS_URL (never the URL itself).
 */
export async function createCounterStore(
  config: Pick<Config, "redisUrl" | "redisKeyPrefix" | "databaseSchema" | "redisTimeoutMs">,
  database: DatabaseHandle,
  logger: Logger,
  metrics: MetricsRecorder = NO_METRICS,
): Promise<CounterStore> {
  if (config.redisUrl)
    return redisCounterStore(config.redisUrl, config.redisKeyPrefix, config.redisTimeoutMs, logger, metrics);
  return databaseCounterStore(database, config.databaseSchema, logger);
}

async function redisCounterStore(
  url: string,
  keyPrefix: string,
  timeoutMs: number,
  logger: Logger,
  metrics: MetricsRecorder,
): Promise<CounterStore> {
  const outage = new OutageLog(logger, "Redis for the rate limits (counting per instance meanwhile)");
  const redis = await connectRedis(url, timeoutMs, outage);
  // A Redis that froze and thawed never reconnects, so 'ready' never says it is back: while the
  // fallback is in use, a ping a second finds out.
  const probe = setInterval(() => {
    if (outage.isDown && redis.status === "ready")
      redis.ping().then(
        () => outage.recovered(),
        () => undefined,
      );
  }, 1000);
  probe.unref();
  return {
    async counter({ keyPrefix: name, points, duration }) {
      return new RateLimiterRedis({
        points,
        duration,
        keyPrefix: `${keyPrefix}${name}`,
        storeClient: redis,
        // While Redis is unreachable, or slower than REDIS_TIMEOUT, each instance keeps counting on
        // its own rather than letting everything through, refusing everything or hanging.
        rejectIfRedisNotReady: true,
        insuranceLimiter: new FallbackLimiter({ points, duration }, outage, metrics),
      });
    },
    async clearExpired() {},
    async close() {
      clearInterval(probe);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

function databaseCounterStore(database: DatabaseHandle, schemaName: string | undefined, logger: Logger): CounterStore {
  const driver = database.driver;
  // One limiter per table is enough to sweep it: expired rows of every counter in it go at once.
  const sweepers = new Map<string, { clearExpired(beforeMs: number): Promise<void> }>();
  return {
    counter({ keyPrefix, points, duration, tableName }) {
      const store = { keyPrefix, points, duration, tableName, clearExpiredByTimeout: false };
      return new Promise<RateLimiterSQLite | RateLimiterPostgres>((resolve, reject) => {
        // Declared before `ready`, which the limiter calls back once its table exists.
        // eslint-disable-next-line prefer-const
        let limiter: RateLimiterSQLite | RateLimiterPostgres;
        const ready = (error?: Error) => {
          if (error) return reject(error);
          if (!sweepers.has(tableName))
            sweepers.set(tableName, limiter as unknown as { clearExpired(beforeMs: number): Promise<void> });
          resolve(limiter);
        };
        limiter =
          "sqlite" in driver
            ? // The app's own connection, not a second one: better-sqlite3 is synchronous, so a second
              // connection waiting on the first one's write lock would block the very event loop the
              // first one needs to commit. (An increment made while a Kysely transaction is open on
              // the connection joins it as a savepoint and commits with it.)
              new RateLimiterSQLite({ ...store, storeClient: driver.sqlite, storeType: "better-sqlite3" }, ready)
            : new RateLimiterPostgres({ ...store, storeClient: driver.pool, storeType: "pool", schemaName }, ready);
      });
    },
    async clearExpired() {
      for (const [tableName, sweeper] of sweepers) {
        try {
          await sweeper.clearExpired(Date.now());
        } catch (error) {
          logger.warn({ err: safeError(error), tableName }, "clearing expired rate-limit counters failed");
        }
      }
    },
    async close() {},
  };
}

/**
 * The per-instance counters a Redis limiter falls back to. rate-limiter-flexible calls it whenever a
 * Redis command fails or times out; each call marks the outage (logged once), and the outage ends
 * when Redis is ready again. Each call is counted in the metrics (rate_limit_fallbacks_total).
 */
class FallbackLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly outage: OutageLog,
    private readonly metrics: MetricsRecorder,
  ) {
    super(options);
  }

  override consume(...args: Parameters<RateLimiterMemory["consume"]>) {
    this.outage.failed(new Error("a Redis command failed or timed out"));
    this.metrics.rateLimitFallback();
    return super.consume(...args);
  }
}

/**
 * Connects to Redis for the counters. Commands are not queued while disconnected and each one gives
 * up after `timeoutMs` (REDIS_TIMEOUT), so a limiter falls back at once instead of hanging a request
 * behind a Redis that is down or frozen; connection trouble is logged once per outage, without the
 * URL (which may hold a password).
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
    throw new Error(
      `REDIS_URL: cannot connect to Redis for the rate limits (${(lastError ?? (error as Error)).message})`,
    );
  }
  return redis;
}
