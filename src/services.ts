import type { Logger } from "pino";

import type { ApiTokenVerifier } from "./access/api-tokens.js";
import type { KeyRing } from "./access/keys.js";
import type { RevocationList } from "./access/revocation-list.js";
import type { RevocationSync } from "./access/revocation-sync.js";
import type { TokenService } from "./access/tokens.js";
import type { AccountService } from "./accounts/index.js";
import type { ApiTokenService } from "./api-tokens/index.js";
import type { AuditService } from "./audit/index.js";
import type { AuthService } from "./auth/index.js";
import type { Config } from "./config.js";
import { buildCore } from "./core.js";
import type { DatabaseHandle } from "./db/database.js";
import type { PasswordResetService } from "./email/index.js";
import { buildFeatures } from "./features.js";
import type { EventBus } from "./graphql/pub-sub.js";
import { withReplays } from "./graphql/replay.js";
import { Closer } from "./lifecycle.js";
import type { Mailer } from "./mailer.js";
import type { Metrics } from "./metrics.js";
import type { MfaService } from "./mfa/index.js";
import type { PostService } from "./posts/index.js";
import type { CounterStore } from "./rate-limits/index.js";
import type { RefreshService, SessionService } from "./sessions/index.js";
import type { UserService } from "./users/index.js";

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
  /** Where every rate limit counts; the HTTP routes' own limits too. */
  readonly counters: CounterStore;
  readonly audit: AuditService;
  readonly auth: AuthService;
  readonly sessions: SessionService;
  /** The refreshToken mutation: rotation and reuse detection. */
  readonly refreshes: RefreshService;
  readonly apiTokens: ApiTokenService;
  /** Disabling, enabling and deleting accounts. */
  readonly accounts: AccountService;
  /** Reset links: the CLI's `users reset-link` prints one. */
  readonly passwordResets: PasswordResetService;
  /** Second factors: the CLI's `users reset-mfa` resets a user's. */
  readonly mfa: MfaService;
  readonly users: UserService;
  readonly posts: PostService;
  /** Where services publish the events subscriptions listen to; the features' replays make their topics resumable. */
  readonly events: EventBus;
  /** This app's Prometheus registry and what the services record in it; main.ts serves it. */
  readonly metrics: Metrics;
  /** Where mail is written to the outbox (in a caller's transaction), which a server's sender delivers from. */
  readonly mailer: Mailer;
  readonly logger: Logger;
  /** One instance of every feature's resolver classes: what schema.ts builds the schema from. */
  readonly resolvers: readonly object[];
  /** Stops timers and listeners, writes what the audit log still holds, closes the database. */
  close(): Promise<void>;
}

/**
 * Builds the core (the database, migrated, first) and every feature of features.ts on it, then
 * starts the housekeeping in a server. Every part registers its stop with one closer as it is
 * built, so a failure part way releases what was opened, and `close()` stops all in reverse order,
 * the database last. Two calls share no state.
 */
export async function createServices(config: Config, options: ServiceOptions): Promise<Services> {
  const { logger, background } = options;
  const closer = new Closer();
  try {
    const core = await buildCore(config, { logger, background, now: options.now ?? Date.now }, closer);
    const { registry, resolvers, replays } = await buildFeatures(core);
    if (background) await core.housekeeping.start(closer);
    return {
      database: registry.database,
      keys: registry.keys,
      reloadKeys: registry.reloadKeys,
      tokens: registry.tokens,
      apiTokenVerifier: registry.apiTokenVerifier,
      revocations: registry.revocations,
      revocationSync: registry.revocationSync,
      counters: registry.counters,
      audit: registry.audit,
      auth: registry.auth,
      sessions: registry.sessions,
      refreshes: registry.refreshes,
      apiTokens: registry.apiTokens,
      accounts: registry.accounts,
      passwordResets: registry.passwordResets,
      mfa: registry.mfa,
      users: registry.users,
      posts: registry.posts,
      // A resuming subscriber holds no more replayed events than its live queue may.
      events: withReplays(registry.events, replays, config.subscriptions.maxQueuedEvents),
      metrics: registry.metrics,
      mailer: registry.mailer,
      logger,
      resolvers,
      close: () => closer.close(),
    };
  } catch (error) {
    // Nothing half-built stays open; the start's own failure is the one reported.
    await closer.close().catch((closeError: unknown) => logger.error({ err: closeError }, "closing a failed start"));
    throw error;
  }
}
