import type { Logger } from "pino";

import { type KeyRing, keepKeysCurrent, loadKeyRing } from "./access/keys.js";
import { RevocationList } from "./access/revocation-list.js";
import { RevocationSync } from "./access/revocation-sync.js";
import { RevocationStore } from "./access/revocation.store.js";
import { ApiTokenVerifier } from "./access/api-tokens.js";
import { IAT_LEEWAY_SECONDS, type TokenService, createTokenService } from "./access/tokens.js";
import { ApiTokenService } from "./api-tokens/api-token.service.js";
import { ApiTokenStore } from "./api-tokens/api-token.store.js";
import { AuditService } from "./audit/audit.service.js";
import { AuditStore } from "./audit/audit.store.js";
import { AuthService } from "./auth/auth.service.js";
import type { Config } from "./config.js";
import { type DatabaseHandle, migrateToLatest, openDatabase, postgresConnectionOptions } from "./db/database.js";
import { type EventBus, LocalPubSub } from "./graphql/pub-sub.js";
import { type Metrics, createMetrics } from "./metrics.js";
import { LocalPostEvents, type PostEvents, PostgresPostEvents } from "./posts/post-events.js";
import { PostService } from "./posts/post.service.js";
import { PostStore } from "./posts/post.store.js";
import { createCounterStore } from "./rate-limits/counter-store.js";
import { createFloodLimit } from "./rate-limits/flood-limit.js";
import { createLoginThrottle } from "./rate-limits/login-throttle.js";
import { AccountService } from "./accounts/account.service.js";
import { RefreshService } from "./sessions/refresh.service.js";
import { ENDED_SESSION_RETENTION_MS, SessionService } from "./sessions/session.service.js";
import { SESSION_END_REASONS } from "./sessions/session.store.js";
import { REJECTION_REASONS } from "./access/bearer.js";
import { Scope } from "./access/scopes.js";
import { PasswordHasher } from "./users/passwords.js";
import { UserService } from "./users/user.service.js";
import { UserStore } from "./users/user.store.js";

/** How often old audit events and expired rate-limit counters are deleted (also once at start). */
export const HOUSEKEEPING_INTERVAL_MS = 60 * 60 * 1000;

export interface ServiceOptions {
  logger: Logger;
  /** Milliseconds since the epoch; tests freeze it. Default `Date.now`. */
  now?: () => number;
  /**
   * Whether this process serves requests (the server) or runs one command and exits (the CLI).
   * Only a server keeps keys current, listens for other instances' revocations, prunes on a timer
   * and counts rate limits in Redis; a CLI command gets the same services and rules without them.
   */
  background: boolean;
}

/** Every service of the application, built once from a config: the one wiring for server and CLI. */
export interface Services {
  readonly database: DatabaseHandle;
  readonly keys: KeyRing;
  /** Re-reads the signing keys (after `keys rotate`); main.ts calls it on SIGHUP. */
  readonly reloadKeys: () => void;
  readonly tokens: TokenService;
  /** The bearer check's half for API tokens: a cached lookup. */
  readonly apiTokenVerifier: ApiTokenVerifier;
  readonly revocations: RevocationList;
  readonly revocationSync: RevocationSync;
  readonly audit: AuditService;
  readonly auth: AuthService;
  readonly sessions: SessionService;
  /** The refreshToken mutation: rotation and reuse detection. */
  readonly refreshes: RefreshService;
  readonly apiTokens: ApiTokenService;
  /** Disabling, enabling and deleting accounts. */
  readonly accounts: AccountService;
  readonly users: UserService;
  readonly posts: PostService;
  /** Where services publish the events subscriptions listen to. */
  readonly events: EventBus;
  /** This app's Prometheus registry and what the services record in it; main.ts serves it. */
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Stops timers and listeners, writes what the audit log still holds, closes the database. */
  close(): Promise<void>;
}

/**
 * Opens the database (migrated), loads the keys and builds every service. A failure part way
 * releases what was opened. Two calls share no state.
 */
