import { createParameterDecorator } from "type-graphql";

import { ErrorReason, UnauthenticatedError } from "../errors.js";
import { type Context, type Principal, sessionOnlyError, type SessionPrincipal } from "./principal.js";

// Why these may assume what the guard checked: type-graphql resolves a resolver's parameters only
// after the field's middlewares have passed, and the first of them is the auth checker that
// `@Requires` installs (access/auth-checker.ts). It refuses a request without a principal
// (UNAUTHENTICATED, NOT_SIGNED_IN) and an API token on a session-only field (FORBIDDEN, SCOPE), so
// on a guarded field neither refusal below is ever reached. They refuse the same way, with the same
// code, reason and message, should a decorator ever sit on a field without the matching guard.

function principalOf(context: Context): Principal {
  if (!context.principal) throw new UnauthenticatedError(ErrorReason.NOT_SIGNED_IN);
  return context.principal;
}

/**
 * The caller of a field guarded by `@Requires({ scope })`: the principal the bearer check proved, a
 * session's or an API token's. Use it instead of reading `ctx.principal`.
 */
export function CurrentPrincipal() {
  return createParameterDecorator<Context>(({ context }) => principalOf(context));
}

/**
 * The caller of a session-only field (`@Requires({ session: true })`) as the session principal it
 * must be: an API token never reaches such a field.
 */
export function CurrentSession() {
  return createParameterDecorator<Context>(({ context }): SessionPrincipal => {
    const principal = principalOf(context);
    if (principal.kind !== "session") throw sessionOnlyError();
    return principal;
  });
}
