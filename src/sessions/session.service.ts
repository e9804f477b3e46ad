import { randomUUID } from "node:crypto";

import { assuranceOf, type AuthMethod } from "../access/assurance.js";
import type { ClientInfo, RefreshCookie, SessionPrincipal } from "../access/principal.js";
import { hasSecondFactor } from "../access/second-factors.js";
import { auditDetail, AuditEventType } from "../audit/index.js";
import {
  ACCOUNT_DISABLED_MESSAGE,
  ErrorReason,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
} from "../errors.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { perSession } from "../rate-limits/index.js";
import { toPublicUser, type User } from "../users/index.js";
import type { AuthPayload } from "./auth-payload.type.js";
import { type IssuedSession, issueTokens } from "./issue-tokens.js";
import { hashRefreshToken, newChainKey, randomRefreshToken } from "./refresh-chain.js";
import { RefreshTokenStore } from "./refresh-token.store.js";
import { SESSIONS_DEFAULT } from "./session.input.js";
import { type SessionEndReason, SessionStore } from "./session.store.js";
import { LogoutScope, type Session } from "./session.type.js";
import { pruneEndedSessions } from "./session-pruning.js";
import type { SessionServiceDeps } from "./session-service-deps.js";

/** How long an ended session is kept by default before {@link SessionService.prune} deletes it: one day. */
export const ENDED_SESSION_RETENTION_MS = 24 * 60 * 60 * 1000;

export type { SessionServiceDeps } from "./session-service-deps.js";

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
   * Starts a session for a user who just proved `methods` (a password by default); its access token
   * is fresh. Its assurance is decided here, once, by access/assurance.ts's rule, with whether the
   * user has a second factor read in the session's own transaction: a password alone of a user who
   * has one gives an AAL1 session that owes it (`mfaRequired`). With `cookie` the refresh token
   * goes into it instead of the payload. UNAUTHENTICATED (reason ACCOUNT_DISABLED) when the account
   * is disabled by the time the session is written: on PostgreSQL the user's row is share-locked,
   * so a setUserDisabled running at the same moment either sees this session and ends it, or is
   * seen here. Past SESSIONS_MAX_PER_USER live sessions, the least recently used ones end in the
   * same transaction (cause session_limit, audited as SESSION_EVICTED).
   */
  async start(
    user: User,
    client: ClientInfo,
    cookie?: RefreshCookie,
    methods: readonly AuthMethod[] = ["pwd"],
  ): Promise<{ payload: AuthPayload; sessionId: string }> {
    const now = new Date(this.deps.now());
    const refreshToken = randomRefreshToken();
    const session: IssuedSession = {
      id: randomUUID(),
      expiresAt: new Date(now.getTime() + this.deps.sessionTtlSeconds * 1000),
      assurance: assuranceOf(methods, false),
    };
    const evicted = await this.deps.db.transaction().execute(async (trx) => {
      if (!(await this.deps.users.isActiveLocked(trx, user.id)))
        throw new UnauthenticatedError(ErrorReason.ACCOUNT_DISABLED, ACCOUNT_DISABLED_MESSAGE);
      session.assurance = assuranceOf(methods, await hasSecondFactor(trx, user.id));
      await new SessionStore(trx).create({
        ...session,
        userId: user.id,
        now,
        chainKey: newChainKey(),
        ip: client.ip,
        userAgent: client.userAgent,
      });
      await new RefreshTokenStore(trx).insert({
        id: randomUUID(),
        sessionId: session.id,
        tokenHash: hashRefreshToken(refreshToken),
        now,
      });
      return new SessionStore(trx).endLeastRecentlyUsed(user.id, this.deps.maxSessions, now);
    });
    this.deps.logger.info({ userId: user.id, sessionId: session.id, aal: session.assurance.aal }, "session started");
    if (evicted.length > 0) await this.evicted(evicted, now, user, session.id, client);
    return { payload: this.payload(user, session, refreshToken, true, cookie), sessionId: session.id };
  }

  /**
   * Raises the caller's session to AAL2 once a second factor (`method`) was proven, and returns its
   * new tokens: the session's earlier refresh tokens are deleted in the same transaction (so the
   * AAL1 one is unknown from then on and can never be exchanged for an AAL2 token, not even within
   * the reuse interval) and a new one starts a new chain. UNAUTHENTICATED (SESSION_ENDED) when the
   * session has ended meanwhile.
   */
  async raise(
    principal: SessionPrincipal,
    method: Exclude<AuthMethod, "pwd" | "reset">,
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<AuthPayload> {
    const found = await this.deps.users.findById(principal.userId);
    if (!found || found.disabled)
      throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "This session has ended. Sign in again.");
    const user = toPublicUser(found);
    const now = new Date(this.deps.now());
    const refreshToken = randomRefreshToken();
    const raised = await this.deps.db.transaction().execute(async (trx) => {
      const row = await new SessionStore(trx).raise(principal.sessionId, method, newChainKey(), now);
      if (!row) return undefined;
      await new RefreshTokenStore(trx).deleteOfSessions([row.id]);
      await new RefreshTokenStore(trx).insert({
        id: randomUUID(),
        sessionId: row.id,
        tokenHash: hashRefreshToken(refreshToken),
        now,
      });
      return row;
    });
    if (!raised) throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "This session has ended. Sign in again.");
    this.deps.logger.info(
      { userId: principal.userId, sessionId: raised.id, method, reqId: client.requestId },
      "session raised to AAL2",
    );
    return this.payload(user, raised, refreshToken, principal.fresh, cookie);
  }

  /**
   * Raises the caller's session to AAL2 when the user's FIRST second factor takes effect in it
   * (confirmTotp, a first passkey): the factor was just proven in this very session, which had full
   * access before, so its refresh tokens stay (those mutations return no tokens to replace them);
   * the next refresh carries AAL2. Unlike {@link raise}, which a session that owed its factor goes
   * through, this lifts nothing that was held back. False when the session has ended.
   */
  async raiseAtEnrollment(principal: SessionPrincipal, method: Exclude<AuthMethod, "pwd" | "reset">): Promise<boolean> {
    const raised = await new SessionStore(this.deps.db).raise(
      principal.sessionId,
      method,
      undefined,
      new Date(this.deps.now()),
    );
    return raised !== undefined;
  }

  private async evicted(evicted: string[], now: Date, user: User, by: string, client: ClientInfo): Promise<void> {
    await this.publish(evicted, now.getTime(), "session_limit", { userId: user.id });
    for (const id of evicted)
      await this.deps.audit.record({
        type: AuditEventType.SESSION_EVICTED,
        userId: user.id,
        username: user.username,
        sessionId: id,
        detail: auditDetail({ by, max: this.deps.maxSessions }),
        client,
      });
  }

  /**
   * Deletes the sessions that ended more than `endedSessionRetentionMs` ago (one day by default),
   * with their refresh tokens (session-pruning.ts); returns how many went.
   */
  prune(): Promise<number> {
    const cutoff = new Date(this.deps.now() - (this.deps.endedSessionRetentionMs ?? ENDED_SESSION_RETENTION_MS));
    return pruneEndedSessions(this.deps.db, cutoff, this.deps.logger);
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

  /** What a sign-in or refresh returns: {@link issueTokens} for the session as its row holds it. */
  payload(
    user: User,
    session: IssuedSession,
    refreshToken: string,
    fresh: boolean,
    cookie?: RefreshCookie,
  ): AuthPayload {
    return issueTokens(this.deps.tokens, user, session, refreshToken, fresh, this.deps.now(), cookie);
  }
}
