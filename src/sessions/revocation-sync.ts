import { sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";

import type { DatabaseHandle } from "../db/database.js";
import type { UserStore } from "../users/user.store.js";
import type { RevocationList } from "./revocation-list.js";
import type { SessionStore } from "./session.store.js";

export interface RevocationSyncOptions {
  database: DatabaseHandle;
  /** PostgreSQL connection for the LISTEN client; undefined on SQLite. */
  postgres?: { url: string; schema: string | undefined };
  sessions: SessionStore;
  users: UserStore;
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

/**
 * Keeps one instance's {@link RevocationList} in step with the database, so that a session ended
 * (or a role changed) on any instance is refused on every instance within a second.
 *
 * - PostgreSQL: a dedicated connection LISTENs on a channel; whoever ends a session NOTIFYs it
 *   after the write commits, and every listener reads what changed since its last read.
 * - SQLite: processes sharing the file poll the same incremental query (default every 500 ms).
 * - Both: a full read of the retention window at start and after a reconnect, and periodic polls.
 */
export class RevocationSync {
  private readonly channel: string;
  private watermark = 0;
  private running: Promise<void> | undefined;
  private rerun = false;
  private timer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private stopped = false;

  constructor(private readonly options: RevocationSyncOptions) {
    this.channel = `auth_revocations_${options.postgres?.schema ?? "public"}`;
  }

  /** Loads the current window, then starts listening and polling. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.options.postgres) await this.listen();
    this.timer = setInterval(() => void this.refresh(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  /** Tells the other instances to read now (PostgreSQL); on SQLite they poll. */
  async announce(): Promise<void> {
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
      .catch((error: unknown) => this.options.logger.warn({ err: error }, "revocation sync failed; retrying on the next poll"))
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
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.running;
  }

  private async readChanges(): Promise<void> {
    const startedAt = this.options.now();
    const since = new Date(Math.max(this.watermark - OVERLAP_MS, startedAt - this.options.retentionMs));
    const [ended, changed] = await Promise.all([
      this.options.sessions.listRevokedSince(since),
      this.options.users.listRolesChangedSince(since),
    ]);
    for (const session of ended) this.options.list.addEndedSession(session.id, session.revokedAt.getTime());
    for (const user of changed) this.options.list.addRoleChange(user.id, user.roles, user.changedAt.getTime());
    this.watermark = startedAt;
  }

  private async listen(): Promise<void> {
    const { url, schema } = this.options.postgres!;
    const client = new pg.Client({ connectionString: url, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
    client.on("notification", () => void this.refresh());
    client.on("error", (error) => {
      this.options.logger.warn({ err: error }, "revocation listener lost its connection; reconnecting");
      this.reconnect(client);
    });
    client.on("end", () => this.reconnect(client));
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    this.listener = client;
  }

  private reconnect(dead: pg.Client): void {
    if (this.stopped || this.listener !== dead) return;
    this.listener = undefined;
    const retry = () => {
      if (this.stopped) return;
      this.listen()
        // Anything missed while disconnected is inside the overlap or the retention window.
        .then(() => this.refresh())
        .catch(() => setTimeout(retry, 1000).unref());
    };
    setTimeout(retry, 200).unref();
  }
}
