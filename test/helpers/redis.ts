import { Redis } from "ioredis";

/**
 * Redis for the login throttle's Redis suites: they run only when TEST_REDIS_URL is set, and then an
 * unreachable Redis fails them (never a skip), like TEST_DATABASE_URL for PostgreSQL.
 */
export const TEST_REDIS_URL: string | undefined = process.env.TEST_REDIS_URL || undefined;

/** Resolves when Redis at `url` answers PING; rejects with a message naming TEST_REDIS_URL otherwise. */
export async function assertRedisReachable(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
  });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    const why =
      process.env.CI === "true" ? "CI=true, so this fails instead of skipping" : "unset it to skip the Redis suites";
    throw new Error(`TEST_REDIS_URL is set but Redis there does not answer (${(error as Error).message}); ${why}`);
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under `prefix` (a suite's own REDIS_KEY_PREFIX). */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await redis.quit();
  }
}

/** The keys under `prefix`, sorted. */
export async function listRedisKeys(url: string, prefix: string): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return (await redis.keys(`${prefix}*`)).sort();
  } finally {
    await redis.quit();
  }
}
