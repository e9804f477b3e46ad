import type { Kysely, Selectable } from "kysely";

import { containsNul } from "../db/database.js";
import { keysetPage } from "../db/keyset.js";
import { type AuditEventsTable, type Database, toDate } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";
import type { AuditEvent } from "./audit.type.js";

/** What is stored for one event; every field but `type` and `at` may be unknown. */
export interface AuditRecord {
  type: string;
  userId: string | null;
  username: string | null;
  ip: string | null;
  userAgent: string | null;
  sessionId: string | null;
  detail: string | null;
  at: Date;
}

/** The only code that reads or writes the `audit_events` table. */
export class AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores one event and returns its id. */
  async insert(event: AuditRecord): Promise<string> {
    const row = await this.db
      .insertInto("audit_events")
      .values({
        type: event.type,
        user_id: event.userId,
        username: event.username,
        ip: event.ip,
        user_agent: event.userAgent,
        session_id: event.sessionId,
        detail: event.detail,
        at: event.at.toISOString(),
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    return String(row.id);
  }

  /** Replaces the `detail` of the event `id` (a coalesced event's count, once its window has ended). */
  async setDetail(id: string, detail: string | null): Promise<void> {
    await this.db.updateTable("audit_events").set({ detail }).where("id", "=", Number(id)).execute();
  }

  /**
   * A page of the newest events, newest first (by time, then by the order they were stored), only
   * of `type` and only concerning `userId` where those are given (an id with a NUL byte matches
   * nothing), read through audit_events_at_idx or the type's or user's index: after the event
   * `page.after` (any event's place in that order) when given, else skipping `page.offset`.
   * Undefined when no event has the id `after`.
   */
  async listNewest(
    page: Page,
    filter: { type?: string | null; userId?: string | null } = {},
  ): Promise<AuditEvent[] | undefined> {
    let after: { at: Date | string; id: number | string } | undefined;
    if (page.after !== undefined) {
      // Ids are integers; anything else names no event.
      if (!/^[1-9][0-9]{0,15}$/.test(page.after)) return undefined;
      after = await this.db
        .selectFrom("audit_events")
        .select(["at", "id"])
        .where("id", "=", Number(page.after))
        .executeTakeFirst();
      if (!after) return undefined;
    }
    if ((filter.type != null && containsNul(filter.type)) || (filter.userId != null && containsNul(filter.userId)))
      return [];
    const matching = this.db
      .selectFrom("audit_events")
      .selectAll()
      .$if(filter.type != null, (q) => q.where("type", "=", filter.type!))
      .$if(filter.userId != null, (q) => q.where("user_id", "=", filter.userId!));
    const rows = await keysetPage(matching, page, after && { at: after.at, id: Number(after.id) }, {
      column: "at",
      direction: "desc",
    }).execute();
    return rows.map(toEvent);
  }

  /**
   * Deletes up to `limit` of the events from before `cutoff`, oldest first: their ids are read
   * through audit_events_at_idx, then deleted by primary key (a list of ids, so that no plan
   * scans the table to join them); returns how many.
   */
  async deleteBefore(cutoff: Date, limit: number): Promise<number> {
    const old = await this.db
      .selectFrom("audit_events")
      .select("id")
      .where("at", "<", cutoff.toISOString())
      .orderBy("at")
      .limit(limit)
      .execute();
    if (old.length === 0) return 0;
    const ids = old.map((row) => row.id);
    const result = await this.db.deleteFrom("audit_events").where("id", "in", ids).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toEvent(row: Selectable<AuditEventsTable>): AuditEvent {
  return {
    id: String(row.id),
    type: row.type,
    userId: row.user_id,
    username: row.username,
    ip: row.ip,
    userAgent: row.user_agent,
    sessionId: row.session_id,
    detail: row.detail,
    at: toDate(row.at),
  };
}
