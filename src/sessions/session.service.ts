import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";
import type { Logger } from "pino";

import { type AuditService, auditDetail } from "../audit/audit.service.js";
import { AuditEventType } from "../audit/audit.type.js";
import type { AuthPayload } from "./auth-payload.type.js";
import type { TokenService } from "../access/tokens.js";
import type { ApiTokenService } from "../api-tokens/api-token.service.js";
import {
  type ClientInfo,
  type Principal,
  type RefreshCookie,
  type SessionPrincipal,
  sessionIdOf,
} from "../access/principal.js";
import type { Database } from "../db/schema.js";
import {
  ACCOUNT_DISABLED_MESSAGE,
  ErrorReason,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
} from "../errors.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import type { UserStore } from "../users/user.store.js";
import type { User } from "../users/user.type.js";
import {
  hashRefreshToken,
  isRefreshTokenShape,
  newChainKey,
  randomRefreshToken,
  successorOf,
} from "./refresh-chain.js";
import { RefreshTokenStore } from "./refresh-token.store.js";
import type { Revocations } from "../access/revocation-sync.js";
import { type FloodLimit, perSession } from "../rate-limits/flood-limit.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { SESSIONS_DEFAULT } from "./session.input.js";
import { type SessionEndReason, type SessionRecord, SessionStore } from "./session.store.js";
import { LogoutScope, type Session } from "./session.type.js";

/** How long an ended session is kept by default before {@link SessionService.prune} deletes it: one day. */
export const ENDED_SESSION_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Sessions deleted per transaction by {@link SessionService.prune}. */
export const PRUNE_BATCH = 500;
/** Batches per run of {@link SessionService.prune}; what is left goes on the next run. */
export const PRUNE_MAX_BATCHES = 40;

export const INVALID_REFRESH_TOKEN_MESSAGE = "The refresh token is invalid, expired or revoked. Log in again.";

export interface SessionServiceDeps {
  db: Kysely<Database>;
  /** On PostgreSQL a new session locks its user's row against a concurrent setUserDisabled. */
  users: UserStore;
  tokens: TokenService;
  /** Ends sessions on this instance at once and on every other within a second. */
  revocations: Revocations;
  /** revokeUserSessions ends the user's API tokens too. */
  apiTokens: ApiTokenService;
  /** Absolute lifetime of a session's refresh chain (JWT_REFRESH_TOKEN_EXPIRES). */
  sessionTtlSeconds: number;
  /**
   * REFRESH_TOKEN_REUSE_INTERVAL in milliseconds: how long after its rotation the direct parent of
   * the current refresh token still returns the current one; 0 is strict single use.
   */
  reuseIntervalMs: number;
  /** SESSIONS_MAX_PER_USER: a new session ends the user's least recently used ones past it. */
  maxSessions: number;
  /**
   * How long an ended session (and its refresh tokens) is kept before {@link SessionService.prune}
   * deletes it: at least the revocation list's window. Default one day.
   */
  endedSessionRetentionMs?: number;
  /** REFRESH_MAX_PER_USER: refreshToken calls per user per hour. */
  refreshes: FloodLimit;
  /**
   * WRITES_MAX_PER_USER: revokeUserSessions is charged to the ADMIN; logout and revokeSession to the
   * caller's session (see perSession), so a stolen session cannot use up the owner's.
   */
  writes: FloodLimit;
  audit: AuditService;
  now: () => number;
  logger: Logger;
  /** Refreshes by outcome and sessions ended by cause. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

/**
 * Sessions and their token chains: starting one at login, rotating its refresh token with reuse
 * detection, listing and ending sessions. Ending a session takes effect at once on this instance
 * (the in-memory revocation list) and, through `announce`, on every other one.
 */
export class SessionService {
  private readonly sessions: SessionStore;
  private readonly refreshTokens: RefreshTokenStore;
  private readonly metrics: MetricsRecorder;

