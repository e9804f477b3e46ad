import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";
import type { Logger } from "pino";

import type { ClientInfo, RefreshCookie, SessionPrincipal } from "../access/principal.js";
import type { Revocations } from "../access/revocation-sync.js";
import type { TokenService } from "../access/tokens.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import {
  ACCOUNT_DISABLED_MESSAGE,
  ErrorReason,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
} from "../errors.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { type FloodLimit, perSession } from "../rate-limits/index.js";
import type { User, UserStore } from "../users/index.js";
import type { AuthPayload } from "./auth-payload.type.js";
import { hashRefreshToken, newChainKey, randomRefreshToken } from "./refresh-chain.js";
import { RefreshTokenStore } from "./refresh-token.store.js";
import { SESSIONS_DEFAULT } from "./session.input.js";
import { type SessionEndReason, SessionStore } from "./session.store.js";
import { LogoutScope, type Session } from "./session.type.js";

/** How long an ended session is kept by default before {@link SessionService.prune} deletes it: one day. */
export const ENDED_SESSION_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Sessions deleted per transaction by {@link SessionService.prune}. */
export const PRUNE_BATCH = 500;
/** Batches per run of {@link SessionService.prune}; what is left goes on the next run. */
export const PRUNE_MAX_BATCHES = 40;

export interface SessionServiceDeps {
  db: Kysely<Database>;
  /** On PostgreSQL a new session locks its user's row against a concurrent setUserDisabled. */
  users: UserStore;
  tokens: TokenService;
  /** Ends sessions on this instance at once and on every other within a second. */
  revocations: Revocations;
  /** Absolute lifetime of a session's refresh chain (JWT_REFRESH_TOKEN_EXPIRES). */
  sessionTtlSeconds: number;
  /** SESSIONS_MAX_PER_USER: a new session ends the user's least recently used ones past it. */
  maxSessions: number;
  /**
   * How long an ended session (and its refresh tokens) is kept before {@link SessionService.prune}
   * deletes it: at least the revocation list's window. Default one day.
   */
  endedSessionRetentionMs?: number;
  /**
   * WRITES_MAX_PER_USER: logout and revokeSession are charged to the caller's session (see
   * perSession), so a stolen session cannot use up the owner's.
   */
  writes: FloodLimit;
  audit: AuditService;
  now: () => number;
  logger: Logger;
  /** Sessions ended by cause. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

/**
 * Sessions: starting one at sign-in (with the cap per user), listing, ending and pruning them.
 * Ending a session takes effect at once on this instance (the in-memory revocation list) and,
 * through {@link Revocations}, on every other one. Refreshing is RefreshService's
 * (refresh.service.ts); ending every credential of another user is accounts/'s.
 */
export class SessionService {
  private readonly sessions: SessionStore;
  private readonly metrics: MetricsRecorder;

  constructor(private readonly deps: SessionServiceDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
    this.sessions = new SessionStore(deps.db);
  }

