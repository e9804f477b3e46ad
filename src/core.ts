import type { Logger } from "pino";

import { REJECTION_REASONS } from "./access/bearer.js";
import { DEV_SECRET_FILE, keepKeysCurrent, type KeyRing, KEYS_DIR, loadKeyRing } from "./access/keys.js";
import { RevocationStore } from "./access/revocation.store.js";
import { RevocationList } from "./access/revocation-list.js";
import { RevocationSync } from "./access/revocation-sync.js";
import { Scope } from "./access/scopes.js";
import { createTokenService, IAT_LEEWAY_SECONDS, type TokenService } from "./access/tokens.js";
import { type AuditService, buildAuditLog } from "./audit/index.js";
import type { Config } from "./config.js";
import { type DataDirEntries, tightenDataDir } from "./data-dir.js";
import { migrateToLatest, openDatabase, postgresConnectionOptions, SQLITE_FILES } from "./db/database.js";
import type { Basics } from "./feature.js";
import { type EventBus, LocalPubSub } from "./graphql/pub-sub.js";
import { type Closer, Housekeeping } from "./lifecycle.js";
import { buildMailer, MAIL_DIR } from "./mail/index.js";
import type { Mailer } from "./mailer.js";
import { createMetrics } from "./metrics.js";
import { MFA_KEY_FILE } from "./mfa/index.js";
import { buildCounters, type CounterStore } from "./rate-limits/index.js";
import { SESSION_END_REASONS } from "./sessions/index.js";
import { buildPasswordHasher, type PasswordHasher } from "./users/index.js";

/**
 * What every feature is built on: the database, the keys and tokens, the revocation list, the
 * rate-limit counters, the password hasher, the audit log, the metrics, the event bus and the mailer.
 * Features read it by name, with the services of the features built before them.
 */
export interface Core extends Basics {
  readonly keys: KeyRing;
  /** Re-reads the signing keys (after `keys rotate`). */
  readonly reloadKeys: () => void;
  readonly tokens: TokenService;
  /** This instance's list of ended sessions, revoked tokens and changed roles: the bearer check's. */
  readonly revocations: RevocationList;
  /** Writes revocations and keeps every instance's list in step: what features revoke through. */
  readonly revocationSync: RevocationSync;
  /** How long a revocation matters: while a token minted before it can still be unexpired. */
  readonly revocationRetentionMs: number;
  /** Where every rate limit counts. */
  readonly counters: CounterStore;
  readonly passwords: PasswordHasher;
  readonly audit: AuditService;
  /** Where services publish the events subscriptions listen to. */
  readonly events: EventBus;
  /** Where features send mail: the outbox, which a background sender delivers from. */
  readonly mailer: Mailer;
}

export interface CoreOptions {
  logger: Logger;
  now: () => number;
  /** A server (true) keeps keys current, listens for revocations and counts in Redis; a CLI command does not. */
  background: boolean;
}

/**
 * Opens the database (migrated) and builds the core on it. Each part registers its stop with
 * `closer` as it is built (the database first, so it closes last); the caller closes it when this
 * or anything after it fails.
 */
export async function buildCore(config: Config, options: CoreOptions, closer: Closer): Promise<Core> {
  const { logger, now, background } = options;
  keepDataDirPrivate(config, logger);
  const database = openDatabase(config, logger);
  closer.add("the database", () => database.close());
  // A registry of this app's own; a CLI command records into one nobody reads, without process metrics.
  const metrics = createMetrics({
    tokenRejectionReasons: REJECTION_REASONS,
    sessionEndCauses: SESSION_END_REASONS,
    apiTokenScopes: Object.values(Scope),
    defaultMetrics: background,
  });
  await migrateToLatest(database, config.databaseSchema);
  const basics: Basics = {
    config,
    logger,
    now,
    background,
    database,
    metrics,
    closer,
    housekeeping: new Housekeeping(),
  };
  const { keys, reloadKeys, tokens } = keysAndTokens(basics);
  const passwords = buildPasswordHasher(basics);
  const audit = buildAuditLog(basics);
  const counters = await buildCounters(basics);
  const revocations = await revocationsOf(basics);
  // Subscribers listen on this instance's bus (posts/ brings other instances' posts to it).
  const events = new LocalPubSub({
    maxQueuedEvents: config.subscriptions.maxQueuedEvents,
    onDropped: () => metrics.limitReached("SUBSCRIPTION_MAX_QUEUED_EVENTS"),
    onPendingDropped: () => metrics.limitReached("SUBSCRIPTION_MAX_PENDING_EVENTS"),
  });
  const mailer = buildMailer(basics);
  return { ...basics, keys, reloadKeys, tokens, ...revocations, counters, passwords, audit, events, mailer };
}

/**
 * What the app keeps in DATA_DIR, by its owners' names: the SQLite files, the generated secret and
 * keys, the generated key of TOTP secrets, development mail.
 */
const DATA_DIR_ENTRIES: DataDirEntries = {
  files: [...SQLITE_FILES, DEV_SECRET_FILE, MFA_KEY_FILE],
  folders: [KEYS_DIR, MAIL_DIR],
};

/**
 * Tightens what an older version left readable by others in DATA_DIR (the SQLite files were 0644)
 * to 0600 and 0700, before anything opens it, and says so; what belongs to another user is named
 * in a warning instead.
 */
function keepDataDirPrivate(config: Config, logger: Logger): void {
  const { tightened, notOwned } = tightenDataDir(config.dataDir, DATA_DIR_ENTRIES);
  if (tightened.length > 0) {
    logger.info({ paths: tightened }, "DATA_DIR: made files readable by other users private (0600, folders 0700)");
  }
  if (notOwned.length > 0) {
    logger.warn(
      { paths: notOwned },
      "DATA_DIR: these are readable by other users and belong to another user, so they stay so: chmod them 600 (folders 700) as their owner",
    );
  }
}

/** The key ring, kept current in a server (a CLI command reads it once), and the token service on it. */
function keysAndTokens({ config, logger, now, background, closer }: Basics) {
  const keys = loadKeyRing(config, (message) => logger.warn(message), now);
  const keyRefresher = keepKeysCurrent(keys, config, {
    now,
    onError: (error) => logger.error({ err: error }, "reloading signing keys failed; keeping the current ones"),
  });
  closer.add("the key refresher", () => keyRefresher.stop());
  if (!background) keyRefresher.stop();
  const tokens = createTokenService(config, keys, { now, onUnknownKid: keyRefresher.reloadOnUnknownKid });
  return { keys, reloadKeys: keyRefresher.reload, tokens };
}

/** The revocation list, and in a server the sync that keeps it current with every other instance's. */
async function revocationsOf({ config, logger, now, background, database, metrics, closer }: Basics) {
  // A revocation entry matters while a token minted before it can still be unexpired.
  const revocationRetentionMs = (config.jwt.accessTokenTtlSeconds + IAT_LEEWAY_SECONDS + 60) * 1000;
  const revocations = new RevocationList(revocationRetentionMs, now);
  const revocationSync = new RevocationSync({
    database,
    postgres: config.databaseUrl
      ? { connection: postgresConnectionOptions(config), schema: config.databaseSchema }
      : undefined,
    store: new RevocationStore(database.db),
    list: revocations,
    retentionMs: revocationRetentionMs,
    pollIntervalMs: config.databaseUrl ? 5000 : 500,
    now,
    logger,
    metrics,
  });
  if (background) {
    await revocationSync.start();
    closer.add("the revocation sync", () => revocationSync.stop());
  }
  return { revocations, revocationSync, revocationRetentionMs };
}
