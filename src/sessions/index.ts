// The sessions feature's face: sessions and their refresh tokens (starting, refreshing, listing,
// ending, pruning), the AuthPayload sign-ins return, and the build of both services.
import type { Revocations } from "../access/revocation-sync.js";
import type { TokenService } from "../access/tokens.js";
import type { AuditService } from "../audit/index.js";
import { type Basics, defineFeature } from "../feature.js";
import { type CounterStore, createFloodLimit, type FloodLimit } from "../rate-limits/index.js";
import type { UserStore } from "../users/index.js";
import { RefreshService } from "./refresh.service.js";
import { SessionResolver } from "./session.resolver.js";
import { ENDED_SESSION_RETENTION_MS, SessionService } from "./session.service.js";

export { AuthPayload } from "./auth-payload.type.js";
export { RefreshService } from "./refresh.service.js";
export { SessionService } from "./session.service.js";
export { SESSION_END_REASONS, type SessionEndReason } from "./session.store.js";
export { LogoutScope, Session } from "./session.type.js";

/** What the sessions feature is built from. */
export interface SessionsNeeds extends Basics {
  readonly tokens: TokenService;
  readonly revocationSync: Revocations;
  /** How long the revocation list remembers an ended session (a token lifetime and leeway). */
  readonly revocationRetentionMs: number;
  readonly counters: CounterStore;
  readonly audit: AuditService;
  readonly writes: FloodLimit;
  readonly userStore: UserStore;
}

async function buildSessions(needs: SessionsNeeds) {
  const { config, database, tokens, revocationSync, counters, audit, writes, userStore, now, logger, metrics } = needs;
  const sessions = new SessionService({
    db: database.db,
    users: userStore,
    tokens,
    revocations: revocationSync,
    sessionTtlSeconds: config.jwt.refreshTokenTtlSeconds,
    maxSessions: config.userBudgets.maxSessions,
    // Never before every instance's revocation list has let go of them.
    endedSessionRetentionMs: Math.max(ENDED_SESSION_RETENTION_MS, needs.revocationRetentionMs),
    writes,
    audit,
    now,
    logger,
    metrics,
  });
  // Ended (or expired) sessions and their refresh tokens are deleted after a day.
  needs.housekeeping.add(() => sessions.prune());
  const refreshLimit = await createFloodLimit(
    counters,
    "refresh:user",
    config.userBudgets.refreshesPerHour,
    "Too many token refreshes by this account",
    () => metrics.rateLimited("REFRESH_MAX_PER_USER"),
  );
  const refreshes = new RefreshService({
    db: database.db,
    sessions,
    users: userStore,
    reuseIntervalMs: config.jwt.refreshTokenReuseIntervalMs,
    spentTokenRetentionMs: config.jwt.refreshTokenRetentionSeconds * 1000,
    refreshes: refreshLimit,
    audit,
    now,
    logger,
    metrics,
  });
  // Spent refresh tokens, of live sessions too, are deleted after REFRESH_TOKEN_RETENTION.
  needs.housekeeping.add(() => refreshes.pruneSpent());
  return { services: { sessions, refreshes }, resolvers: [new SessionResolver(sessions)] };
}

export const sessionsFeature = defineFeature({ name: "sessions", resolvers: [SessionResolver], build: buildSessions });
