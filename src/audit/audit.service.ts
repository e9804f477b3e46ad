import type { Logger } from "pino";

import type { ClientInfo } from "../access/principal.js";
import { deleteInBatches } from "../db/prune-expired.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import { AUDIT_EVENTS_DEFAULT, type AuditEventsArgs } from "./audit.input.js";
import type { AuditStore } from "./audit.store.js";
import { AUDIT_FIELD_LIMITS, type AuditEvent, type AuditEventType } from "./audit.type.js";

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

/** How long one coalesced event gathers repeats (see {@link AuditService.recordCoalesced}). Default 1 minute. */
export const COALESCE_WINDOW_MS = 60_000;

/** Most coalescing keys held in memory at once; past it, repeats are counted in one overflow event per type and detail. */
export const COALESCE_MAX_KEYS = 10_000;

export interface AuditServiceDeps {
  store: AuditStore;
  /** Events older than this many seconds are pruned (AUDIT_RETENTION). */
  retentionSeconds: number;
  now: () => number;
  logger: Logger;
  /** Default {@link COALESCE_WINDOW_MS}. */
  coalesceWindowMs?: number;
  /** Default {@link COALESCE_MAX_KEYS}. */
  coalesceMaxKeys?: number;
  /** Events deleted per statement by {@link AuditService.prune}; default db/prune-expired.ts's PRUNE_BATCH. */
  pruneBatch?: number;
  /** Statements per run of {@link AuditService.prune}; default PRUNE_MAX_BATCHES. */
  pruneMaxBatches?: number;
}

/** One coalesced event while its window is open: the stored row and how many it stands for. */
interface Coalesced {
  readonly event: AuditEventInput;
  readonly pairs: Record<string, string | number | undefined>;
  readonly endsAt: number;
  count: number;
  /** The id of the row written for the first occurrence; undefined when it could not be stored. */
  readonly id: Promise<string | undefined>;
}

/**
 * The audit log: every security event is stored in `audit_events` and written to the log at info.
 * Recording never fails the request that caused it: a storage failure is logged instead. Events
 * anybody can cause at any rate (a rejected token, a throttled login, a refused registration) are
 * coalesced: see {@link recordCoalesced}.
 */
export class AuditService {
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly open = new Map<string, Coalesced>();
  /** Writes not awaited by the request that caused them, so that close() can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: AuditServiceDeps) {
    this.windowMs = deps.coalesceWindowMs ?? COALESCE_WINDOW_MS;
    this.maxKeys = deps.coalesceMaxKeys ?? COALESCE_MAX_KEYS;
    // A window's count reaches its row at most this long after the window ends.
    this.sweeper = setInterval(() => this.flushEnded(), Math.max(50, Math.min(5000, this.windowMs / 4)));
    this.sweeper.unref();
  }

  /** Stores and logs one event. Never throws. */
  async record(event: AuditEventInput): Promise<void> {
    await this.insert(event);
  }

  /**
   * Stores and logs one event without the request waiting for its write (`stop()` still waits for
   * it): for an answer that must take the same time whether or not there was an event to record
   * (requestPasswordReset for a known address and for an unknown one).
   */
  recordInBackground(event: AuditEventInput): void {
    void this.track(this.insert(event));
  }

