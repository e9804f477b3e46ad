import { sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";

import type { DatabaseHandle } from "../db/database.js";
import { OutageLog } from "../db/unavailable.js";
import type { RevocationList } from "./revocation-list.js";
import type { RevocationStore } from "./revocation.store.js";
import type { Role } from "./roles.js";

/**
 * The one way a service says "tokens minted before now must stop working": this instance applies it
 * at once, and every other instance learns it within a second (RevocationSync).
 */
export interface Revocations {
  /** These sessions ended at `at`: their access tokens are refused from now on. */
  sessionsEnded(sessionIds: readonly string[], at: number): Promise<void>;
  /** This user's roles are `roles` since `at`: tokens minted before carry stale roles. */
  rolesChanged(userId: string, roles: readonly Role[], at: number): Promise<void>;
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
}

// Each incremental read overlaps the previous one by this much, so a revocation committed late, or
// stamped by an instance whose clock runs behind, is still seen. Re-adding an entry is harmless.
const OVERLAP_MS = 30_000;

// Reconnecting the listener: the first retry soon, then doubling up to half a second, so a database that
// comes back is listened to again within about half a second, without a storm of attempts while it is down.
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 500;

// A frozen server or network ends no connection: the listener would wait for notifications that never
// come. A query on it this often, bounded by the connection's query_timeout, finds that out.
const HEARTBEAT_MS = 5000;

/**
 * Keeps one instance's {@link RevocationList} in step with the database, so that a session ended
 * (or a role changed) on any instance is refused on every instance within a second.
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
  private listener: pg.Client | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = RECONNECT_FIRST_MS;
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
    return this.listener !== undefined;
  }

  /** Loads the current window, then starts listening and polling. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.options.postgres) await this.listen();
    this.timer = setInterval(() => void this.refresh(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  async sessionsEnded(sessionIds: readonly string[], at: number): Promise<void> {
    if (sessionIds.length === 0) return;
    for (const id of sessionIds) this.options.list.addEndedSession(id, at);
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
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.running;
  }

  private async readChanges(): Promise<void> {
    const startedAt = this.options.now();
    const since = new Date(Math.max(this.watermark - OVERLAP_MS, startedAt - this.options.retentionMs));
    const [ended, changed] = await Promise.all([
      this.options.store.sessionsEndedSince(since),
      this.options.store.rolesChangedSince(since),
    ]);
    for (const session of ended) this.options.list.addEndedSession(session.id, session.revokedAt.getTime());
    for (const user of changed) this.options.list.addRoleChange(user.id, user.roles, user.changedAt.getTime());
    this.watermark = startedAt;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client(this.options.postgres!.connection);
    client.on("notification", () => void this.refresh());
    // An error is always followed by 'end' (pg ends the connection); both lead to one reconnect.
    client.on("error", (error) => {
      this.listenOutage.failed(error);
      this.reconnect(client);
    });
    client.on("end", () => this.reconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      throw error;
    }
    this.listener = client;
    this.reconnectDelay = RECONNECT_FIRST_MS;
    this.listenOutage.recovered();
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      client.query("select 1").catch((error: unknown) => {
        this.listenOutage.failed(error);
        this.reconnect(client);
      });
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Drops a listener that failed and schedules attempts to listen again until one succeeds. */
  private reconnect(dead: pg.Client): void {
    if (this.stopped || this.listener !== dead) return;
    this.listener = undefined;
    clearInterval(this.heartbeat);
    dead.removeAllListeners("end");
    // end() on a frozen connection could wait for ever; the socket is dropped either way.
    void dead.end().catch(() => undefined);
    this.scheduleListen();
  }

  private scheduleListen(): void {
    if (this.stopped) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
    this.reconnectTimer = setTimeout(() => {
      this.listen()
        // Anything ended while the listener was away is read now: the read starts at the last
        // successful one (less the overlap), however long the outage was.
        .then(() => this.refresh())
        .catch((error: unknown) => {
          this.listenOutage.failed(error);
          this.scheduleListen();
        });
    }, delay);
    this.reconnectTimer.unref();
  }
}
