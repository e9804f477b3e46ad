import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";
import type { Logger } from "pino";

import type { ClientInfo, RefreshCookie } from "../access/principal.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import { ErrorReason, ForbiddenError, UnauthenticatedError } from "../errors.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { UserStore } from "../users/index.js";
import type { AuthPayload } from "./auth-payload.type.js";
import { hashRefreshToken, isRefreshTokenShape, randomRefreshToken, successorOf } from "./refresh-chain.js";
import { type RefreshTokenRecord, RefreshTokenStore } from "./refresh-token.store.js";
import type { SessionService } from "./session.service.js";
import { type SessionRecord, SessionStore } from "./session.store.js";
import { pruneSpentRefreshTokens } from "./session-pruning.js";

export const INVALID_REFRESH_TOKEN_MESSAGE = "The refresh token is invalid, expired or revoked. Log in again.";

/** refreshToken without its argument, and no cookie: no token was refused, none arrived. */
export const MISSING_REFRESH_TOKEN_MESSAGE =
  "The refresh-token cookie did not arrive with this request (refreshToken without its argument reads it). " +
  "That is expected before any sign-in in this browser and after a logout. Otherwise the usual causes are: login " +
  'or refreshToken sent without credentials: "include", so the browser did not keep or send the cookie; a page ' +
  "whose origin is another site than the API's (127.0.0.1 and localhost are two sites), so the browser withholds " +
  "it; or login called without useCookie: true.";

