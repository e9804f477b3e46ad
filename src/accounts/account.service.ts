import type { Logger } from "pino";

import type { ClientInfo, Principal, RefreshCookie, SessionPrincipal } from "../access/principal.js";
import { sessionIdOf } from "../access/principal.js";
import type { Revocations } from "../access/revocation-sync.js";
import type { ApiTokenService } from "../api-tokens/index.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import {
  BadUserInputError,
  ErrorReason,
  NotFoundError,
  ServiceUnavailableError,
  UnauthenticatedError,
} from "../errors.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { type FloodLimit, perSession } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import { PASSWORD_MAX_LENGTH, type PasswordHasher, toPublicUser, type User, type UserStore } from "../users/index.js";
import { AccountStore } from "./account.store.js";

export interface AccountServiceDeps {
  users: UserStore;
  sessions: SessionService;
  apiTokens: ApiTokenService;
  passwords: PasswordHasher;
  /** Credentials of a deleted account are refused on this instance at once, on the others within a second. */
  revocations: Revocations;
  /** How long a deleted account's credentials must stay known to every instance (the revocation list's window). */
  revocationRetentionMs: number;
  audit: AuditService;
  /**
   * WRITES_MAX_PER_USER: setUserDisabled and revokeUserSessions are charged to the ADMIN,
   * deleteAccount attempts to the caller's session.
   */
  writes: FloodLimit;
  now: () => number;
  logger: Logger;
  metrics?: MetricsRecorder;
}

/** Who changes another account: an ADMIN (their principal) or the operator's CLI. */
export type AccountActor = Principal | "CLI";

/**
 * The life of an account beyond its roles: an ADMIN or the CLI ending all of its credentials,
 * disabling and enabling it, and its owner deleting it. All but enabling end every credential of the
 * account on every instance within a second.
 */
export class AccountService {
  private readonly store: AccountStore;
  private readonly metrics: MetricsRecorder;

  constructor(private readonly deps: AccountServiceDeps) {
    this.store = new AccountStore(deps.users, deps.revocationRetentionMs);
    this.metrics = deps.metrics ?? NO_METRICS;
  }

  /**
   * Ends every session and API token of another user, for an ADMIN or the CLI: their refresh tokens
   * stop at once, and their access and API tokens get 401 on every instance. Returns how many
   * sessions and API tokens ended (0 when none was live). NOT_FOUND for an unknown user.
   */
  async revokeAllOfUser(userId: string, actor: AccountActor, client: ClientInfo = {}): Promise<number> {
    const revokeAll = async () => {
      const found = await this.deps.users.findById(userId);
      if (!found) throw new NotFoundError("User", userId);
      return {
        user: found,
        ended: await this.deps.sessions.endAllOf(userId, "revoked_by_admin"),
        apiTokens: await this.deps.apiTokens.revokeAllOf(userId, "revoked_by_admin"),
      };
    };
    // The operator's CLI is not rate limited; an ADMIN is, like every signed-in write.
    const { user, ended, apiTokens } =
      actor === "CLI" ? await revokeAll() : await this.deps.writes.spend(actor.userId, revokeAll);
    await this.deps.audit.record({
      type: AuditEventType.SESSIONS_REVOKED_BY_ADMIN,
      userId,
      username: user.username,
      sessionId: actor === "CLI" ? undefined : sessionIdOf(actor),
      detail: auditDetail({ ended: ended.length, apiTokens: apiTokens.length, by: actorName(actor) }),
      client,
    });
    return ended.length + apiTokens.length;
  }

