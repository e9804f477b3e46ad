import type { Kysely } from "kysely";

import type { AuthMethod } from "../access/assurance.js";
import { hashOpaqueSecret, mintOpaqueToken, OPAQUE_SECRET_PATTERN } from "../access/opaque-token.js";
import type { ClientInfo, RefreshCookie } from "../access/principal.js";
import type { ApiTokenService } from "../api-tokens/index.js";
import { auditDetail, AuditEventType } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import { ACCOUNT_DISABLED_MESSAGE, ErrorReason, UnauthenticatedError } from "../errors.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import type { AuthPayload } from "../sessions/index.js";
import { type PasswordHasher, toPublicUser, type UserRecord } from "../users/index.js";
import { linkWith, passwordChangedMail, resetPasswordMail } from "./email.templates.js";
import type { EmailFlowDeps } from "./mail-requests.js";

/** The prefix of a reset token: greppable in a leaked log, told apart from every other token. */
export const RESET_TOKEN_PREFIX = "prt_";
const RESET_TOKEN_SHAPE = new RegExp(`^${RESET_TOKEN_PREFIX}${OPAQUE_SECRET_PATTERN}$`);

/** A user id no account has: the unknown address's stand-in for the known one's voiding write. */
const NOBODY = "00000000-0000-0000-0000-000000000000";

/**
 * Checks a second factor between a reset token's check and its spending: throws (FORBIDDEN,
 * MFA_REQUIRED) to refuse, leaving the token unspent, and returns the method proven (undefined for a
 * user without a second factor), which the new session's assurance is derived from. The
 * multi-factor feature, built after this one, hands it over with {@link PasswordResetService.useSecondFactor}.
 */
export type SecondFactorCheck = (
  user: UserRecord,
  mfaCode: string | undefined,
  client: ClientInfo,
) => Promise<AuthMethod | undefined>;

export interface PasswordResetDeps extends EmailFlowDeps {
  passwords: PasswordHasher;
  apiTokens: ApiTokenService;
}

/** The answer to an unknown, expired, spent or voided reset token. */
export function resetTokenInvalid(): UnauthenticatedError {
  return new UnauthenticatedError(
    ErrorReason.RESET_TOKEN_INVALID,
    "This reset link is invalid, was used already, or has expired. Ask for a new one.",
  );
}

/** Forgotten passwords: reset links mailed to verified addresses (or printed by the CLI), and resets. */
export class PasswordResetService {
  private readonly metrics: MetricsRecorder;
  private secondFactor: SecondFactorCheck | undefined;

  constructor(private readonly deps: PasswordResetDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
  }

  /** Sets the second-factor check of {@link reset}; the multi-factor feature's build calls it once. */
  useSecondFactor(check: SecondFactorCheck): void {
    if (this.secondFactor) throw new Error("the reset's second-factor check is set already");
    this.secondFactor = check;
  }

  /**
   * Mails a reset link to `email` when it is an account's verified address and its allowance
   * (EMAIL_MAX_PER_ADDRESS) is not spent; answers true in every case, after the same work: one
   * voiding write, and one outbox row (queued, or suppressed for any other address), in one
   * transaction. Never waits for SMTP.
   */
  async request(email: string, client: ClientInfo): Promise<true> {
    await this.deps.requests.admit(client);
    this.metrics.emailStep("reset_requested");
    const allowed = await this.deps.requests.allowance(email);
    const found = await this.deps.users.findByVerifiedEmail(email);
    // Undefined for an unknown or unverified address, and for a known one past its allowance.
    const user = allowed ? found : undefined;
    const now = new Date(this.deps.now());
    const { token, hash } = mintOpaqueToken(RESET_TOKEN_PREFIX);
    const mail = resetPasswordMail(
      user?.email ?? email,
      user?.username ?? email.slice(0, email.indexOf("@")),
      linkWith(this.deps.email.passwordResetUrl, token),
      this.deps.email.resetTokenTtlSeconds,
    );
    await this.deps.db.transaction().execute(async (trx) => {
      // Past its allowance a known address keeps its live link (voiding it would let anyone who
      // knows the address spoil the owner's reset): like an unknown one, it voids nobody's.
      await this.deps.tokens.voidAll(trx, user?.id ?? NOBODY, "password_reset", now);
      if (user) await this.insertToken(trx, user, hash, now);
      // The stand-in for the insert: one statement on email_tokens's unique index, which finds nothing.
      else await this.deps.tokens.spend(trx, hash, "password_reset", now);
      await (user ? this.deps.mailer.enqueue(trx, mail) : this.deps.mailer.suppress(trx, mail));
    });
    // Not awaited: the answer for an unknown address has no such row to wait for.
    if (user) {
      this.deps.audit.recordInBackground({
        type: AuditEventType.PASSWORD_RESET_REQUESTED,
        userId: user.id,
        username: user.username,
        detail: auditDetail({ expires: this.deps.email.resetTokenTtlSeconds }),
        client,
      });
    }
    return true;
  }

