// Whether a token another service holds is live, as RFC 7662 answers it, top to bottom: an API token
// through its cached lookup (api-tokens.ts), anything else as an access token (tokens.ts), then
// whether its session has ended and the roles as they are now (revocation-list.ts). The same checks
// the bearer check (bearer.ts) runs on a request, so introspection and this API agree on every token.
import { type ApiTokenVerifier, isApiTokenShape } from "./api-tokens.js";
import type { RevocationList } from "./revocation-list.js";
import { Role } from "./roles.js";
import { Scope, scopeInForce } from "./scopes.js";
import { MAX_TOKEN_LENGTH, TokenError, type TokenService } from "./tokens.js";

/** What a live token is, in RFC 7662's names (and this API's `aal`, `token_use` and `roles`). */
export interface ActiveToken {
  readonly active: true;
  /** The user the token acts for. */
  readonly sub: string;
  /** Space-separated, as RFC 6749 writes scopes: what the token may do now. */
  readonly scope: string;
  /** Epoch seconds. */
  readonly exp: number;
  /** Epoch seconds: an access token's minting, an API token's creation. */
  readonly iat: number;
  readonly iss: string;
  readonly aud: string;
  /** What ending it revokes: the session of an access token, or the API token itself. */
  readonly sid: string;
  readonly aal: "aal1" | "aal2";
  readonly token_type: "Bearer";
  readonly token_use: "access_token" | "api_token";
  /** The roles the token acts with now (a role change since minting replaces the token's). */
  readonly roles: readonly Role[];
}

/** RFC 7662's whole answer for a token that is not live: nothing more, not even why. */
export const INACTIVE = Object.freeze({ active: false as const });

export type IntrospectionAnswer = ActiveToken | typeof INACTIVE;

export interface TokenIntrospectionDeps {
  tokens: TokenService;
  apiTokens: ApiTokenVerifier;
  revocations: RevocationList;
  /** JWT_ISSUER and JWT_AUDIENCE, which API tokens, having no claims, are answered with. */
  issuer: string;
  audience: string;
}

/** What a session acts with: every session may read its profile and write posts; an ADMIN's also ADMIN. */
function sessionScope(roles: readonly Role[]): string {
  const scopes: string[] = [Scope.PROFILE_READ, Scope.POSTS_WRITE];
  if (roles.includes(Role.ADMIN)) scopes.push(Scope.ADMIN);
  return scopes.join(" ");
}

/**
 * Answers whether `token` is live, from memory except for an API token's first lookup on this
 * instance: an access token's signature and claims (its verification is cached), its session not
 * ended on any instance (the revocation list, current within a second), the roles as they are now.
 * Expired, ended, revoked, malformed, refresh tokens and anything over 4096 characters are
 * {@link INACTIVE}. So is a session that still owes its second factor: its token only reaches the
 * fields that finish the sign-in, and a service taking it as proof of its user would skip the factor.
 */
export async function introspectToken(token: string, deps: TokenIntrospectionDeps): Promise<IntrospectionAnswer> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return INACTIVE;
  if (isApiTokenShape(token)) return introspectApiToken(token, deps);
  let claims;
  try {
    claims = deps.tokens.verifyAccessToken(token);
  } catch (error) {
    if (error instanceof TokenError) return INACTIVE;
    throw error;
  }
  if (claims.mfa_pending === true || deps.revocations.isSessionEnded(claims.sid)) return INACTIVE;
  const roles = deps.revocations.currentRoles(claims.sub) ?? claims.roles;
  return {
    active: true,
    sub: claims.sub,
    scope: sessionScope(roles),
    exp: claims.exp,
    iat: claims.iat,
    iss: claims.iss,
    aud: claims.aud,
    sid: claims.sid,
    aal: claims.aal,
    token_type: "Bearer",
    token_use: "access_token",
    roles: [...roles],
  };
}

/** An API token: live while not revoked, not expired and its owner not disabled; its scopes in force now. */
async function introspectApiToken(token: string, deps: TokenIntrospectionDeps): Promise<IntrospectionAnswer> {
  const verdict = await deps.apiTokens.verify(token);
  if (!verdict.ok) return INACTIVE;
  const { principal } = verdict;
  // A scope its owner's roles no longer back (ADMIN of an owner who lost the role) grants nothing.
  const scopes = principal.scopes.filter((scope) => scopeInForce(principal.ownerRoles, principal.scopes, scope));
  return {
    active: true,
    sub: principal.userId,
    scope: scopes.join(" "),
    exp: Math.floor(verdict.expiresAt / 1000),
    iat: Math.floor(verdict.createdAt / 1000),
    iss: deps.issuer,
    aud: deps.audience,
    sid: principal.apiTokenId,
    aal: "aal1",
    token_type: "Bearer",
    token_use: "api_token",
    roles: [...principal.roles],
  };
}
