import type { GraphQLResolveInfo } from "graphql";
import type { AuthCheckerFn } from "type-graphql";

import { ErrorReason, ForbiddenError, UnauthenticatedError } from "../errors.js";
import { MFA_PENDING_FIELDS } from "./assurance.js";
import { type Context, type Principal, sessionOnlyError } from "./principal.js";
import type { Requirement } from "./requires.js";
import { Role } from "./roles.js";

/** Told of each field an API token was allowed on, by the scope that allowed it (api_token_uses_total). */
export type ApiTokenUseListener = (scope: Requirement["scope"] & string) => void;

/** What the auth checker is built with; every option has a default. */
export interface AuthCheckerOptions {
  /** Told of each field an API token was allowed on. Default: nobody. */
  readonly onApiTokenUse?: ApiTokenUseListener;
  /** MFA_REQUIRED_ROLES (`config.mfa.requiredRoles`): the roles whose fields need assurance AAL2. Default: none. */
  readonly mfaRequiredRoles?: readonly string[];
}

/**
 * The root fields a session of a user without a second factor may still call when
 * MFA_REQUIRED_ROLES names USER (every signed-in field): those that add the first factor, besides
 * {@link MFA_PENDING_FIELDS}. Without them nobody could ever comply.
 */
export const MFA_ENROLLMENT_FIELDS: ReadonlySet<string> = new Set([
  "enrollTotp",
  "confirmTotp",
  "startPasskeyRegistration",
  "finishPasskeyRegistration",
]);

/** The message of FORBIDDEN, reason MFA_REQUIRED: what the client does next. */
export const MFA_REQUIRED_MESSAGE =
  "This needs the second factor of this account: prove it with verifyMfa (a code from the authenticator app or a " +
  "recovery code) or verifyMfaWithPasskey, then retry with the access token it returns.";

/** FORBIDDEN, reason MFA_REQUIRED: the session owes its user's second factor. */
export function mfaRequiredError(): ForbiddenError {
  return new ForbiddenError(ErrorReason.MFA_REQUIRED, MFA_REQUIRED_MESSAGE);
}

/** FORBIDDEN, reason MFA_ENROLLMENT_REQUIRED: a field of `role`, which MFA_REQUIRED_ROLES names, for a user with no second factor. */
export function mfaEnrollmentRequiredError(role: Role): ForbiddenError {
  return new ForbiddenError(
    ErrorReason.MFA_ENROLLMENT_REQUIRED,
    `This needs a second factor, which the ${role} role must use here: add one (enrollTotp then confirmTotp, or ` +
      "startPasskeyRegistration then finishPasskeyRegistration), then retry with an access token issued after that.",
  );
}

/** Whether the caller is a session that still owes its user's second factor (only MFA_PENDING_FIELDS are open to it). */
export function owesSecondFactor(principal: Principal | null | undefined): boolean {
  return principal?.kind === "session" && principal.mfaPending;
}

/**
 * Why `principal` may not do what needs assurance AAL2, or undefined when it may. An API token
 * passes (it cannot hold a second factor; minting one for a role of MFA_REQUIRED_ROLES needs AAL2),
 * and so does a session at AAL2. A session that owes its second factor: MFA_REQUIRED. A session
 * at AAL1 that owes nothing belongs to a user without a second factor (a user with one has only
 * AAL2 sessions and sessions that owe it: adding the first factor raises the session that adds it
 * and ends the others), which passes step-up, and gets MFA_ENROLLMENT_REQUIRED when `strictFor`
 * names the role of MFA_REQUIRED_ROLES that asked.
 */
export function assuranceRefusal(principal: Principal, strictFor?: Role): ForbiddenError | undefined {
  if (principal.kind !== "session" || principal.aal === 2) return undefined;
  if (principal.mfaPending) return mfaRequiredError();
  return strictFor === undefined ? undefined : mfaEnrollmentRequiredError(strictFor);
}

/**
 * The role of MFA_REQUIRED_ROLES (`required`) that makes a guarded field need AAL2, if any: the
 * field's own role; or USER, which every user has, for every guarded root field, except the fields
 * a user needs to get to AAL2 (MFA_PENDING_FIELDS and MFA_ENROLLMENT_FIELDS). A nested field
 * without a role of the list was reached through a root field that was checked already.
 */
function strictRoleOf(
  requirement: Requirement,
  info: GraphQLResolveInfo,
  required: ReadonlySet<Role>,
): Role | undefined {
  if (required.size === 0) return undefined;
  if (requirement.role && required.has(requirement.role)) return requirement.role;
  if (!required.has(Role.USER) || info.path.prev !== undefined) return undefined;
  const exempt = MFA_PENDING_FIELDS.has(info.fieldName) || MFA_ENROLLMENT_FIELDS.has(info.fieldName);
  return exempt ? undefined : Role.USER;
}

/**
 * type-graphql's auth checker, for the one {@link Requirement} that `@Requires` passes. In order:
 * no principal is UNAUTHENTICATED (NOT_SIGNED_IN); a session that owes its second factor on a root
 * field outside MFA_PENDING_FIELDS is FORBIDDEN (MFA_REQUIRED: graphql/mfa-gate.ts refuses the whole
 * operation before it runs, this is the same rule again where a guarded field runs); an API token on
 * a session-only field, or without the field's scope, is FORBIDDEN (SCOPE); lacking the field's role
 * is FORBIDDEN (ROLE); then assurance, for `aal: 2` (step-up) and for a field of a role in
 * MFA_REQUIRED_ROLES ({@link assuranceRefusal}). An API token's roles are already its owner's cut
 * down by its scopes, so the role check is the same for both kinds of token. It throws our own
 * errors instead of returning false, because type-graphql's default for a refusal is the code
 * UNAUTHORIZED, which is not in this API's contract. The common path is a few property reads.
 */
export function createAuthChecker(options: AuthCheckerOptions = {}): AuthCheckerFn<Context, Requirement> {
  const onApiTokenUse = options.onApiTokenUse ?? (() => {});
  const strictRoles = new Set(options.mfaRequiredRoles as readonly Role[] | undefined);
  return ({ context, info }, [requirement]) => {
    const principal = context.principal;
    if (!principal) throw new UnauthenticatedError(ErrorReason.NOT_SIGNED_IN);
    if (owesSecondFactor(principal) && info.path.prev === undefined && !MFA_PENDING_FIELDS.has(info.fieldName)) {
      throw mfaRequiredError();
    }
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
    const strictFor = strictRoleOf(requirement, info, strictRoles);
    if (requirement.aal === 2 || strictFor !== undefined) {
      const refusal = assuranceRefusal(principal, strictFor);
      if (refusal) throw refusal;
    }
    if (principal.kind === "api_token" && requirement.scope) onApiTokenUse(requirement.scope);
    return true;
  };
}
