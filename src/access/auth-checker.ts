import type { AuthCheckerFn } from "type-graphql";

import type { Context } from "./principal.js";
import { ErrorReason, ForbiddenError, UnauthenticatedError } from "../errors.js";
import type { Role } from "./roles.js";

/**
 * type-graphql's auth checker. No principal: UNAUTHENTICATED. An empty role list means signed in
 * is enough; otherwise any one of the roles will do, and lacking all of them is FORBIDDEN.
 * It throws our own errors instead of returning false, because type-graphql's default for a
 * missing role is the code UNAUTHORIZED, which is not in this API's contract.
 */
export const authChecker: AuthCheckerFn<Context, Role> = ({ context }, roles) => {
  const principal = context.principal;
  if (!principal) throw new UnauthenticatedError(ErrorReason.NOT_SIGNED_IN);
  if (roles.length === 0 || roles.some((role) => principal.roles.includes(role))) return true;
  throw new ForbiddenError(ErrorReason.ROLE, `This needs the ${roles.join(" or ")} role.`);
};