  /**
   * Starts a session for a user who just proved a password; its access token is fresh. With
   * `cookie` the refresh token goes into it instead of the payload. UNAUTHENTICATED (reason
   * ACCOUNT_DISABLED) when the account is disabled by the time the session is written: on
   * PostgreSQL the user's row is share-locked, so a setUserDisabled running at the same moment
   * either sees this session and ends it, or is seen here. When the user then holds more than
   * SESSIONS_MAX_PER_USER live sessions, the least recently used ones past it end in the same
   * transaction (cause session_limit, audited as SESSION_EVICTED): their tokens get 401 like any
   * ended session's. On PostgreSQL the user's row is locked, so concurrent logins of one user count
   * one after the other and the cap holds.
   */
  async start(
    user: User,
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<{ payload: AuthPayload; sessionId: string }> {
    const now = new Date(this.deps.now());
    const sessionId = randomUUID();
    const refreshToken = randomRefreshToken();
    const chainKey = newChainKey();
    const expiresAt = new Date(now.getTime() + this.deps.sessionTtlSeconds * 1000);
    const evicted = await this.deps.db.transaction().execute(async (trx) => {
      if (!(await this.deps.users.isActiveLocked(trx, user.id)))
        throw new UnauthenticatedError(ErrorReason.ACCOUNT_DISABLED, ACCOUNT_DISABLED_MESSAGE);
      await new SessionStore(trx).create({
        id: sessionId,
        userId: user.id,
        now,
        expiresAt,
        chainKey,
        ip: client.ip,
        userAgent: client.userAgent,
      });
      await new RefreshTokenStore(trx).insert({
        id: randomUUID(),
        sessionId,
        tokenHash: hashRefreshToken(refreshToken),
        now,
      });
      return new SessionStore(trx).endLeastRecentlyUsed(user.id, this.deps.maxSessions, now);
    });
    this.deps.logger.info({ userId: user.id, sessionId }, "session started");
    if (evicted.length > 0) {
      await this.publish(evicted, now.getTime(), "session_limit", { userId: user.id });
      for (const id of evicted)
        await this.deps.audit.record({
          type: AuditEventType.SESSION_EVICTED,
          userId: user.id,
          username: user.username,
          sessionId: id,
          detail: auditDetail({ by: sessionId, max: this.deps.maxSessions }),
          client,
        });
    }
    return { payload: this.payload(user, sessionId, refreshToken, true, expiresAt, cookie), sessionId };
  }

  /**
   * Deletes the sessions that ended more than `endedSessionRetentionMs` ago (one day by default),
   * with their refresh tokens, in batches of {@link PRUNE_BATCH} (at most {@link PRUNE_MAX_BATCHES}
   * a run, letting other work in between), so that every login's session and refresh token rows
   * do not stay forever: what a user's logins leave on disk is what LOGIN_MAX_PER_USER lets in
   * within that day. Returns how many went; a failure is logged and retried on the next run.
   */
  async prune(): Promise<number> {
    const cutoff = new Date(this.deps.now() - (this.deps.endedSessionRetentionMs ?? ENDED_SESSION_RETENTION_MS));
    let deleted = 0;
    try {
      for (let batch = 0; batch < PRUNE_MAX_BATCHES; batch++) {
        const n = await this.deps.db.transaction().execute(async (trx) => {
          const ids = await new SessionStore(trx).endedBefore(cutoff, PRUNE_BATCH);
          await new RefreshTokenStore(trx).deleteOfSessions(ids);
          await new SessionStore(trx).delete(ids);
          return ids.length;
        });
        deleted += n;
        if (n < PRUNE_BATCH) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.deps.logger.warn({ err: error }, "pruning ended sessions failed; retrying on the next run");
    }
    if (deleted > 0) this.deps.logger.info({ deleted, before: cutoff.toISOString() }, "ended sessions pruned");
    return deleted;
  }

  /**
   * A page of the caller's live sessions, newest first, with the current one marked; `first`
   * defaults to 50. BAD_USER_INPUT when `after` names none of the caller's sessions.
   */
  async list(
    principal: SessionPrincipal,
    args: { first?: number | null; offset?: number | null; after?: string | null } = {},
  ): Promise<Session[]> {
    const now = new Date(this.deps.now());
    const sessions = await this.sessions.listActive(principal.userId, now, pageOf(args, SESSIONS_DEFAULT));
    if (!sessions) throw unknownAfter("session");
    return sessions.map((s) => ({
      id: s.id,
      createdAt: s.createdAt,
      lastUsedAt: s.lastUsedAt,
      expiresAt: s.expiresAt,
      userAgent: s.userAgent,
      ip: s.ip,
      current: s.id === principal.sessionId,
    }));
  }

  /**
   * Ends one of the caller's own sessions. NOT_FOUND when there is no such session, FORBIDDEN when
   * it belongs to someone else (and nothing changes). False when it had already ended.
   */
  async revoke(principal: SessionPrincipal, sessionId: string, client: ClientInfo): Promise<boolean> {
    const ended = await this.deps.writes.spend(perSession(principal.sessionId), async () => {
      const session = await this.sessions.findById(sessionId);
      if (!session) throw new NotFoundError("Session", sessionId);
      if (session.userId !== principal.userId)
        throw new ForbiddenError(ErrorReason.OWNERSHIP, "You can only revoke your own sessions.");
      return (await this.end([sessionId], "revoked")).length > 0;
    });
    if (ended) {
      await this.deps.audit.record({
        type: AuditEventType.SESSION_REVOKED,
        userId: principal.userId,
        sessionId,
        detail: auditDetail({ by: principal.sessionId }),
        client,
      });
    }
    return ended;
  }

  /** Ends the current session, all the others, or all of the caller's sessions. */
  async logout(principal: SessionPrincipal, scope: LogoutScope, client: ClientInfo): Promise<boolean> {
    const ended = await this.deps.writes.spend(perSession(principal.sessionId), () =>
      scope === LogoutScope.CURRENT
        ? this.end([principal.sessionId], "logout")
        : this.endAllOf(
            principal.userId,
            scope === LogoutScope.OTHERS ? "logout_others" : "logout",
            scope === LogoutScope.OTHERS ? principal.sessionId : undefined,
          ),
    );
    await this.deps.audit.record({
      type: AuditEventType.LOGGED_OUT,
      userId: principal.userId,
      sessionId: principal.sessionId,
      detail: auditDetail({ scope, ended: ended.length }),
      client,
    });
    return true;
  }

  /** Ends every session of a user except `keep` (after a password change, or logout). */
  async endAllOf(userId: string, reason: SessionEndReason, keep?: string): Promise<string[]> {
    const at = this.deps.now();
    const ended = await this.sessions.revokeAllOf(userId, reason, new Date(at), keep);
    return this.publish(ended, at, reason, { userId });
  }

  /** Ends these sessions (those not ended already) and publishes it; returns the ones it ended. */
  async end(sessionIds: string[], reason: SessionEndReason): Promise<string[]> {
    const at = this.deps.now();
    const ended: string[] = [];
    for (const id of sessionIds) if (await this.sessions.revoke(id, reason, new Date(at))) ended.push(id);
    return this.publish(ended, at, reason);
  }

  private async publish(
    ended: string[],
    at: number,
    reason: SessionEndReason,
    log: Record<string, unknown> = {},
  ): Promise<string[]> {
    if (ended.length === 0) return ended;
    this.metrics.sessionsEnded(reason, ended.length);
    this.deps.logger.info({ ...log, reason, sessionIds: ended }, "sessions ended");
    await this.deps.revocations.sessionsEnded(ended, at, reason);
    return ended;
  }

  /**
   * What a sign-in or refresh returns: an access token for the session (never outliving it: near
   * the session's end it is shorter) and `refreshToken`, in the payload or, with `cookie`, in it.
   */
  payload(
    user: User,
    sessionId: string,
    refreshToken: string,
    fresh: boolean,
    sessionEnd: Date,
    cookie?: RefreshCookie,
  ): AuthPayload {
    const { token, claims } = this.deps.tokens.signAccessToken({
      userId: user.id,
      roles: user.roles,
      sessionId,
      fresh,
      notAfter: Math.floor(sessionEnd.getTime() / 1000),
    });
    // The cookie lives exactly as long as the session can be refreshed.
    cookie?.set(refreshToken, Math.max(0, Math.floor((sessionEnd.getTime() - this.deps.now()) / 1000)));
    return {
      accessToken: token,
      refreshToken: cookie ? null : refreshToken,
      tokenType: "Bearer",
      expiresIn: claims.exp - claims.iat,
      user: {
        id: user.id,
        username: user.username,
        roles: user.roles,
        disabled: user.disabled,
        email: user.email,
        emailVerified: user.emailVerified,
        createdAt: user.createdAt,
        updatedAt: user.updatedAt,
        signedInByThisResponse: true,
      },
    };
  }
}