  constructor(private readonly deps: SessionServiceDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
    this.sessions = new SessionStore(deps.db);
    this.refreshTokens = new RefreshTokenStore(deps.db);
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
    presentedRow: NonNullable<Awaited<ReturnType<RefreshTokenStore["findByHash"]>>>,
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
      const tokenId = found.id;
      issued = await this.deps.db.transaction().execute(async (trx) => {
        if (!(await new RefreshTokenStore(trx).markRotated(tokenId, now))) return false;
        await new RefreshTokenStore(trx).insert({
          id: randomUUID(),
          sessionId: session.id,
          tokenHash: hashRefreshToken(successor),
          now,
        });
        await new SessionStore(trx).touch(session.id, now);
        return true;
      });
      // Lost a race to a concurrent refresh with the same token: read when the winner rotated it.
      // (On PostgreSQL the losing UPDATE waited for the winner's commit, so its successor is there.)
      if (!issued) found = (await this.refreshTokens.findByHash(hashRefreshToken(refreshToken))) ?? found;
    }
    const reissued = !issued && (await this.isWithinReuseInterval(found.rotatedAt, session.chainKey, successor, now));
    if (!issued && !reissued) {
      this.deps.logger.warn({ userId: session.userId, sessionId: session.id }, "refresh token reused: session ended");
      await this.end([session.id], "refresh_token_reused");
      await this.deps.audit.record({
        type: AuditEventType.REFRESH_TOKEN_REUSED,
        userId: session.userId,
        sessionId: session.id,
        client,
      });
      this.metrics.refresh("reuse_detected");
      throw new UnauthenticatedError(ErrorReason.REFRESH_TOKEN_INVALID, INVALID_REFRESH_TOKEN_MESSAGE);
    }

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
    return this.payload(user, session.id, successor, false, session.expiresAt, cookie);
  }

  /** A refresh token that is malformed, unknown, of an ended or expired session, or of a deleted user. */
  private refused(): never {
    this.metrics.refresh("invalid");
    throw new UnauthenticatedError(ErrorReason.REFRESH_TOKEN_INVALID, INVALID_REFRESH_TOKEN_MESSAGE);
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

  /**
   * Ends every session and API token of another user, for an ADMIN (`by` is the ADMIN's principal)
   * or the CLI: their refresh tokens stop at once, and their access and API tokens get 401 on every
   * instance. Returns how many sessions and API tokens ended (0 when none was live). NOT_FOUND for
   * an unknown user.
   */
  async revokeAllOfUser(userId: string, by: Principal | "CLI", client: ClientInfo = {}): Promise<number> {
    const revokeAll = async () => {
      const found = await this.deps.users.findById(userId);
      if (!found) throw new NotFoundError("User", userId);
      return {
        user: found,
        ended: await this.endAllOf(userId, "revoked_by_admin"),
        apiTokens: await this.deps.apiTokens.revokeAllOf(userId, "revoked_by_admin"),
      };
    };
    // The operator's CLI is not rate limited; an ADMIN is, like every signed-in write.
    const { user, ended, apiTokens } =
      by === "CLI" ? await revokeAll() : await this.deps.writes.spend(by.userId, revokeAll);
    await this.deps.audit.record({
      type: AuditEventType.SESSIONS_REVOKED_BY_ADMIN,
      userId,
      username: user.username,
      sessionId: by === "CLI" ? undefined : sessionIdOf(by),
      detail: auditDetail({
        ended: ended.length,
        apiTokens: apiTokens.length,
        by: by === "CLI" ? "CLI" : by.userId,
      }),
      client,
    });
    return ended.length + apiTokens.length;
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

  private async end(sessionIds: string[], reason: SessionEndReason): Promise<string[]> {
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
    await this.deps.revocations.sessionsEnded(ended, at);
    return ended;
  }

  // An access token never outlives its session: near the session's end it is shorter.
  private payload(
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
        createdAt: user.createdAt,
        updatedAt: user.updatedAt,
        signedInByThisResponse: true,
      },
    };
  }
}
