import "reflect-metadata";

import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";

import { CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import type { ApiTokenService } from "./api-token.service.js";
import { ApiToken, ApiTokensArgs, CreateApiTokenInput, CreatedApiToken } from "./api-token.type.js";

@Resolver(() => ApiToken)
export class ApiTokenResolver {
  constructor(private readonly service: ApiTokenService) {}

  @Query(() => [ApiToken], {
    description: "The caller's live API tokens (neither revoked nor expired), newest first, a page at a time.",
  })
  @Requires({ session: true })
  apiTokens(@Args() page: ApiTokensArgs, @CurrentSession() session: SessionPrincipal): Promise<ApiToken[]> {
    return this.service.list(session, page);
  }

  @Mutation(() => CreatedApiToken, {
    description:
      "Create a scoped API token for a script or service. The token is in the answer and nowhere else; it acts for you " +
      "with at most its scopes (your roles intersected with them). BAD_USER_INPUT for a lifetime over 365 days; " +
      "FORBIDDEN, reason SCOPE, for a scope your roles can never use (ADMIN without the ADMIN role). " +
      "Audited as API_TOKEN_CREATED.",
  })
  @Requires({ session: true, fresh: true, aal: 2 })
  createApiToken(
    @Arg("input") input: CreateApiTokenInput,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<CreatedApiToken> {
    return this.service.create(session, input, clientOf(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Revoke one of your API tokens: it is refused on every instance within a second. False when it was already " +
      "revoked; FORBIDDEN for someone else's. Audited as API_TOKEN_REVOKED.",
  })
  @Requires({ session: true })
  revokeApiToken(
    @Arg("id", () => ID) id: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.service.revoke(session, id, clientOf(ctx));
  }
}