/** How long a spent refresh token is kept by default (REFRESH_TOKEN_RETENTION): seven days. */
export const SPENT_REFRESH_TOKEN_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export interface RefreshServiceDeps {
  db: Kysely<Database>;
  /** Ends a session whose spent token came back, and signs the new access token. */
  sessions: SessionService;
  /** A refreshed token carries its user's current roles; a deleted or disabled user's is refused. */
  users: UserStore;
  /**
   * REFRESH_TOKEN_REUSE_INTERVAL in milliseconds: how long after its rotation the direct parent of
   * the current refresh token still returns the current one; 0 is strict single use.
   */
  reuseIntervalMs: number;
  /**
   * REFRESH_TOKEN_RETENTION in milliseconds: how long a spent refresh token is kept for reuse
   * detection before {@link RefreshService.pruneSpent} deletes it (never before the reuse interval
   * is over). Default {@link SPENT_REFRESH_TOKEN_RETENTION_MS}.
   */
  spentTokenRetentionMs?: number;
  /** REFRESH_MAX_PER_USER: refreshToken calls per user per hour. */
  refreshes: FloodLimit;
  audit: AuditService;
  now: () => number;
  logger: Logger;
  /** Refreshes by outcome. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

/**
 * The refreshToken mutation: a session's refresh token exchanged for the next one and a new access
 * token, with reuse detection. Starting and ending sessions is {@link SessionService}'s.
 */
export class RefreshService {
  private readonly sessions: SessionStore;
  private readonly refreshTokens: RefreshTokenStore;
  private readonly metrics: MetricsRecorder;

  constructor(private readonly deps: RefreshServiceDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
    this.sessions = new SessionStore(deps.db);
    this.refreshTokens = new RefreshTokenStore(deps.db);
  }

  /**
   * Exchanges a refresh token for a new access token and the next refresh token; the old one is
   * spent. Presenting a spent token ends the whole session (the thief's and the owner's copies both
   * stop working), with one exception, the reuse interval: the direct parent of the session's
   * current token, presented within `reuseIntervalMs` of its rotation, gets the current token again
   * (the same string) with a new access token, so two tabs refreshing at once both stay signed in
   * and there is never more than one live successor. Concurrent refreshes with one token all take
   * that path but one, which rotates: the chain moves once.
   */
  async refresh(presented: string | undefined, client: ClientInfo, cookie?: RefreshCookie): Promise<AuthPayload> {
    // Without the argument, cookie mode: the token comes from the cookie and its successor goes back
    // into it. A cookie sent from a page of a foreign origin is refused before it is even looked up.
    const fromCookie = presented === undefined;
    if (fromCookie && cookie && !cookie.originAllowed) {
      throw new ForbiddenError(ErrorReason.ORIGIN, "The refresh-token cookie is not accepted from this page's origin.");
    }
    if (fromCookie && !cookie?.value) return this.missing();
    const refreshToken = presented ?? cookie?.value ?? "";
    if (!isRefreshTokenShape(refreshToken)) return this.refused();
    const found = await this.refreshTokens.findByHash(hashRefreshToken(refreshToken));
    if (!found) return this.refused();
    const session = await this.sessions.findById(found.sessionId);
    const now = new Date(this.deps.now());
    if (!session || session.revokedAt !== null || session.expiresAt <= now) return this.refused();
    // Charged to the session's user once the token is known to be live (an unknown token costs a
    // read, and nobody else's budget); refused ones, e.g. reuse detected, are given back.
    return this.deps.refreshes.spend(session.userId, () =>
      this.rotate(found, session, refreshToken, now, client, fromCookie ? cookie : undefined),
    );
  }

  /** The rest of {@link refresh}: the live session's token `found` is rotated, or handed its successor again. */
  private async rotate(
    presentedRow: RefreshTokenRecord,
    session: SessionRecord,
    refreshToken: string,
    now: Date,
    client: ClientInfo,
    /** Cookie mode: the successor goes back into it. */
    cookie: RefreshCookie | undefined,
  ): Promise<AuthPayload> {
    let found = presentedRow;
    const successor = session.chainKey === null ? randomRefreshToken() : successorOf(session.chainKey, refreshToken);
    let issued = false;
    if (found.rotatedAt === null) {
      issued = await this.rotateOnce(found.id, session.id, successor, now);
      // Lost a race to a concurrent refresh with the same token: read when the winner rotated it.
      // (On PostgreSQL the losing UPDATE waited for the winner's commit, so its successor is there.)
      // Gone altogether: a second factor raised the session meanwhile and deleted its earlier tokens.
      if (!issued) {
        const again = await this.refreshTokens.findByHash(hashRefreshToken(refreshToken));
        if (!again) return this.refused();
        found = again;
      }
    }
    const reissued = !issued && (await this.isWithinReuseInterval(found.rotatedAt, session.chainKey, successor, now));
    if (!issued && !reissued) return this.reused(session, client);

    // Roles are read again here, so a refreshed token always carries the current ones.
    // A disabled account's sessions were ended with it; this also covers one that slipped past.
    const user = await this.deps.users.findById(session.userId);
    if (!user || user.disabled) return this.refused();
    await this.deps.audit.record({
      type: AuditEventType.TOKEN_REFRESHED,
      userId: user.id,
      username: user.username,
      sessionId: session.id,
      ...(reissued ? { detail: auditDetail({ within: "reuse_interval" }) } : {}),
      client,
    });
    this.metrics.refresh(reissued ? "reuse_interval" : "rotated");
    // The session's assurance as its row held it when read above: a refresh copies it, never raises it.
    return this.deps.sessions.payload(user, session, successor, false, cookie);
  }

  /**
   * Deletes the spent refresh tokens rotated more than REFRESH_TOKEN_RETENTION ago (and at least
   * the reuse interval ago), live sessions' included (session-pruning.ts); returns how many went.
   * Such a token presented later is then unknown, REFRESH_TOKEN_INVALID, and no longer ends its
   * session as a reuse.
   */
  pruneSpent(): Promise<number> {
    const retentionMs = this.deps.spentTokenRetentionMs ?? SPENT_REFRESH_TOKEN_RETENTION_MS;
    const cutoff = new Date(this.deps.now() - Math.max(retentionMs, this.deps.reuseIntervalMs));
    return pruneSpentRefreshTokens(this.deps.db, cutoff, this.deps.logger);
  }

  /**
   * Spends the token `tokenId` and stores its successor, in one transaction; false when a concurrent
   * refresh spent it first (the compare-and-set of {@link RefreshTokenStore.markRotated}).
   */
  private rotateOnce(tokenId: string, sessionId: string, successor: string, now: Date): Promise<boolean> {
    return this.deps.db.transaction().execute(async (trx) => {
      if (!(await new RefreshTokenStore(trx).markRotated(tokenId, now))) return false;
      await new RefreshTokenStore(trx).insert({
        id: randomUUID(),
        sessionId,
        tokenHash: hashRefreshToken(successor),
        now,
      });
      await new SessionStore(trx).touch(sessionId, now);
      return true;
    });
  }

  /** A spent token came back outside the reuse interval: its whole session ends. */
  private async reused(session: SessionRecord, client: ClientInfo): Promise<never> {
    this.deps.logger.warn({ userId: session.userId, sessionId: session.id }, "refresh token reused: session ended");
    await this.deps.sessions.end([session.id], "refresh_token_reused");
    await this.deps.audit.record({
      type: AuditEventType.REFRESH_TOKEN_REUSED,
      userId: session.userId,
      sessionId: session.id,
      client,
    });
    this.metrics.refresh("reuse_detected");
    throw new UnauthenticatedError(ErrorReason.REFRESH_TOKEN_INVALID, INVALID_REFRESH_TOKEN_MESSAGE);
  }

  /** A refresh token that is malformed, unknown, of an ended or expired session, or of a deleted user. */
  private refused(): never {
    this.metrics.refresh("invalid");
    throw new UnauthenticatedError(ErrorReason.REFRESH_TOKEN_INVALID, INVALID_REFRESH_TOKEN_MESSAGE);
  }

  /**
   * Cookie mode without the cookie: told apart from a refused token, because the fix is in the
   * client's setup (credentials, origins, useCookie), not in signing in again and again.
   */
  private missing(): never {
    this.metrics.refresh("missing");
    throw new UnauthenticatedError(ErrorReason.REFRESH_TOKEN_MISSING, MISSING_REFRESH_TOKEN_MESSAGE);
  }

  /**
   * Whether a token rotated at `rotatedAt` may have its successor handed out again: the interval is
   * on, measured from the rotation (not from any later write to the session), the session's tokens
   * are derived (so the successor is known), and that successor is still the session's current
   * token, i.e. the presented token is its direct parent.
   */
  private async isWithinReuseInterval(
    rotatedAt: Date | null,
    chainKey: string | null,
    successor: string,
    now: Date,
  ): Promise<boolean> {
    if (rotatedAt === null || chainKey === null || this.deps.reuseIntervalMs <= 0) return false;
    const age = now.getTime() - rotatedAt.getTime();
    if (age < 0 || age >= this.deps.reuseIntervalMs) return false;
    const current = await this.refreshTokens.findByHash(hashRefreshToken(successor));
    return current !== undefined && current.rotatedAt === null;
  }
}
