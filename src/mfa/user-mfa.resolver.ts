import "reflect-metadata";

import { Ctx, FieldResolver, Int, Resolver, Root } from "type-graphql";

import type { Context } from "../access/principal.js";
import { Role } from "../access/roles.js";
import { User } from "../users/index.js";
import type { MfaService } from "./mfa.service.js";

/** Whether the caller is the user (or was just signed in as them by this response) or an ADMIN. */
function mayRead(user: User, ctx: Context): boolean {
  if (user.signedInByThisResponse) return true;
  const principal = ctx.principal;
  return !!principal && (principal.userId === user.id || principal.roles.includes(Role.ADMIN));
}

/** `User.mfaEnabled` and `User.recoveryCodesRemaining`: owned by mfa/, so that users/ knows nothing of it. */
@Resolver(() => User)
export class UserMfaResolver {
  constructor(private readonly mfa: MfaService) {}

  @FieldResolver(() => Boolean, {
    description:
      "Whether the account has a second factor (a confirmed TOTP or a passkey): a password alone then gives a " +
      "session that must verifyMfa. Only the user and ADMINs see it: false to anyone else.",
  })
  async mfaEnabled(@Root() user: User, @Ctx() ctx: Context): Promise<boolean> {
    return mayRead(user, ctx) && (await this.mfa.mfaEnabledInRequest(ctx, user.id));
  }

  @FieldResolver(() => Int, {
    nullable: true,
    description:
      "How many unused recovery codes the account has (0 to 10; regenerateRecoveryCodes makes 10 new ones). Only " +
      "the user and ADMINs see it: null to anyone else.",
  })
  async recoveryCodesRemaining(@Root() user: User, @Ctx() ctx: Context): Promise<number | null> {
    return mayRead(user, ctx) ? this.mfa.recoveryCodesRemainingInRequest(ctx, user.id) : null;
  }
}
