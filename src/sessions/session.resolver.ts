import "reflect-metadata";

import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";

import { CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { SessionsArgs } from "./session.input.js";
import type { SessionService } from "./session.service.js";
import { LogoutScope, Session } from "./session.type.js";

@Resolver(() => Session)
export class SessionResolver {
  constructor(private readonly sessionService: SessionService) {}

  @Query(() => [Session], { description: "The caller's active sessions, newest first, a page at a time." })
  @Requires({ session: true })
  sessions(@Args() page: SessionsArgs, @CurrentSession() session: SessionPrincipal): Promise<Session[]> {
    return this.sessionService.list(session, page);
  }

  @Mutation(() => Boolean, {
    description:
      "End sessions: their refresh tokens stop working at once and their access tokens get HTTP 401 on every " +
      "instance. Unless the scope is OTHERS, also clears the refresh-token cookie of cookie mode.",
  })
  @Requires({ session: true })
  async logout(
    @Arg("scope", () => LogoutScope, { nullable: true, defaultValue: LogoutScope.CURRENT }) scope: LogoutScope | null,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    const ended = await this.sessionService.logout(session, scope ?? LogoutScope.CURRENT, clientOf(ctx));
    if (scope !== LogoutScope.OTHERS) ctx.refreshCookie?.clear();
    return ended;
  }

  @Mutation(() => Boolean, {
    description: "End one of your own sessions (FORBIDDEN for someone else's). False when it had already ended.",
  })
  @Requires({ session: true })
  revokeSession(
    @Arg("id", () => ID) id: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.sessionService.revoke(session, id, clientOf(ctx));
  }
}