  /**
   * For the operator's `users reset-link`: a reset link for the user (voiding their older ones),
   * audited `by=CLI`. Undefined for an unknown username.
   */
  async linkFor(username: string): Promise<string | undefined> {
    const user = await this.deps.users.findByUsername(username);
    if (!user) return undefined;
    const now = new Date(this.deps.now());
    const { token, hash } = mintOpaqueToken(RESET_TOKEN_PREFIX);
    await this.deps.db.transaction().execute(async (trx) => {
      await this.deps.tokens.voidAll(trx, user.id, "password_reset", now);
      await this.insertToken(trx, user, hash, now);
    });
    await this.deps.audit.record({
      type: AuditEventType.PASSWORD_RESET_REQUESTED,
      userId: user.id,
      username: user.username,
      detail: auditDetail({ by: "CLI", expires: this.deps.email.resetTokenTtlSeconds }),
    });
    return linkWith(this.deps.email.passwordResetUrl, token);
  }

  /**
   * Voids every live reset link of the user: after a login with the password, or a changed
   * password, an older link must not work (a stale link in an inbox is a way in for whoever reads it).
   */
  async voidLinks(userId: string): Promise<void> {
    await this.deps.tokens.voidAll(this.deps.db, userId, "password_reset", new Date(this.deps.now()));
  }

  private insertToken(trx: Kysely<Database>, user: UserRecord, hash: string, now: Date): Promise<void> {
    return this.deps.tokens.insert(trx, {
      userId: user.id,
      purpose: "password_reset",
      hash,
      email: user.email ?? "",
      now,
      expiresAt: new Date(now.getTime() + this.deps.email.resetTokenTtlSeconds * 1000),
    });
  }

  /**
   * Sets a new password with a reset token and signs in. The token is checked first without being
   * spent, then the new password is hashed, then the second factor (for a user who has one); only
   * then one short transaction spends the token (one conditional write: of concurrent resets with
   * one token exactly one gets past it), voids the user's other reset tokens, sets the hash and
   * writes the "password changed" notice. Every session and API token of the user then ends on
   * every instance, and a new session starts (in cookie mode like login's).
   */
  async reset(
    input: { token: string; newPassword: string; mfaCode?: string | null },
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<AuthPayload> {
    const user = await this.userOfLiveToken(input.token);
    if (user.disabled) throw new UnauthenticatedError(ErrorReason.ACCOUNT_DISABLED, ACCOUNT_DISABLED_MESSAGE);
    // Hashed before the second factor is checked: a reset the password queue turns away (503) has
    // then spent nothing, and the same TOTP or recovery code works on the retry.
    const passwordHash = await this.deps.passwords.hash(input.newPassword);
    const secondFactor = await this.secondFactor?.(user, input.mfaCode ?? undefined, client);
    const now = new Date(this.deps.now());
    await this.deps.db.transaction().execute(async (trx) => {
      const spent = await this.deps.tokens.spend(trx, hashOpaqueSecret(input.token), "password_reset", now);
      if (!spent) throw this.invalid();
      await this.deps.tokens.voidAll(trx, user.id, "password_reset", now);
      await this.deps.users.setPasswordHash(user.id, passwordHash, now, trx);
      if (user.email && user.emailVerified && this.deps.mailer.configured) {
        await this.deps.mailer.enqueue(trx, passwordChangedMail(user.email, user.username));
      }
    });
    const ended = await this.deps.sessions.endAllOf(user.id, "password_reset");
    const apiTokens = await this.deps.apiTokens.revokeAllOf(user.id, "password_reset");
    const methods: AuthMethod[] = secondFactor ? ["reset", secondFactor] : ["reset"];
    const { payload, sessionId } = await this.deps.sessions.start(toPublicUser(user), client, cookie, methods);
    await this.deps.audit.record({
      type: AuditEventType.PASSWORD_RESET,
      userId: user.id,
      username: user.username,
      sessionId,
      detail: auditDetail({ sessions: ended.length, apiTokens: apiTokens.length }),
      client,
    });
    this.metrics.emailStep("reset_completed");
    return payload;
  }

  /** The user of a live reset token, the token left unspent; RESET_TOKEN_INVALID otherwise. */
  private async userOfLiveToken(token: string): Promise<UserRecord> {
    // Anything not shaped like a token is refused without a database read.
    if (!RESET_TOKEN_SHAPE.test(token)) throw this.invalid();
    const live = await this.deps.tokens.findLive(hashOpaqueSecret(token), "password_reset", new Date(this.deps.now()));
    const user = live && (await this.deps.users.findById(live.userId));
    if (!user) throw this.invalid();
    return user;
  }

  private invalid(): UnauthenticatedError {
    this.metrics.emailStep("reset_token_invalid");
    return resetTokenInvalid();
  }
}
