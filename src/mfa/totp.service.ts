import { encodeBase32UpperCaseNoPadding } from "@oslojs/encoding";
import type { Kysely } from "kysely";

import type { ClientInfo, RefreshCookie, SessionPrincipal } from "../access/principal.js";
import { hasSecondFactor } from "../access/second-factors.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import { BadUserInputError, ErrorReason, UnauthenticatedError } from "../errors.js";
import type { MetricsRecorder } from "../metrics.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import { toPublicUser, type User, type UserStore } from "../users/index.js";
import { type CodeChecker, invalidCode } from "./code-check.js";
import type { TotpEnrollment } from "./mfa.type.js";
import type { RecoveryCodeStore } from "./recovery-code.store.js";
import { hashRecoveryCode, newRecoveryCode, RECOVERY_CODE_COUNT } from "./recovery-codes.js";
import type { SecretBox } from "./secret-box.js";
import { asTotpCode, matchingStep, newTotpSecret, otpauthUri } from "./totp.js";
import type { TotpStore } from "./totp.store.js";

export interface TotpServiceDeps {
  readonly db: Kysely<Database>;
  readonly totp: TotpStore;
  readonly recoveryCodes: RecoveryCodeStore;
  readonly box: SecretBox;
  readonly codes: CodeChecker;
  readonly users: UserStore;
  readonly sessions: Pick<SessionService, "raise" | "endAllOf">;
  /** WRITES_MAX_PER_USER: enrollTotp and regenerateRecoveryCodes are charged to the account. */
  readonly writes: FloodLimit;
  readonly audit: AuditService;
  readonly metrics: MetricsRecorder;
  readonly now: () => number;
  /** The issuer authenticator apps show (JWT_ISSUER). */
  readonly issuer: string;
}

/**
 * A user's TOTP factor: enrolling (a secret that takes effect only once confirmed with a code),
 * confirming (recovery codes issued, the session raised to AAL2, the user's other sessions ended),
 * disabling, and new recovery codes.
 */
export class TotpService {
  constructor(private readonly deps: TotpServiceDeps) {}

  /**
   * A new secret and its otpauth URI, replacing an unconfirmed enrollment. BAD_USER_INPUT (field
   * `totp`, rule `enabled`) when the user's TOTP is confirmed: disableTotp first.
   */
  enroll(principal: SessionPrincipal): Promise<TotpEnrollment> {
    return this.deps.writes.spend(principal.userId, () => this.enrollNow(principal.userId));
  }

  private async enrollNow(userId: string): Promise<TotpEnrollment> {
    const user = await this.publicUser(userId);
    const secret = newTotpSecret();
    const saved = await this.deps.totp.savePending(
      user.id,
      this.deps.box.seal(secret, user.id),
      new Date(this.deps.now()),
    );
    if (!saved) {
      throw new BadUserInputError([
        { field: "totp", rule: "enabled", message: "is already enabled: disable it (disableTotp) to enroll again" },
      ]);
    }
    return {
      secret: encodeBase32UpperCaseNoPadding(secret),
      otpauthUri: otpauthUri(this.deps.issuer, user.username, secret),
    };
  }

