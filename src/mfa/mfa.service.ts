import type { Kysely } from "kysely";

import type { AuthMethod } from "../access/assurance.js";
import {
  type ClientInfo,
  type Principal,
  type RefreshCookie,
  sessionIdOf,
  type SessionPrincipal,
} from "../access/principal.js";
import { hasSecondFactor } from "../access/second-factors.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import { ErrorReason, ForbiddenError, NotFoundError } from "../errors.js";
import { requestBatcher } from "../graphql/loaders.js";
import type { MetricsRecorder } from "../metrics.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { AuthPayload, SessionService } from "../sessions/index.js";
import type { UserRecord, UserStore } from "../users/index.js";
import { type CodeChecker, type CodeMethod } from "./code-check.js";
import type { RecoveryCodeStore } from "./recovery-code.store.js";
import { removeAllFactors, usersWithSecondFactor } from "./second-factor.store.js";

/** Who resets a user's second factors: an ADMIN's principal, or the operator's CLI. */
export type MfaResetActor = Principal | "CLI";

export interface MfaServiceDeps {
  readonly db: Kysely<Database>;
  readonly codes: CodeChecker;
  readonly recoveryCodes: RecoveryCodeStore;
  readonly users: UserStore;
  readonly sessions: Pick<SessionService, "raise" | "endAllOf">;
  /** WRITES_MAX_PER_USER, charged to the ADMIN who resets (the CLI is not rate limited). */
  readonly writes: FloodLimit;
  readonly audit: AuditService;
  readonly metrics: MetricsRecorder;
  readonly now: () => number;
}

/** The answer to a reset without a valid second factor: FORBIDDEN, MFA_REQUIRED; the link stays usable. */
function resetNeedsCode(): ForbiddenError {
  return new ForbiddenError(
    ErrorReason.MFA_REQUIRED,
    "This account has a second factor: send mfaCode, a code from the authenticator app or a recovery code, with " +
      "the new password (the link still works). An account with passkeys only signs in with a passkey instead " +
      "and changes the password there.",
  );
}

/**
 * Proving a second factor with a code (verifyMfa, and resetPassword's check), an ADMIN's reset of
 * every factor of a user, and what User.mfaEnabled and User.recoveryCodesRemaining read.
 */
export class MfaService {
  constructor(private readonly deps: MfaServiceDeps) {}

  /**
   * Raises the caller's session to AAL2 with a TOTP or recovery code (spent by one conditional
   * write), rotating its refresh token: returns the session's new tokens. BAD_USER_INPUT on `code`
   * (rule `valid`) for a wrong, reused or malformed code; RATE_LIMITED past the wrong-code limits.
   */
  async verify(
    principal: SessionPrincipal,
    code: string,
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<AuthPayload> {
    const { userId, sessionId } = principal;
    const method = await this.deps.codes.spend(code, { userId, sessionId, client });
    const payload = await this.deps.sessions.raise(principal, method, client, cookie);
    await this.recordProof(method, userId, sessionId, client);
    return payload;
  }

  /**
   * resetPassword's second-factor check (email/'s SecondFactorCheck): undefined for a user without a
   * second factor; otherwise the method `mfaCode` proved, spent. FORBIDDEN, reason MFA_REQUIRED,
   * without one or for a wrong one (counted per account); the reset token is left unspent.
   */
  async checkForReset(
    user: UserRecord,
    mfaCode: string | undefined,
    client: ClientInfo,
  ): Promise<AuthMethod | undefined> {
    if (!(await hasSecondFactor(this.deps.db, user.id))) return undefined;
    if (mfaCode === undefined || mfaCode === "") throw resetNeedsCode();
    const check = { userId: user.id, username: user.username, client };
    const method = await this.deps.codes.spend(mfaCode, check, resetNeedsCode);
    await this.recordProof(method, user.id, undefined, client);
    return method;
  }

  private async recordProof(method: CodeMethod, userId: string, sessionId: string | undefined, client: ClientInfo) {
    const label = method === "otp" ? "totp" : "recovery";
    this.deps.metrics.mfa(label, "verified");
    await this.deps.audit.record({
      type: AuditEventType.MFA_VERIFIED,
      userId,
      sessionId,
      detail: auditDetail({ method: label }),
      client,
    });
    if (method !== "recovery") return;
    const remaining = (await this.deps.recoveryCodes.remaining([userId])).get(userId) ?? 0;
    await this.deps.audit.record({
      type: AuditEventType.RECOVERY_CODE_USED,
      userId,
      sessionId,
      detail: auditDetail({ remaining }),
      client,
    });
  }

  /**
   * Removes every second factor of a user (TOTP, recovery codes, passkeys) and ends every session of
   * theirs on every instance (`mfa_reset`), for an ADMIN or the CLI. NOT_FOUND for an unknown user.
   */
  async resetUser(actor: MfaResetActor, userId: string, client: ClientInfo = {}): Promise<boolean> {
    const reset = async () => {
      const user = await this.deps.users.findById(userId);
      if (!user) throw new NotFoundError("User", userId);
      const removed = await this.deps.db.transaction().execute((trx) => removeAllFactors(trx, userId));
      const ended = await this.deps.sessions.endAllOf(userId, "mfa_reset");
      return { user, removed, ended };
    };
    const { user, removed, ended } =
      actor === "CLI" ? await reset() : await this.deps.writes.spend(actor.userId, reset);
    if (removed.totp > 0) this.deps.metrics.mfa("totp", "removed");
    if (removed.passkeys > 0) this.deps.metrics.mfa("passkey", "removed");
    await this.deps.audit.record({
      type: AuditEventType.MFA_RESET_BY_ADMIN,
      userId,
      username: user.username,
      sessionId: actor === "CLI" ? undefined : sessionIdOf(actor),
      detail: auditDetail({
        by: actor === "CLI" ? "CLI" : actor.userId,
        totp: removed.totp,
        recoveryCodes: removed.recoveryCodes,
        passkeys: removed.passkeys,
        sessions: ended.length,
      }),
      client,
    });
    return true;
  }

  /** Whether each user has a second factor: one query per request for every user it shows. */
  readonly mfaEnabledInRequest = requestBatcher(async (ids: readonly string[]) => {
    const enabled = await usersWithSecondFactor(this.deps.db, ids);
    return ids.map((id) => enabled.has(id));
  });

  /** How many unused recovery codes each user has: one query per request. */
  readonly recoveryCodesRemainingInRequest = requestBatcher(async (ids: readonly string[]) => {
    const remaining = await this.deps.recoveryCodes.remaining(ids);
    return ids.map((id) => remaining.get(id) ?? 0);
  });
}
