// The rate limits' face: the counter store every limit counts in (part of the core), the flood limits
// and login throttle the features build on it, and the feature itself, which builds the one budget
// every feature shares (WRITES_MAX_PER_USER).
import { type Basics, defineFeature } from "../feature.js";
import { type CounterStore, createCounterStore } from "./counter-store.js";
import { createFloodLimit } from "./flood-limit.js";

export { type CounterOptions, type CounterStore, createCounterStore } from "./counter-store.js";
export { createFloodLimit, FLOOD_LIMITS_TABLE, FloodLimit, perSession } from "./flood-limit.js";
export { createLoginThrottle, LOGIN_THROTTLE_TABLE, type LoginAttempt, LoginThrottle } from "./login-throttle.js";

/**
 * One store (one Redis connection, or the app's database) for every rate limit of the app, closed by
 * the closer; its expired counts are cleared by the housekeeping. A CLI command is not rate limited,
 * so it needs no Redis.
 */
export async function buildCounters({
  config,
  background,
  database,
  logger,
  metrics,
  closer,
  housekeeping,
}: Basics): Promise<CounterStore> {
  const counters = await createCounterStore(
    background ? config : { ...config, redisUrl: undefined },
    database,
    logger,
    metrics,
  );
  closer.add("the rate-limit counters", () => counters.close());
  housekeeping.add(() => counters.clearExpired());
  return counters;
}

/** WRITES_MAX_PER_USER: the budget of every signed-in write, which every feature that writes charges. */
async function buildRateLimits({ config, counters, metrics }: Basics & { readonly counters: CounterStore }) {
  const writes = await createFloodLimit(
    counters,
    "writes:user",
    config.userBudgets.writesPerHour,
    "Too many changes were made by this account",
    () => metrics.rateLimited("WRITES_MAX_PER_USER"),
  );
  return { services: { writes }, resolvers: [] };
}

export const rateLimitsFeature = defineFeature({ name: "rate-limits", resolvers: [], build: buildRateLimits });
