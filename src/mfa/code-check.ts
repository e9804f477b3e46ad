import type { ClientInfo } from "../access/principal.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import { BadUserInputError } from "../errors.js";
import type { MfaMethod } from "../metric-names.js";
import type { MetricsRecorder } from "../metrics.js";
import type { MfaAttempt, MfaThrottle } from "./mfa-throttle.js";
import type { RecoveryCodeStore } from "./recovery-code.store.js";
import { asRecoveryCode, hashRecoveryCode } from "./recovery-codes.js";
import type { SecretBox } from "./secret-box.js";
import { asTotpCode, matchingStep } from "./totp.js";
import type { TotpStore } from "./totp.store.js";

/** The second factor a code proved, as `amr` names it. */
export type CodeMethod = "otp" | "recovery";

/** The one answer to a wrong, reused or malformed code, TOTP or recovery alike. */
export function invalidCode(field = "code"): BadUserInputError {
  return new BadUserInputError([{ field, rule: "valid", message: "is not a valid code" }]);
}

/** What a code is checked for: whose it is, which session sends it, and what it may be. */
export interface CodeCheck {
  readonly userId: string;
  readonly username?: string;
  readonly sessionId?: string;
  readonly client: ClientInfo;
  /** Recovery codes accepted too (default true). */
  readonly recovery?: boolean;
}

export interface CodeCheckerDeps {
  readonly totp: TotpStore;
  readonly recoveryCodes: RecoveryCodeStore;
  readonly box: SecretBox;
  readonly throttle: MfaThrottle;
  readonly audit: AuditService;
  readonly metrics: MetricsRecorder;
  readonly now: () => number;
}

/**
 * Checks a TOTP or recovery code and spends it: a TOTP code by raising the user's last accepted step
 * (one conditional write), a recovery code by marking it used (one conditional write), so a code
 * works once even when sent by several sessions at the same moment. Every attempt goes through the
 * wrong-code throttle first; a wrong code is audited (MFA_FAILED) and counted.
 */
export class CodeChecker {
  constructor(private readonly deps: CodeCheckerDeps) {}

  /** What the code looks like, for the metrics. */
  static kindOf(code: string): MfaMethod {
    return asTotpCode(code) !== undefined ? "totp" : "recovery";
  }

  /**
   * The method the code proves, once spent; throws RATE_LIMITED past the wrong-code budget, or
   * `refuse()` (default: BAD_USER_INPUT on `code`, rule `valid`) for a wrong one.
   */
  async spend(code: string, check: CodeCheck, refuse: () => Error = () => invalidCode()): Promise<CodeMethod> {
    const kind = CodeChecker.kindOf(code);
    const attempt = await this.begin(check, kind);
    const method = await this.prove(code, check);
    if (!method) throw await this.failed(check, kind, refuse);
    await attempt.succeeded();
    return method;
  }

  /** Counts an attempt before its code is checked (RATE_LIMITED past a budget); see MfaThrottle. */
  begin(check: CodeCheck, kind: MfaMethod): Promise<MfaAttempt> {
    return this.deps.throttle.begin({ ...check, kind });
  }

  /** A wrong code: audited (MFA_FAILED, reason WRONG_CODE) and counted; returns the error to throw. */
  async failed(check: CodeCheck, kind: MfaMethod, refuse: () => Error = () => invalidCode()): Promise<Error> {
    this.deps.metrics.mfa(kind, "failed");
    await this.deps.audit.record({
      type: AuditEventType.MFA_FAILED,
      userId: check.userId,
      username: check.username,
      sessionId: check.sessionId,
      detail: auditDetail({ reason: "WRONG_CODE", kind }),
      client: check.client,
    });
    return refuse();
  }

  private async prove(input: string, check: CodeCheck): Promise<CodeMethod | undefined> {
    const code = asTotpCode(input);
    if (code !== undefined) return (await this.proveTotp(check.userId, code)) ? "otp" : undefined;
    const recovery = check.recovery === false ? undefined : asRecoveryCode(input);
    if (recovery === undefined) return undefined;
    const spent = await this.deps.recoveryCodes.spend(
      check.userId,
      hashRecoveryCode(recovery),
      new Date(this.deps.now()),
    );
    return spent ? "recovery" : undefined;
  }

  /** A code of the user's confirmed TOTP for a step later than the last accepted one, now accepted. */
  private async proveTotp(userId: string, code: string): Promise<boolean> {
    const row = await this.deps.totp.find(userId);
    if (!row?.confirmed) return false;
    const opened = this.deps.box.open(row.secretEnc, userId);
    const step = matchingStep(opened.plain, code, this.deps.now());
    if (step === undefined || !(await this.deps.totp.acceptStep(userId, step))) return false;
    // Rotation: a secret sealed under an older key moves to the current one on its next use.
    if (!opened.current) await this.deps.totp.reseal(userId, row.secretEnc, this.deps.box.seal(opened.plain, userId));
    return true;
  }
}
