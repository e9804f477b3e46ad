import "reflect-metadata";

import { Arg, Ctx, Mutation, Resolver } from "type-graphql";

import { CredentialMutation } from "../access/credential-operations.js";
import { CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, cookieMode, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { AuthPayload, type RefreshService } from "../sessions/index.js";
import { ChangePasswordInput, LoginInput, RegisterInput } from "./auth.input.js";
import type { AuthService } from "./auth.service.js";

@Resolver()
export class AuthResolver {
  constructor(
    private readonly auth: AuthService,
    private readonly refreshes: RefreshService,
  ) {}

  @Mutation(() => AuthPayload, {
    description:
      "Create an account (role USER) and sign in. The access token is fresh. " +
      "After REGISTER_MAX_PER_IP registrations from this IP within an hour, RATE_LIMITED with `extensions.retryAfter` (seconds).",
  })
  @CredentialMutation({ ignoresAuthorization: true })
  register(@Arg("input") input: RegisterInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.register(input, clientOf(ctx), cookieMode(input.useCookie === true, ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Sign in. Unknown usernames and wrong passwords get the same UNAUTHENTICATED error (reason BAD_CREDENTIALS). " +
      "After too many failures for this username from this IP, or from this IP altogether, RATE_LIMITED with " +
      "`extensions.retryAfter` (seconds), even with the right password. The access token is fresh.",
  })
  @CredentialMutation({ ignoresAuthorization: true })
  login(@Arg("input") input: LoginInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.login(input, clientOf(ctx), cookieMode(input.useCookie === true, ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Exchange a refresh token for a new access token (not fresh) and the next refresh token. " +
      "The Authorization header is ignored (an operation of only login, register and refreshToken never looks at it). " +
      "Without the argument the refresh token is read from the cookie of cookie mode, and the next one is set " +
      "there again (FORBIDDEN, reason ORIGIN, from a page of another origin than the server's or CORS_ORIGINS). " +
      "A refused refresh token is UNAUTHENTICATED with reason REFRESH_TOKEN_INVALID: sign in again; " +
      "no argument and no cookie is reason REFRESH_TOKEN_MISSING (the message names the usual causes).",
  })
  @CredentialMutation({ ignoresAuthorization: true })
  refreshToken(
    @Arg("refreshToken", () => String, { nullable: true }) refreshToken: string | null | undefined,
    @Ctx() ctx: Context,
  ): Promise<AuthPayload> {
    return this.refreshes.refresh(refreshToken ?? undefined, clientOf(ctx), ctx.refreshCookie);
  }

  @Mutation(() => Boolean, {
    description: "Change the password. Ends every other session of the user; this one stays signed in.",
  })
  // Checks a password, so at most one per operation; but it needs the caller's token.
  @CredentialMutation()
  @Requires({ session: true, fresh: true, aal: 2 })
  changePassword(
    @Arg("input") input: ChangePasswordInput,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.auth.changePassword(session, input, clientOf(ctx));
  }
}
