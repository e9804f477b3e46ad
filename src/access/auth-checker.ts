import type { AuthCheckerFn } from "type-graphql";

import { ErrorReason, ForbiddenError, UnauthenticatedError } from "../errors.js";
import { type Context, sessionOnlyError } from "./principal.js";
import type { Requirement } from "./requires.js";

/** Told of each field an API token was allowed on, by the scope that allowed it (api_token_uses_total). */
export type ApiTokenUseListener = (scope: Requirement["scope"] & string) => void;

/**
 * type-graphql's auth checker, for the one {@link Requirement} that `@Requires` passes. In order:
 * no principal is UNAUTHENTICATED (NOT_SIGNED_IN); an API token on a session-only field, or without
 * the field's scope, is FORBIDDEN (SCOPE); lacking the field's role is FORBIDDEN (ROLE). An API
 * token's roles are already its owner's cut down by its scopes, so the role check is the same for
 * both kinds of token. It throws our own errors instead of returning false, because type-graphql's
 * default for a refusal is the code UNAUTHORIZED, which is not in this API's contract.
 */
export function createAuthChecker(onApiTokenUse: ApiTokenUseListener = () => {}): AuthCheckerFn<Context, Requirement> {
  return ({ context }, [requirement]) => {
    const principal = context.principal;
    if (!principal) throw new UnauthenticatedError(ErrorReason.NOT_SIGNED_IN);
    if (!requirement) return true;
    if (principal.kind === "api_token") {
      if (requirement.session) throw sessionOnlyError();
      if (!principal.scopes.includes(requirement.scope)) {
        throw new ForbiddenError(ErrorReason.SCOPE, `This needs an API token with the ${requirement.scope} scope.`);
      }
    }
    if (requirement.role && !principal.roles.includes(requirement.role)) {
      throw new ForbiddenError(ErrorReason.ROLE, `This needs the ${requirement.role} role.`);
    }
    if (principal.kind === "api_token" && requirement.scope) onApiTokenUse(requirement.scope);
    return true;
  };
}
