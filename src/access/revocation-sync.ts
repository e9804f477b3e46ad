import { sql } from "kysely";
import type pg from "pg";
import type { Logger } from "pino";

import type { DatabaseHandle } from "../db/database.js";
import { PgListener } from "../db/pg-listener.js";
import { OutageLog } from "../db/unavailable.js";
import type { MetricsRecorder } from "../metrics.js";
import type { RevocationStore } from "./revocation.store.js";
import { endCauseOf, type RevocationList } from "./revocation-list.js";
import type { Role } from "./roles.js";

/**
 * The one way a service says "tokens minted before now must stop working": this instance applies it
 * at once, and every other instance learns it within a second (RevocationSync).
 */
export interface Revocations {
  /**
   * These sessions ended at `at`: their access tokens are refused from now on. `reason` is the one
   * stored with them (`revoked_reason`), which other instances read: their sockets are told whether
   * the account was disabled ({@link endCauseOf}).
   */
  sessionsEnded(sessionIds: readonly string[], at: number, reason?: string): Promise<void>;
  /** This user's roles are `roles` since `at`: tokens minted before carry stale roles. */
  rolesChanged(userId: string, roles: readonly Role[], at: number): Promise<void>;
  /** These API tokens were revoked at `at`, for the `reason` stored with them: they are refused from now on. */
  apiTokensRevoked(apiTokenIds: readonly string[], at: number, reason?: string): Promise<void>;
}

export interface RevocationSyncOptions {
  database: DatabaseHandle;
  /** PostgreSQL: how to connect the LISTEN client, and the schema that names the channel; undefined on SQLite. */
  postgres?: { connection: pg.ClientConfig; schema: string | undefined };
  store: RevocationStore;
  list: RevocationList;
  /** How far back the first load looks: the access-token lifetime plus leeway. */
  retentionMs: number;
  /** Polling period: the only channel on SQLite, a safety net behind LISTEN on PostgreSQL. */
  pollIntervalMs: number;
  now: () => number;
  logger: Logger;
  /** Told how late this instance learned of each session ended elsewhere (revocation_sync_lag_seconds). */
  metrics?: MetricsRecorder;
}

// Each incremental read overlaps the previous one by this much, so a revocation committed late, or
// stamped by an instance whose clock runs behind, is still seen. Re-adding an entry is harmless.
const OVERLAP_MS = 30_000;

/**
 * Keeps one instance's {@link RevocationList} in step with the database, so that a session ended,
 * an API token revoked or a role changed on any instance is honoured on every instance within a second.
 *
 * - PostgreSQL: a dedicated connection LISTENs on a channel; whoever ends a session NOTIFYs it
 *   after the write commits, and every listener reads what changed since its last read.
 * - SQLite: processes sharing the file poll the same incremental query (default every 500 ms).
 * - Both: a full read of the retention window at start, and periodic polls.
 *
 * The listener survives its connection: when the server ends it (a restart, `pg_terminate_backend`)
 * or a heartbeat gets no answer, it reconnects with backoff and, once listening again, reads every
 * change since its last successful read, so nothing ended during the outage is missed. Failures are
 * logged once per outage.
 */
export class RevocationSync implements Revocations {
  private readonly channel: string;
  private watermark = 0;
  private running: Promise<void> | undefined;
  private rerun = false;
  private timer: NodeJS.Timeout | undefined;
  private listener: PgListener | undefined;
  private stopped = false;
  private readonly readOutage: OutageLog;
  private readonly listenOutage: OutageLog;

  constructor(private readonly options: RevocationSyncOptions) {
    this.channel = `auth_revocations_${options.postgres?.schema ?? "public"}`;
    this.readOutage = new OutageLog(options.logger, "the revocation sync's database read");
    this.listenOutage = new OutageLog(options.logger, "the revocation listener's PostgreSQL connection");
  }

  /** Whether the LISTEN connection is up (always false on SQLite); for tests and diagnostics. */
  get listening(): boolean {
    return this.listener?.listening ?? false;
  }

  /** Loads the current window, then starts listening and polling. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.options.postgres) {
      const listener = new PgListener({
        connection: this.options.postgres.connection,
        channels: [this.channel],
        onNotification: () => void this.refresh(),
        // Anything ended while the listener was away is read now: the read starts at the last
        // successful one (less the overlap), however long the outage was.
        onReconnected: () => void this.refresh(),
        outage: this.listenOutage,
      });
      await listener.start();
      this.listener = listener;
    }
    this.timer = setInterval(() => void this.refresh(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  async sessionsEnded(sessionIds: readonly string[], at: number, reason?: string): Promise<void> {
    if (sessionIds.length === 0) return;
    for (const id of sessionIds) this.options.list.addEndedSession(id, at, endCauseOf(reason));
    await this.announce();
  }

  async apiTokensRevoked(apiTokenIds: readonly string[], at: number, reason?: string): Promise<void> {
    if (apiTokenIds.length === 0) return;
    // API token ids and session ids are both random UUIDs: one list of ended credentials holds both.
    for (const id of apiTokenIds) this.options.list.addEndedSession(id, at, endCauseOf(reason));
    await this.announce();
  }

  async rolesChanged(userId: string, roles: readonly Role[], at: number): Promise<void> {
    this.options.list.addRoleChange(userId, roles, at);
    await this.announce();
  }

  /** Tells the other instances to read now (PostgreSQL); on SQLite they poll. */
  private async announce(): Promise<void> {
    if (!this.options.postgres) return;
    await sql`select pg_notify(${this.channel}, '')`.execute(this.options.database.db);
  }

  /** Reads what changed since the last read. Concurrent calls coalesce into at most one more run. */
  refresh(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = this.readChanges()
      .then(() => this.readOutage.recovered())
      .catch((error: unknown) => this.readOutage.failed(error))
      .finally(() => {
        this.running = undefined;
        if (this.rerun && !this.stopped) {
          this.rerun = false;
          void this.refresh();
        }
      });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.listener?.stop();
    await this.running;
  }

  private async readChanges(): Promise<void> {
    const startedAt = this.options.now();
    const since = new Date(Math.max(this.watermark - OVERLAP_MS, startedAt - this.options.retentionMs));
    const [endedSessions, changed, revokedApiTokens, deleted] = await Promise.all([
      this.options.store.sessionsEndedSince(since),
      this.options.store.rolesChangedSince(since),
      this.options.store.apiTokensRevokedSince(since),
      this.options.store.credentialsDeletedSince(since),
    ]);
    // A deleted account's sessions are gone from their table: their tombstones stand in for them.
    const ended = [...endedSessions, ...deleted];
    // The first read loads the whole window, ended long ago: only later reads measure a lag. A
    // session this instance ended itself is already in the list, so only other instances' count.
    const metrics = this.watermark > 0 ? this.options.metrics : undefined;
    for (const session of ended) {
      if (metrics && !this.options.list.isSessionEnded(session.id))
        metrics.revocationLag((this.options.now() - session.revokedAt.getTime()) / 1000);
      this.options.list.addEndedSession(session.id, session.revokedAt.getTime(), endCauseOf(session.reason));
    }
    for (const user of changed) this.options.list.addRoleChange(user.id, user.roles, user.changedAt.getTime());
    for (const token of revokedApiTokens)
      this.options.list.addEndedSession(token.id, token.revokedAt.getTime(), endCauseOf(token.reason));
    this.watermark = startedAt;
  }
}
