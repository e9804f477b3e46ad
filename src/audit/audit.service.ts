import type { Logger } from "pino";

import type { ClientInfo } from "../context.js";

import { pageOf } from "../pagination.js";
import { AUDIT_EVENTS_DEFAULT, type AuditEventsArgs } from "./audit.input.js";
import type { AuditStore } from "./audit.store.js";
import type { AuditEvent, AuditEventType } from "./audit.type.js";

/**
 * One event as services report it. There is deliberately no field for a password, a token or a
 * secret; `detail` is built by the caller from codes and ids only.
 */
export interface AuditEventInput {
  type: AuditEventType;
  userId?: string | null;
  /** For failed and throttled logins, the name that was tried (capped; it may not exist). */
  username?: string | null;
  /** Where the request came from: its IP and user agent are stored, its id goes on the log line as `reqId`. */
  client?: ClientInfo;
  sessionId?: string | null;
  /** `key=value` pairs, e.g. `reason=EXPIRED`; see {@link auditDetail}. */
  detail?: string | null;
}

/** Longest stored value of each free-text field: a client chooses them, so they are capped. */
export const AUDIT_FIELD_LIMITS = { username: 64, ip: 64, userAgent: 512, detail: 512 } as const;

export interface AuditServiceDeps {
  store: AuditStore;
  /** Events older than this many seconds are pruned (AUDIT_RETENTION). */
  retentionSeconds: number;
  now: () => number;
  logger: Logger;
}

/**
 * The audit log: every security event is stored in `audit_events` and written to the log at info.
 * Recording never fails the request that caused it: a storage failure is logged instead.
 */
export class AuditService {
  constructor(private readonly deps: AuditServiceDeps) {}

  /** Stores and logs one event. Never throws. */
  async record(event: AuditEventInput): Promise<void> {
    const record = {
      type: event.type,
      userId: event.userId ?? null,
      username: cap(event.username, AUDIT_FIELD_LIMITS.username),
      ip: cap(event.client?.ip, AUDIT_FIELD_LIMITS.ip),
      userAgent: cap(event.client?.userAgent, AUDIT_FIELD_LIMITS.userAgent),
      sessionId: event.sessionId ?? null,
      detail: cap(event.detail, AUDIT_FIELD_LIMITS.detail),
      at: new Date(this.deps.now()),
    };
    const reqId = event.client?.requestId;
    try {
      const id = await this.deps.store.insert(record);
      this.deps.logger.info({ reqId, audit: { id, ...record, at: record.at.toISOString() } }, "audit event");
    } catch (error) {
      // The event still reaches the log; only its row is missing.
      this.deps.logger.error({ reqId, err: error, audit: { ...record, at: record.at.toISOString() } }, "audit event could not be stored");
    }
  }

  /**
   * A page of the newest events first, optionally of one type or one user; `first` defaults to 50
   * and `offset` to 0 (the resolver's validation bounds them).
   */
  list(args: Partial<AuditEventsArgs>): Promise<AuditEvent[]> {
    return this.deps.store.listNewest(pageOf(args, AUDIT_EVENTS_DEFAULT), { type: args.type, userId: args.userId });
  }

  /**
   * Deletes events older than the retention period and returns how many. Runs hourly and at start;
   * a failure is logged (and retried on the next run), never thrown.
   */
  async prune(): Promise<number> {
    const cutoff = new Date(this.deps.now() - this.deps.retentionSeconds * 1000);
    try {
      const deleted = await this.deps.store.deleteBefore(cutoff);
      if (deleted > 0) this.deps.logger.info({ deleted, before: cutoff.toISOString() }, "audit events pruned");
      return deleted;
    } catch (error) {
      this.deps.logger.warn({ err: error }, "pruning audit events failed; retrying on the next run");
      return 0;
    }
  }
}

/**
 * Builds an event's `detail` from `key=value` pairs, leaving out undefined values, e.g.
 * `auditDetail({ scope: "ALL", ended: 3 })` is `"scope=ALL ended=3"`. Null when nothing is left.
 */
export function auditDetail(pairs: Record<string, string | number | undefined>): string | null {
  const parts = Object.entries(pairs)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`);
  return parts.length > 0 ? parts.join(" ") : null;
}

function cap(value: string | null | undefined, max: number): string | null {
  if (value === undefined || value === null) return null;
  // By code points, so that a cut never splits a surrogate pair.
  const chars = Array.from(value);
  return chars.length > max ? chars.slice(0, max).join("") : value;
}
