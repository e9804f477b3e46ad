import "reflect-metadata";

import { Arg, Ctx, ID, Mutation, Resolver } from "type-graphql";

import { CurrentPrincipal, CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, type Principal, sessionCookie, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { Role } from "../access/roles.js";
import { Scope } from "../access/scopes.js";
import { BadUserInputError } from "../errors.js";
import { Bounded } from "../graphql/query-cost.js";
import { AuthPayload } from "../sessions/index.js";
import type { MfaService } from "./mfa.service.js";
import { TotpEnrollment } from "./mfa.type.js";
import { RECOVERY_CODE_SHOWN_LENGTH } from "./recovery-codes.js";
import type { TotpService } from "./totp.service.js";

/** Longest `code` read: a TOTP is 6 digits, a recovery code 14 characters with its dashes. */
export const MFA_CODE_MAX_LENGTH = 64;

/** What every field taking a code says about it. */
const CODE_RULES =
  "A wrong, reused or malformed code: BAD_USER_INPUT on `code`, rule `valid`. Wrong codes count: at most 5 per " +
  "session and 10 per account in 15 minutes, then RATE_LIMITED with `extensions.retryAfter`.";

/** `code` within its length, else BAD_USER_INPUT (before anything is counted or read). */
function boundedCode(code: string): string {
  if (code.length > MFA_CODE_MAX_LENGTH)
    throw new BadUserInputError([
      { field: "code", rule: "maxLength", message: `must be at most ${MFA_CODE_MAX_LENGTH} characters` },
    ]);
  return code;
}

@Resolver()
export class MfaResolver {
  constructor(
    private readonly totp: TotpService,
    private readonly mfa: MfaService,
  ) {}

  @Mutation(() => TotpEnrollment, {
    description:
      "Start enrolling TOTP: a new secret, replacing an unconfirmed one. It is no second factor until confirmTotp. " +
      "BAD_USER_INPUT (field `totp`, rule `enabled`) when TOTP is already enabled: disableTotp first.",
  })
  @Requires({ session: true, fresh: true })
  enrollTotp(@CurrentSession() session: SessionPrincipal): Promise<TotpEnrollment> {
    return this.totp.enroll(session);
  }

  @Mutation(() => [String], {
    description:
      "Confirm the TOTP enrollment with a code from the authenticator app. Returns 10 recovery codes, shown only " +
      "this once (each works once in place of a code). The session becomes AAL2 (its refresh token stays; the next " +
      "refresh carries AAL2) and every other session of the " +
      "account ends. BAD_USER_INPUT (rule `pending`) without an enrollment. " +
      CODE_RULES,
  })
  @Requires({ session: true })
  @Bounded(RECOVERY_CODE_SHOWN_LENGTH)
  confirmTotp(
    @Arg("code") code: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<string[]> {
    return this.totp.confirm(session, boundedCode(code), clientOf(ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Prove the second factor with a TOTP or recovery code: the session becomes AAL2 and gets new tokens (its " +
      "earlier refresh token stops working). Allowed while the session owes its second factor. " +
      CODE_RULES,
  })
  @Requires({ session: true })
  verifyMfa(
    @Arg("code") code: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<AuthPayload> {
    return this.mfa.verify(session, boundedCode(code), clientOf(ctx), sessionCookie(ctx));
  }

  @Mutation(() => [String], {
    description:
      "Replace every recovery code with 10 new ones, shown only this once. BAD_USER_INPUT (field " +
      "`recoveryCodes`, rule `secondFactor`) for an account without a second factor.",
  })
  @Requires({ session: true, fresh: true, aal: 2 })
  @Bounded(RECOVERY_CODE_SHOWN_LENGTH)
  regenerateRecoveryCodes(@CurrentSession() session: SessionPrincipal, @Ctx() ctx: Context): Promise<string[]> {
    return this.totp.regenerateRecoveryCodes(session, clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Turn TOTP off with a valid code (TOTP, or a recovery code when the authenticator is lost): the secret and " +
      "every recovery code are removed and every other session of the account ends. BAD_USER_INPUT (rule " +
      "`enabled`) when TOTP is not enabled. " +
      CODE_RULES,
  })
  @Requires({ session: true, fresh: true, aal: 2 })
  disableTotp(
    @Arg("code") code: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.totp.disable(session, boundedCode(code), clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Remove every second factor of a user (TOTP, recovery codes, passkeys), for one who lost them, and end " +
      "every session of theirs on every instance. NOT_FOUND for an unknown user. Audited as MFA_RESET_BY_ADMIN.",
  })
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN, aal: 2 })
  resetUserMfa(
    @Arg("userId", () => ID) userId: string,
    @CurrentPrincipal() principal: Principal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.mfa.resetUser(principal, userId, clientOf(ctx));
  }
}
