import "reflect-metadata";

import { Arg, Ctx, ID, Int, Mutation, Resolver } from "type-graphql";

import { CurrentPrincipal, CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, type Principal, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { Role } from "../access/roles.js";
import { Scope } from "../access/scopes.js";
import { User } from "../users/index.js";
import type { AccountService } from "./account.service.js";

@Resolver()
export class AccountResolver {
  constructor(private readonly accounts: AccountService) {}

  @Mutation(() => User, {
    description:
      "Disable or enable an account. Disabling ends every session and API token of the user on every instance within " +
      "a second; signing in with the right password then gets UNAUTHENTICATED with reason ACCOUNT_DISABLED. The last " +
      "active ADMIN cannot be disabled (BAD_USER_INPUT). Audited as ACCOUNT_DISABLED or ACCOUNT_ENABLED.",
  })
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN })
  setUserDisabled(
    @Arg("userId", () => ID) userId: string,
    @Arg("disabled") disabled: boolean,
    @CurrentPrincipal() principal: Principal,
    @Ctx() ctx: Context,
  ): Promise<User> {
    return this.accounts.setDisabled(principal, userId, disabled, clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Delete your account with your password: the account, its posts, sessions and API tokens, in one transaction; " +
      "every token of it is refused on every instance within a second. A wrong password is BAD_USER_INPUT and changes " +
      "nothing; the last active ADMIN cannot delete their account. Audited as ACCOUNT_DELETED (with the username).",
  })
  @Requires({ session: true, fresh: true, aal: 2 })
  deleteAccount(
    @Arg("password") password: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.accounts.deleteAccount(session, password, clientOf(ctx), ctx.refreshCookie);
  }

  @Mutation(() => Int, {
    description:
      "End every session of a user: their refresh tokens stop working and their access tokens get HTTP 401 on every " +
      "instance. Returns how many sessions ended. NOT_FOUND for an unknown user. Audited as SESSIONS_REVOKED_BY_ADMIN.",
  })
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN })
  revokeUserSessions(
    @Arg("userId", () => ID) userId: string,
    @CurrentPrincipal() principal: Principal,
    @Ctx() ctx: Context,
  ): Promise<number> {
    return this.accounts.revokeAllOfUser(userId, principal, clientOf(ctx));
  }
}
