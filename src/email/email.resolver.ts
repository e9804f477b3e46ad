import "reflect-metadata";

import { Arg, Ctx, Mutation, Resolver } from "type-graphql";

import { CredentialMutation } from "../access/credential-operations.js";
import { CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, cookieMode, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { AuthPayload } from "../sessions/index.js";
import { ResetPasswordInput } from "./email.input.js";
import type { EmailAddressService } from "./email-address.service.js";
import { requireEmailAddress } from "./email-rules.js";
import type { PasswordResetService } from "./password-reset.service.js";

/** What every field that sends mail says about the limits and a server without SMTP. */
const MAIL_LIMITS =
  "Counts toward EMAIL_REQUESTS_MAX_PER_IP (per client IP per hour; past it RATE_LIMITED with " +
  "`extensions.retryAfter`). In production without SMTP_URL: FORBIDDEN, reason EMAIL_NOT_CONFIGURED, and nothing changes.";

@Resolver()
export class EmailResolver {
  constructor(
    private readonly resets: PasswordResetService,
    private readonly addresses: EmailAddressService,
  ) {}

  @Mutation(() => Boolean, {
    description:
      "Mail a password reset link to this address if it is an account's verified address. Always answers true, " +
      "after the same work, whether or not an account has the address; at most 3 mails per address per hour " +
      "(later requests answer the same and send nothing). The link's token lives PASSWORD_RESET_TOKEN_EXPIRES " +
      "and replaces any earlier one. " +
      MAIL_LIMITS,
  })
  requestPasswordReset(@Arg("email") email: string, @Ctx() ctx: Context): Promise<boolean> {
    return this.resets.request(requireEmailAddress(email, "email"), clientOf(ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Set a new password with the token of a reset link, and sign in (a fresh token). Every other session and " +
      "API token of the account ends on every instance, and a 'password changed' notice is mailed. An unknown, " +
      "expired, used or replaced token is UNAUTHENTICATED, reason RESET_TOKEN_INVALID, and changes nothing. " +
      "The Authorization header is ignored.",
  })
  @CredentialMutation({ ignoresAuthorization: true })
  resetPassword(@Arg("input") input: ResetPasswordInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.resets.reset(input, clientOf(ctx), cookieMode(input.useCookie === true, ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Mail a new verification link for the caller's address that waits for verification (a changed one, else " +
      "an unverified one); BAD_USER_INPUT on `email` when there is none. At most 3 mails per address per hour " +
      "(later requests answer the same and send nothing). " +
      MAIL_LIMITS,
  })
  @Requires({ session: true })
  requestEmailVerification(@CurrentSession() session: SessionPrincipal, @Ctx() ctx: Context): Promise<boolean> {
    return this.addresses.requestVerification(session, clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Verify an address with the token of a verification link: it becomes the account's address (for sign-in " +
      "and reset links). When it replaces another address, every other session of the account ends (the " +
      "caller's own stays when the request carries it). An unknown, expired or used token, or an address another " +
      "account verified first, is UNAUTHENTICATED, reason VERIFICATION_TOKEN_INVALID.",
  })
  @CredentialMutation()
  verifyEmail(@Arg("token") token: string, @Ctx() ctx: Context): Promise<boolean> {
    const session = ctx.principal?.kind === "session" ? ctx.principal : undefined;
    return this.addresses.verify(token, session, clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Change the account's address: a verification link goes to the new address and a notice to the current " +
      "verified one; the new address replaces it only once verified, which ends the account's other sessions. " +
      "Any valid address is accepted (this never says whether another account uses it). " +
      MAIL_LIMITS,
  })
  @Requires({ session: true, fresh: true, aal: 2 })
  changeEmail(
    @Arg("newEmail") newEmail: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.addresses.change(session, requireEmailAddress(newEmail, "newEmail"), clientOf(ctx));
  }
}
