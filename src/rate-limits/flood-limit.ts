import { type RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

import { RateLimitedError } from "../errors.js";
import type { CounterStore } from "./counter-store.js";

/** The database table the flood limits' counters live in when they are not in Redis. */
export const FLOOD_LIMITS_TABLE = "flood_limits";

/** The window of every flood limit: REGISTER_MAX_PER_IP, CREATE_POST_MAX_PER_USER and the others are per hour. */
export const FLOOD_WINDOW_SECONDS = 60 * 60;

/**
 * A budget of writes per key (a client IP, a user) per hour, such as REGISTER_MAX_PER_IP. Only
 * writes that succeed are charged, and the check cannot be raced: {@link spend} takes a unit with
 * one atomic increment *before* the work, and gives it back when the work fails. So parallel
 * requests cannot all pass a read-then-write check, and a refused one costs no work at all.
 */
export class FloodLimit {
  /** `limiter` undefined: the limit is switched off (`0`), everything passes. */
  constructor(
    private readonly limiter: RateLimiterAbstract | undefined,
    /** What the refusal says before "Try again in N seconds.", e.g. "Too many registrations from this address". */
    private readonly message: string,
    /** Told of every refusal, for the metrics; must not throw. */
    private readonly onRefused: () => void = () => undefined,
  ) {}

  /**
   * Runs `work` charged to `key`. Throws {@link RateLimitedError} (with `retryAfter`, the seconds
   * until the window ends) without running it when the key's budget is spent; when `work` throws,
   * its unit is returned and the error rethrown. A store that fails makes this throw.
   */
  async spend<T>(key: string, work: () => Promise<T>): Promise<T> {
    const limiter = this.limiter;
    if (!limiter) return work();
    await this.charge(key);
    try {
      return await work();
    } catch (error) {
      // Failed work (a taken username, an outage) must not use up the budget. A refund that fails
      // leaves the unit spent, which errs on the side of the limit.
      await limiter.reward(key).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Takes one unit from `key`'s budget for an attempt that costs whatever its outcome (a password
   * check: a wrong password costs the same argon2 work as a right one), with no refund. Throws
   * {@link RateLimitedError} when the budget is spent; a store that fails makes this throw.
   */
  async charge(key: string): Promise<void> {
    if (!this.limiter) return;
    try {
      await this.limiter.consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        this.onRefused();
        throw new RateLimitedError(Math.max(1, Math.ceil(error.msBeforeNext / 1000)), this.message);
      }
      throw error;
    }
  }

  /**
   * Gives back a unit {@link charge} took, for an attempt the service turned away before doing its
   * work (SERVICE_UNAVAILABLE: the password queue was full, a dependency did not answer), which the
   * client may retry at once. A refund that fails leaves the unit spent, erring on the side of the limit.
   */
  async refund(key: string): Promise<void> {
    await this.limiter?.reward(key).catch(() => undefined);
  }
}

/**
 * The key that charges a write to the caller's session rather than to their account: for the writes
 * that take control back (logout, revokeSession, revokeApiToken, changePassword, deleteAccount), so
 * that someone holding a stolen token of the account cannot use up the budget the owner needs to
 * end that token. Sessions per account are bounded (SESSIONS_MAX_PER_USER, LOGIN_MAX_PER_USER).
 */
export function perSession(sessionId: string): string {
  return `session:${sessionId}`;
}

/**
 * Builds a {@link FloodLimit} of `perHour` writes per key per hour on the app's counters; `0`
 * switches it off. `name` keeps its keys apart from other limits' (`register:ip`, `post:user`);
 * `onRefused` (default: nothing) is told of every refusal.
 */
export async function createFloodLimit(
  counters: CounterStore,
  name: string,
  perHour: number,
  message: string,
  onRefused?: () => void,
): Promise<FloodLimit> {
  if (perHour === 0) return new FloodLimit(undefined, message);
  const limiter = await counters.counter({
    keyPrefix: name,
    points: perHour,
    duration: FLOOD_WINDOW_SECONDS,
    tableName: FLOOD_LIMITS_TABLE,
  });
  return new FloodLimit(limiter, message, onRefused);
}