export async function createServices(config: Config, options: ServiceOptions): Promise<Services> {
  const { logger, background } = options;
  const now = options.now ?? Date.now;
  const database = openDatabase(config, logger);
  // A registry of this app's own; a CLI command records into one nobody reads, without process metrics.
  const metrics = createMetrics({
    tokenRejectionReasons: REJECTION_REASONS,
    sessionEndCauses: SESSION_END_REASONS,
    apiTokenScopes: Object.values(Scope),
    defaultMetrics: background,
  });
  // Closed in reverse order; the database last.
  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups.length = 0;
    await database.close();
  };
  try {
    await migrateToLatest(database, config.databaseSchema);

    const keys = loadKeyRing(config, (message) => logger.warn(message), now);
    const keyRefresher = keepKeysCurrent(keys, config, {
      now,
      onError: (error) => logger.error({ err: error }, "reloading signing keys failed; keeping the current ones"),
    });
    cleanups.push(async () => keyRefresher.stop());
    if (!background) keyRefresher.stop();
    const tokens = createTokenService(config, keys, { now, onUnknownKid: keyRefresher.reloadOnUnknownKid });
    const passwords = new PasswordHasher();
    cleanups.push(() => passwords.close());
    const userStore = new UserStore(database.db, database.dialect);

    const audit = new AuditService({
      store: new AuditStore(database.db),
      retentionSeconds: config.audit.retentionSeconds,
      now,
      logger,
    });
    // Coalesced counts still in memory reach their rows before the database closes.
    cleanups.push(() => audit.stop());
    // One store (one Redis connection, or the app's database) for every rate limit. A CLI command
    // is not rate limited, so it needs no Redis.
    const counters = await createCounterStore(
      background ? config : { ...config, redisUrl: undefined },
      database,
      logger,
      metrics,
    );
    cleanups.push(() => counters.close());
    const throttle = await createLoginThrottle(config, counters, logger);
    const registrations = await createFloodLimit(
      counters,
      "register:ip",
      config.floodLimits.registrationsPerIpPerHour,
      "Too many accounts were registered from this address",
      () => metrics.rateLimited("REGISTER_MAX_PER_IP"),
    );
    const postCreations = await createFloodLimit(
      counters,
      "post:user",
      config.floodLimits.postsPerUserPerHour,
      "Too many posts were created by this account",
      () => metrics.rateLimited("CREATE_POST_MAX_PER_USER"),
    );
    // --- Issue 22 (writes): a budget per user for every signed-in write and for successful logins. ---
    const postUpdates = await createFloodLimit(
      counters,
      "post-update:user",
      config.userBudgets.postUpdatesPerHour,
      "Too many post updates were made by this account",
      () => metrics.rateLimited("UPDATE_POST_MAX_PER_USER"),
    );
    const logins = await createFloodLimit(
      counters,
      "login:user",
      config.userBudgets.loginsPerHour,
      "Too many sign-ins to this account",
      () => metrics.rateLimited("LOGIN_MAX_PER_USER"),
    );
    const refreshes = await createFloodLimit(
      counters,
      "refresh:user",
      config.userBudgets.refreshesPerHour,
      "Too many token refreshes by this account",
      () => metrics.rateLimited("REFRESH_MAX_PER_USER"),
    );
    const writes = await createFloodLimit(
      counters,
      "writes:user",
      config.userBudgets.writesPerHour,
      "Too many changes were made by this account",
      () => metrics.rateLimited("WRITES_MAX_PER_USER"),
    );
    // --- end of issue 22 (writes) ---
    if (background) {
      const housekeeping = async () => {
        await audit.prune();
        await counters.clearExpired();
      };
      await housekeeping();
      const housekeepingTimer = setInterval(() => void housekeeping(), HOUSEKEEPING_INTERVAL_MS);
      housekeepingTimer.unref();
      cleanups.push(async () => clearInterval(housekeepingTimer));
    }

    // A revocation entry matters while a token minted before it can still be unexpired.
    const retentionMs = (config.jwt.accessTokenTtlSeconds + IAT_LEEWAY_SECONDS + 60) * 1000;
    const revocations = new RevocationList(retentionMs, now);
    const revocationSync = new RevocationSync({
      database,
      postgres: config.databaseUrl
        ? { connection: postgresConnectionOptions(config), schema: config.databaseSchema }
        : undefined,
      store: new RevocationStore(database.db),
      list: revocations,
      retentionMs,
      pollIntervalMs: config.databaseUrl ? 5000 : 500,
      now,
      logger,
      metrics,
    });
    if (background) {
      await revocationSync.start();
      cleanups.push(() => revocationSync.stop());
    }

    const apiTokens = new ApiTokenService({
      database,
      users: userStore,
      revocations: revocationSync,
      audit,
      writes,
      now,
      logger,
    });
    const apiTokenVerifier = new ApiTokenVerifier({ tokens: new ApiTokenStore(database.db), revocations, now, logger });
    const sessions = new SessionService({
      db: database.db,
      users: userStore,
      tokens,
      revocations: revocationSync,
      sessionTtlSeconds: config.jwt.refreshTokenTtlSeconds,
      maxSessions: config.userBudgets.maxSessions,
      // Never before every instance's revocation list has let go of them.
      endedSessionRetentionMs: Math.max(ENDED_SESSION_RETENTION_MS, retentionMs),
      writes,
      audit,
      now,
      logger,
      metrics,
    });
    const refreshService = new RefreshService({
      db: database.db,
      sessions,
      users: userStore,
      reuseIntervalMs: config.jwt.refreshTokenReuseIntervalMs,
      refreshes,
      audit,
      now,
      logger,
      metrics,
    });
    // --- Issue 22 (writes): ended sessions and their refresh tokens are deleted after a day. ---
    if (background) {
      await sessions.prune();
      const sessionPruner = setInterval(() => void sessions.prune(), HOUSEKEEPING_INTERVAL_MS);
      sessionPruner.unref();
      cleanups.push(async () => clearInterval(sessionPruner));
    }
    // --- end of issue 22 (writes) ---
    const users = new UserService({
      users: userStore,
      passwords,
      revocations: revocationSync,
      audit,
      writes,
      now,
      logger,
    });
    // Subscribers listen on this instance's bus; on PostgreSQL every instance's posts reach it.
    const events = new LocalPubSub({
      maxQueuedEvents: config.subscriptions.maxQueuedEvents,
      onDropped: () => metrics.limitReached("SUBSCRIPTION_MAX_QUEUED_EVENTS"),
    });
    const postStore = new PostStore(database.db, database.dialect);
    let postEvents: PostEvents = new LocalPostEvents(events);
    if (config.databaseUrl && background) {
      const pgEvents = new PostgresPostEvents({
        db: database.db,
        connection: postgresConnectionOptions(config),
        schema: config.databaseSchema,
        bus: events,
        posts: postStore,
        logger,
      });
      await pgEvents.start();
      cleanups.push(() => pgEvents.stop());
      postEvents = pgEvents;
    }
    const posts = new PostService({
      posts: postStore,
      creations: postCreations,
      updates: postUpdates,
      writes,
      events: postEvents,
      now,
      logger,
    });
    const auth = new AuthService({
      users: userStore,
      sessions,
      passwords,
      throttle,
      registrations,
      logins,
      writes,
      audit,
      now,
      logger,
      metrics,
    });

    const accounts = new AccountService({
      users: userStore,
      sessions,
      apiTokens,
      passwords,
      revocations: revocationSync,
      revocationRetentionMs: retentionMs,
      writes,
      audit,
      now,
      logger,
      metrics,
    });

    return {
      database,
      keys,
      reloadKeys: keyRefresher.reload,
      tokens,
      apiTokenVerifier,
      revocations,
      revocationSync,
      apiTokens,
      accounts,
      audit,
      auth,
      sessions,
      refreshes: refreshService,
      users,
      posts,
      events,
      metrics,
      logger,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
