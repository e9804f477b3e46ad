import type { Logger } from "pino";
import { type RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

import type { ClientInfo } from "../access/principal.js";
import { AuditEventType, type AuditService } from "../audit/index.js";
import { safeError } from "../db/unavailable.js";
import { RateLimitedError } from "../errors.js";
import type { MfaMethod } from "../metric-names.js";
import type { MetricsRecorder } from "../metrics.js";
import { type CounterStore, LOGIN_THROTTLE_TABLE } from "../rate-limits/index.js";

/** Wrong codes one challenge (a session owing its second factor, or stepping up) may send per window. */
export const MFA_FAILURES_PER_CHALLENGE = 5;
/** Wrong codes per account per window, over every session and resetPassword together. */
export const MFA_FAILURES_PER_USER = 10;
/** The window of both: 15 minutes, fixed from the first counted attempt. */
export const MFA_FAILURE_WINDOW_SECONDS = 15 * 60;

/** One attempt let through: call `succeeded` when the code was right, to give the attempt back. */
export interface MfaAttempt {
  succeeded(): Promise<void>;
}

/** Who is sending a code, for the keys, the audit row and the metrics. */
export interface MfaAttemptOf {
  readonly userId: string;
  /** The session sending it (the challenge); undefined for resetPassword, counted per account only. */
  readonly sessionId?: string;
  /** What the code looks like, for the metrics: totp (6 digits) or recovery. */
  readonly kind: MfaMethod;
  readonly client: ClientInfo;
}

/**
 * Wrong second-factor codes, counted in the login throttle's store (Redis or the database, shared
 * by every instance) per user id, so a user's names and addresses share one count, and per
 * session. Each attempt is counted before the code is checked (one atomic increment, which is also
 * the check: parallel guesses cannot all pass) and given back when the code was right. Past a
 * limit: RATE_LIMITED with `retryAfter`, MFA_FAILED audited coalesced (reason THROTTLED), counted.
 */
export class MfaThrottle {
  constructor(
    private readonly perChallenge: RateLimiterAbstract,
    private readonly perUser: RateLimiterAbstract,
    private readonly audit: AuditService,
    private readonly metrics: MetricsRecorder,
    private readonly logger: Logger,
  ) {}

  /** Counts one attempt; throws RATE_LIMITED (counting nothing) when either budget is spent. */
  async begin(of: MfaAttemptOf): Promise<MfaAttempt> {
    const challenge = of.sessionId;
    if (challenge !== undefined) await this.consume(this.perChallenge, challenge, of, "MFA_FAILURES_PER_CHALLENGE");
    try {
      await this.consume(this.perUser, of.userId, of, "MFA_FAILURES_PER_USER");
    } catch (error) {
      if (challenge !== undefined) await this.giveBack(this.perChallenge, challenge);
      throw error;
    }
    return {
      succeeded: async () => {
        if (challenge !== undefined) await this.giveBack(this.perChallenge, challenge);
        await this.giveBack(this.perUser, of.userId);
      },
    };
  }

  private async consume(
    limiter: RateLimiterAbstract,
    key: string,
    of: MfaAttemptOf,
    limit: "MFA_FAILURES_PER_CHALLENGE" | "MFA_FAILURES_PER_USER",
  ): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      this.metrics.rateLimited(limit);
      this.metrics.mfa(of.kind, "throttled");
      // Repeats come in floods: one row per user, session and limit a minute, with a count.
      this.audit.recordCoalesced(
        { type: AuditEventType.MFA_FAILED, userId: of.userId, sessionId: of.sessionId, client: of.client },
        { reason: "THROTTLED", limit },
      );
      throw new RateLimitedError(Math.max(1, Math.ceil(error.msBeforeNext / 1000)), "Too many wrong codes");
    }
  }

  private async giveBack(limiter: RateLimiterAbstract, key: string): Promise<void> {
    await limiter.reward(key).catch((e: unknown) => {
      this.logger.warn({ err: safeError(e) }, "could not give a second-factor attempt back");
    });
  }
}

/** Builds the {@link MfaThrottle} on the app's counters, in the login throttle's table. */
export async function createMfaThrottle(
  counters: CounterStore,
  audit: AuditService,
  metrics: MetricsRecorder,
  logger: Logger,
): Promise<MfaThrottle> {
  const options = { duration: MFA_FAILURE_WINDOW_SECONDS, tableName: LOGIN_THROTTLE_TABLE };
  // One after the other: in the database, the first may create the table the second finds.
  const perChallenge = await counters.counter({
    ...options,
    keyPrefix: "mfa:session",
    points: MFA_FAILURES_PER_CHALLENGE,
  });
  const perUser = await counters.counter({ ...options, keyPrefix: "mfa:user", points: MFA_FAILURES_PER_USER });
  return new MfaThrottle(perChallenge, perUser, audit, metrics, logger);
}
