import type { Role } from "./roles.js";

/**
 * Why a session or API token ended, as far as a client is told when its socket is closed for it: its
 * account was disabled, or it ended for any other reason (logout, revocation, reuse detection, a
 * password change, a deleted account, …).
 */
export type EndCause = "account_disabled" | "ended";

/** The {@link EndCause} of the reason a session or API token was stored as ended with (`revoked_reason`). */
export function endCauseOf(storedReason: string | null | undefined): EndCause {
  return storedReason === "account_disabled" ? "account_disabled" : "ended";
}

/**
 * What every instance must know, in memory, to refuse tokens without a database round trip:
 * the sessions that ended and the API tokens revoked (both are random UUIDs, kept in one map of
 * ended credentials), and the current roles of users whose roles changed. An entry only
 * matters while a token minted before the change could still be unexpired, so it is dropped
 * `retentionMs` (the access-token lifetime plus clock leeway) after the change.
 */
export class RevocationList {
  private readonly endedSessions = new Map<string, number>();
  private readonly changedRoles = new Map<string, { roles: readonly Role[]; at: number }>();
  private nextPrune = 0;
  private readonly endListeners = new Set<(sessionId: string, cause: EndCause) => void>();

  constructor(
    private readonly retentionMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Cost per request: one Map lookup. */
  isSessionEnded(sessionId: string): boolean {
    return this.endedSessions.has(sessionId);
  }

  /** The current roles of a user whose roles changed within a token lifetime, else undefined. */
  currentRoles(userId: string): readonly Role[] | undefined {
    return this.changedRoles.get(userId)?.roles;
  }

  /**
   * Records an ended session (or revoked API token), and why. The first time one is recorded, every
   * {@link onSessionEnded} listener hears of it: this is the one place every instance learns of
   * ended sessions, its own (RevocationSync.sessionsEnded) and the others' (RevocationSync's reads)
   * alike. Only the listeners hear the cause; a token is refused whatever it was.
   */
  addEndedSession(sessionId: string, endedAt: number, cause: EndCause = "ended"): void {
    const known = this.endedSessions.has(sessionId);
    this.endedSessions.set(sessionId, endedAt);
    this.pruneSoon();
    if (!known) for (const listener of this.endListeners) listener(sessionId, cause);
  }

  /**
   * Calls `listener` with the id of each session recorded as ended from now on, and its cause (the
   * WebSocket server closes that session's sockets, saying why). Returns the function that removes
   * it. A listener must not throw.
   */
  onSessionEnded(listener: (sessionId: string, cause: EndCause) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /** Records a role change; an older change never overwrites a newer one. */
  addRoleChange(userId: string, roles: readonly Role[], changedAt: number): void {
    const known = this.changedRoles.get(userId);
    if (!known || known.at <= changedAt) this.changedRoles.set(userId, { roles, at: changedAt });
    this.pruneSoon();
  }

  /** Entries counts, for tests and diagnostics. */
  get size(): { sessions: number; users: number } {
    return { sessions: this.endedSessions.size, users: this.changedRoles.size };
  }

  /** Drops entries older than the retention; runs at most once a second from the add paths. */
  prune(): void {
    const cutoff = this.now() - this.retentionMs;
    for (const [id, at] of this.endedSessions) if (at < cutoff) this.endedSessions.delete(id);
    for (const [id, entry] of this.changedRoles) if (entry.at < cutoff) this.changedRoles.delete(id);
  }

  private pruneSoon(): void {
    const now = this.now();
    if (now < this.nextPrune) return;
    this.nextPrune = now + 1000;
    this.prune();
  }
}