  /**
   * Disables or enables an account. Disabling ends every session and API token of the user (their
   * tokens get 401 on every instance within a second, their sockets close with 4403) and from then
   * on the right password gets ACCOUNT_DISABLED; enabling lets them sign in again (nothing ended
   * comes back). The last active ADMIN cannot be disabled (BAD_USER_INPUT on `disabled`); an unknown
   * user is NOT_FOUND. Setting what already holds changes nothing and records nothing.
   */
  async setDisabled(actor: AccountActor, userId: string, disabled: boolean, client: ClientInfo = {}): Promise<User> {
    const change = async () => {
      const result = await this.deps.users.setDisabled(userId, disabled, new Date(this.deps.now()));
      if (result === "not-found") throw new NotFoundError("User", userId);
      if (result === "last-admin") {
        throw new BadUserInputError([
          { field: "disabled", rule: "lastAdmin", message: "cannot disable the last active admin" },
        ]);
      }
      return result;
    };
    // The operator's CLI is not rate limited.
    const { user, changed } = actor === "CLI" ? await change() : await this.deps.writes.spend(actor.userId, change);
    // Also when it was disabled already: a credential left live by an interrupted earlier call ends now.
    const ended = disabled ? await this.deps.sessions.endAllOf(user.id, "account_disabled") : [];
    const apiTokens = disabled ? await this.deps.apiTokens.revokeAllOf(user.id, "account_disabled") : [];
    if (changed || ended.length > 0 || apiTokens.length > 0) {
      this.deps.logger.info({ userId: user.id, disabled, by: actorName(actor) }, "account disabled or enabled");
      await this.deps.audit.record({
        type: disabled ? AuditEventType.ACCOUNT_DISABLED : AuditEventType.ACCOUNT_ENABLED,
        userId: user.id,
        username: user.username,
        sessionId: actor === "CLI" ? undefined : sessionIdOf(actor),
        detail: auditDetail(
          disabled
            ? { ended: ended.length, apiTokens: apiTokens.length, by: actorName(actor) }
            : { by: actorName(actor) },
        ),
        client,
      });
    }
    return toPublicUser(user);
  }

  /**
   * Deletes the caller's account after checking its password: the user, their posts, sessions and
   * API tokens, in one transaction; every token of theirs is refused on every instance within a
   * second. A wrong password is BAD_USER_INPUT on `password` and changes nothing; the last active
   * ADMIN cannot delete their account (BAD_USER_INPUT, rule lastAdmin). The audit log keeps
   * ACCOUNT_DELETED with the username. The resolver's guard requires a fresh session token.
   */
  async deleteAccount(
    principal: SessionPrincipal,
    password: string,
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<true> {
    // Charged to this session (a stolen one cannot use up the owner's), before the password check
    // and whatever its outcome: the check is the expensive part.
    const charged = perSession(principal.sessionId);
    await this.deps.writes.charge(charged);
    const user = await this.deps.users.findById(principal.userId);
    if (!user) throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this token no longer exists.");
    // A password longer than any that can be set is wrong without spending a hash on it. A check the
    // password queue turns away (503) gives the attempt back.
    const right =
      [...password].length <= PASSWORD_MAX_LENGTH &&
      (await this.deps.passwords.verify(user.passwordHash, password).catch(async (error: unknown) => {
        if (error instanceof ServiceUnavailableError) await this.deps.writes.refund(charged);
        throw error;
      }));
    if (!right) {
      throw new BadUserInputError([{ field: "password", rule: "matches", message: "is not the current password" }]);
    }
    const at = this.deps.now();
    const deleted = await this.store.delete(user.id, new Date(at));
    if (deleted === "not-found") {
      throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this token no longer exists.");
    }
    if (deleted === "last-admin") {
      throw new BadUserInputError([
        { field: "password", rule: "lastAdmin", message: "the last active admin cannot delete their account" },
      ]);
    }
    await this.deps.revocations.sessionsEnded(deleted.liveSessionIds, at);
    await this.deps.revocations.apiTokensRevoked(deleted.liveApiTokenIds, at);
    this.metrics.sessionsEnded("account_deleted", deleted.liveSessionIds.length);
    cookie?.clear();
    this.deps.logger.info({ userId: user.id, sessionIds: deleted.liveSessionIds }, "account deleted");
    await this.deps.audit.record({
      type: AuditEventType.ACCOUNT_DELETED,
      userId: user.id,
      username: user.username,
      sessionId: principal.sessionId,
      detail: auditDetail({
        posts: deleted.posts,
        sessions: deleted.liveSessionIds.length,
        apiTokens: deleted.liveApiTokenIds.length,
      }),
      client,
    });
    return true;
  }
}

function actorName(actor: AccountActor): string {
  return actor === "CLI" ? "CLI" : actor.userId;
}
