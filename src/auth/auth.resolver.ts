import "reflect-metadata";

import { Arg, Ctx, Mutation, Resolver } from "type-graphql";

import { type Context, clientOf } from "../access/principal.js";
import type { SessionService } from "../sessions/session.service.js";
import { ChangePasswordInput, LoginInput, RegisterInput } from "./auth.input.js";
import type { AuthService } from "./auth.service.js";
import { AuthPayload } from "../sessions/auth-payload.type.js";
import { RequiresFresh } from "../access/requires.js";

@Resolver()
export class AuthResolver {
  constructor(
    private readonly auth: AuthService,
    private readonly sessions: SessionService,
  ) {}

  @Mutation(() => AuthPayload, {
    description:
      "Create an account (role USER) and sign in. The access token is fresh. " +
      "After REGISTER_MAX_PER_IP registrations from this IP within an hour, RATE_LIMITED with `extensions.retryAfter` (seconds).",
  })
  register(@Arg("input") input: RegisterInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.register(input, clientOf(ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Sign in. Unknown usernames and wrong passwords get the same UNAUTHENTICATED error (reason BAD_CREDENTIALS). " +
      "After too many failures for this username from this IP, or from this IP altogether, RATE_LIMITED with " +
      "`extensions.retryAfter` (seconds), even with the right password. The access token is fresh.",
  })
  login(@Arg("input") input: LoginInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.login(input, clientOf(ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Exchange a refresh token for a new access token (not fresh) and the next refresh token. " +
      "The Authorization header is ignored (an operation of only login, register and refreshToken never looks at it). " +
      "A refused refresh token is UNAUTHENTICATED with reason REFRESH_TOKEN_INVALID: sign in again.",
  })
  refreshToken(@Arg("refreshToken") refreshToken: string, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.sessions.refresh(refreshToken, clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description: "Change the password. Ends every other session of the user; this one stays signed in.",
  })
  @RequiresFresh()
  changePassword(@Arg("input") input: ChangePasswordInput, @Ctx() ctx: Context): Promise<boolean> {
    return this.auth.changePassword(ctx.principal!, input, clientOf(ctx));
  }
}