  /**
   * Records an event that can come in floods, without waiting for the database: at most one row per
   * (type, client IP, user, username, `pairs`) per window (one minute). The first occurrence is written at
   * once with `count=1`; repeats within the window are counted in memory, and when the window ends
   * (or on {@link flush}, or at shutdown) the row's `detail` is updated to the total, e.g.
   * `reason=MALFORMED count=531`. The row keeps the first occurrence's time, user agent and
   * session. At most `coalesceMaxKeys` keys are held; past that, repeats from new keys are counted
   * in one event per (type, `pairs`) with no IP or user and `overflow=true`, so a flood from spoofed
   * addresses cannot grow memory without bound. Never throws, never waits.
   */
  recordCoalesced(event: Omit<AuditEventInput, "detail">, pairs: Record<string, string | number | undefined>): void {
    // The username (a name tried at login, say) is part of the key, in any letter case, as stored.
    const username = cap(event.username, AUDIT_FIELD_LIMITS.username)?.toLowerCase() ?? null;
    let key = JSON.stringify([event.type, event.client?.ip ?? null, event.userId ?? null, username, pairs]);
    let input: AuditEventInput = event;
    let detail = pairs;
    if (!this.open.has(key) && this.open.size >= this.maxKeys) {
      key = JSON.stringify([event.type, "overflow", pairs]);
      input = { type: event.type };
      detail = { ...pairs, overflow: "true" };
    }
    const now = this.deps.now();
    const current = this.open.get(key);
    if (current && now < current.endsAt) {
      current.count++;
      return;
    }
    if (current) this.endWindow(key, current);
    const id = this.track(this.insert({ ...input, detail: auditDetail({ ...detail, count: 1 }) }));
    this.open.set(key, { event: input, pairs: detail, endsAt: now + this.windowMs, count: 1, id });
  }

  /**
   * Ends every coalescing window now and waits until every row and count is stored (or its failure
   * logged). Called at shutdown; tests call it to read the totals.
   */
  async flush(): Promise<void> {
    for (const [key, entry] of this.open) this.endWindow(key, entry);
    await this.settled();
  }

  /** Waits for the writes already started (without ending any window). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Stops the window timer and flushes; the app calls it before closing the database. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.flush();
  }

  private flushEnded(): void {
    const now = this.deps.now();
    for (const [key, entry] of this.open) if (now >= entry.endsAt) this.endWindow(key, entry);
  }

  /** Ends one window: writes its total onto its row (or as a new row when the first write failed). */
  private endWindow(key: string, entry: Coalesced): void {
    this.open.delete(key);
    if (entry.count === 1) return;
    const detail = auditDetail({ ...entry.pairs, count: entry.count });
    void this.track(
      (async () => {
        const id = await entry.id;
        if (id === undefined) {
          await this.insert({ ...entry.event, detail });
          return;
        }
        try {
          await this.deps.store.setDetail(id, detail);
          this.deps.logger.info({ audit: { id, type: entry.event.type, detail } }, "audit event count updated");
        } catch (error) {
          this.deps.logger.error(
            { err: error, audit: { id, type: entry.event.type, detail } },
            "audit event count could not be stored",
          );
        }
      })(),
    );
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise));
    return promise;
  }

  /** Stores and logs one event; the stored id, or undefined when it could not be stored. */
  private async insert(event: AuditEventInput): Promise<string | undefined> {
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
      return id;
    } catch (error) {
      // The event still reaches the log; only its row is missing.
      this.deps.logger.error(
        { reqId, err: error, audit: { ...record, at: record.at.toISOString() } },
        "audit event could not be stored",
      );
      return undefined;
    }
  }

  /**
   * A page of the newest events first, optionally of one type or one user; `first` defaults to 50
   * and `offset` to 0 (the resolver's validation bounds them); BAD_USER_INPUT when `after` names no event.
   */
  async list(args: Partial<AuditEventsArgs>): Promise<AuditEvent[]> {
    const events = await this.deps.store.listNewest(pageOf(args, AUDIT_EVENTS_DEFAULT), {
      type: args.type,
      userId: args.userId,
    });
    if (!events) throw unknownAfter("event");
    return events;
  }

  /**
   * Deletes events older than the retention period and returns how many, in batches of
   * `pruneBatch` (default 500) and at most `pruneMaxBatches` (default 40) a run: what is left goes
   * on the next one. Runs hourly and at start; a failure is logged (and retried on the next run),
   * never thrown.
   */
  async prune(): Promise<number> {
    const cutoff = new Date(this.deps.now() - this.deps.retentionSeconds * 1000);
    try {
      const deleted = await deleteInBatches(
        (limit) => this.deps.store.deleteBefore(cutoff, limit),
        this.deps.pruneBatch,
        this.deps.pruneMaxBatches,
      );
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