  /**
   * Confirms the pending enrollment with a code of its secret: the TOTP becomes a second factor, ten
   * new recovery codes replace any earlier ones (returned once, never stored in the clear), the
   * current session becomes AAL2 and every other session of the user ends (`mfa_enrolled`: they were
   * proven by a password alone). BAD_USER_INPUT on `code` (rule `pending`) without a pending
   * enrollment, (rule `valid`) for a wrong code, which counts toward the wrong-code limits.
   */
  async confirm(principal: SessionPrincipal, input: string, client: ClientInfo, cookie?: RefreshCookie) {
    const { userId, sessionId } = principal;
    const row = await this.deps.totp.find(userId);
    if (!row || row.confirmed) {
      throw new BadUserInputError([
        { field: "code", rule: "pending", message: "has no TOTP enrollment to confirm: call enrollTotp first" },
      ]);
    }
    const attempt = await this.deps.codes.begin({ userId, sessionId, client }, "totp");
    const code = asTotpCode(input);
    const now = new Date(this.deps.now());
    const step =
      code === undefined
        ? undefined
        : matchingStep(this.deps.box.open(row.secretEnc, userId).plain, code, now.getTime());
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    const confirmed =
      step !== undefined &&
      (await this.deps.db.transaction().execute(async (trx) => {
        if (!(await this.deps.totp.confirm(trx, userId, row.secretEnc, step, now))) return false;
        await this.deps.recoveryCodes.replace(trx, userId, codes.map(normalHash), now);
        return true;
      }));
    if (!confirmed) throw await this.deps.codes.failed({ userId, sessionId, client }, "totp");
    await attempt.succeeded();
    await this.deps.sessions.raise(principal, "otp", client, cookie);
    const ended = await this.deps.sessions.endAllOf(userId, "mfa_enrolled", sessionId);
    await this.deps.audit.record({
      type: AuditEventType.MFA_ENROLLED,
      userId,
      sessionId,
      detail: auditDetail({ method: "totp", sessions: ended.length }),
      client,
    });
    this.deps.metrics.mfa("totp", "enrolled");
    return codes;
  }

  /**
   * Ten new recovery codes replacing every earlier one, used or not (returned once). BAD_USER_INPUT
   * (field `recoveryCodes`, rule `secondFactor`) for a user without a second factor.
   */
  async regenerateRecoveryCodes(principal: SessionPrincipal, client: ClientInfo): Promise<string[]> {
    const { userId, sessionId } = principal;
    if (!(await hasSecondFactor(this.deps.db, userId))) {
      throw new BadUserInputError([
        {
          field: "recoveryCodes",
          rule: "secondFactor",
          message: "need a second factor: enroll TOTP or a passkey first",
        },
      ]);
    }
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    const now = new Date(this.deps.now());
    await this.deps.writes.spend(userId, () =>
      this.deps.db
        .transaction()
        .execute((trx) => this.deps.recoveryCodes.replace(trx, userId, codes.map(normalHash), now)),
    );
    await this.deps.audit.record({
      type: AuditEventType.MFA_ENROLLED,
      userId,
      sessionId,
      detail: auditDetail({ method: "recovery", codes: codes.length }),
      client,
    });
    return codes;
  }

  /**
   * Removes the user's TOTP and recovery codes, given a valid code (TOTP, or a recovery code for a
   * user who lost the authenticator), and ends the user's other sessions (`mfa_removed`).
   * BAD_USER_INPUT on `code`: rule `enabled` without a confirmed TOTP, rule `valid` for a wrong code.
   */
  async disable(principal: SessionPrincipal, code: string, client: ClientInfo): Promise<boolean> {
    const { userId, sessionId } = principal;
    const row = await this.deps.totp.find(userId);
    if (!row?.confirmed) {
      throw new BadUserInputError([
        { field: "code", rule: "enabled", message: "cannot be checked: TOTP is not enabled" },
      ]);
    }
    await this.deps.codes.spend(code, { userId, sessionId, client });
    const removed = await this.deps.db.transaction().execute(async (trx) => {
      const had = await this.deps.totp.delete(trx, userId);
      return { had, codes: await this.deps.recoveryCodes.deleteAll(trx, userId) };
    });
    if (!removed.had) throw invalidCode();
    const ended = await this.deps.sessions.endAllOf(userId, "mfa_removed", sessionId);
    await this.deps.audit.record({
      type: AuditEventType.MFA_DISABLED,
      userId,
      sessionId,
      detail: auditDetail({ method: "totp", recoveryCodes: removed.codes, sessions: ended.length }),
      client,
    });
    this.deps.metrics.mfa("totp", "removed");
    return true;
  }

  private async publicUser(userId: string): Promise<User> {
    const user = await this.deps.users.findById(userId);
    if (!user) throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "This session has ended. Sign in again.");
    return toPublicUser(user);
  }
}

function normalHash(code: string): string {
  return hashRecoveryCode(code.replace(/-/g, ""));
}
