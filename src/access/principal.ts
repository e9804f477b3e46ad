import { BadUserInputError, ErrorReason, ForbiddenError } from "../errors.js";
import type { AuthMethod } from "./assurance.js";
import type { Role } from "./roles.js";
import { effectiveRoles, type Scope } from "./scopes.js";

/** Who is calling, as proven by a verified access token of a session (login, register, refreshToken). */
export interface SessionPrincipal {
  readonly kind: "session";
  readonly userId: string;
  readonly roles: readonly Role[];
  readonly sessionId: string;
  readonly tokenId: string;
  readonly fresh: boolean;
  /** The session's assurance level when the token was minted (1 or 2). */
  readonly aal: 1 | 2;
  readonly amr: readonly AuthMethod[];
  /** The session owes its user's second factor: only `MFA_PENDING_FIELDS` may be called. */
  readonly mfaPending: boolean;
}

/**
 * Who is calling, as proven by an API token: its owner, with `roles` already cut down to what the
 * token's scopes allow ({@link effectiveRoles}). Session-only fields refuse it (FORBIDDEN, SCOPE).
 */
export interface ApiTokenPrincipal {
  readonly kind: "api_token";
  readonly userId: string;
  readonly roles: readonly Role[];
  readonly apiTokenId: string;
  readonly scopes: readonly Scope[];
  /** The owner's roles as they are now (`roles` is them cut down by the scopes): what backs a scope ({@link scopeInForce}). */
  readonly ownerRoles: readonly Role[];
}

/** Who is calling: a session's access token or an API token. */
export type Principal = SessionPrincipal | ApiTokenPrincipal;

/**
 * The id the revocation list knows this credential by: the session of an access token, or the API
 * token itself. Ending it refuses the credential on every instance.
 */
export function credentialId(principal: Principal): string {
  return principal.kind === "session" ? principal.sessionId : principal.apiTokenId;
}

/** The principal with its owner's roles as they are now (after a role change), scopes still applied. */
export function withOwnerRoles(principal: Principal, ownerRoles: readonly Role[]): Principal {
  if (principal.kind === "session") return { ...principal, roles: ownerRoles };
  return { ...principal, ownerRoles, roles: effectiveRoles(ownerRoles, principal.scopes) };
}

/** The refusal of an API token on a session-only field (`@Requires({ session: true })`): FORBIDDEN, reason SCOPE. */
export function sessionOnlyError(): ForbiddenError {
  return new ForbiddenError(ErrorReason.SCOPE, "API tokens cannot be used here: sign in for a session token.");
}

/** The session of a session principal; undefined for an API token (for audit records). */
export function sessionIdOf(principal: Principal): string | undefined {
  return principal.kind === "session" ? principal.sessionId : undefined;
}

/**
 * The refresh-token cookie of cookie mode (`useCookie`), as the HTTP layer reads and writes it for
 * one request. Only HTTP requests have one.
 */
export interface RefreshCookie {
  /** The cookie's value, when the request carried it. */
  readonly value: string | undefined;
  /** False when the request has an `Origin` that is neither the server's own nor in CORS_ORIGINS. */
  readonly originAllowed: boolean;
  /** Sets the cookie (HttpOnly, SameSite=Strict, and Secure with the `__Host-` name over HTTPS). */
  set(refreshToken: string, maxAgeSeconds: number): void;
  clear(): void;
}

/** The per-request GraphQL context. `principal` is null for anonymous requests. */
export interface Context {
  readonly principal: Principal | null;
  readonly requestId: string;
  readonly ip: string;
  readonly userAgent: string | undefined;
  readonly refreshCookie?: RefreshCookie;
}

/**
 * Where a request came from: stored with the session it starts and with audit events. The request
 * id is not stored; it goes on the audit log line, so that line matches the response's x-request-id.
 */
export interface ClientInfo {
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

/** The client details of a request, as services store and log them. */
export function clientOf(ctx: Context): ClientInfo {
  return { ip: ctx.ip, userAgent: ctx.userAgent, requestId: ctx.requestId };
}

/**
 * The request's refresh cookie when the client asked for cookie mode (`useCookie`), for the
 * mutations that start a session; BAD_USER_INPUT on `input.useCookie` outside HTTP (only requests
 * over HTTP have one).
 */
export function cookieMode(useCookie: boolean, ctx: Context): RefreshCookie | undefined {
  if (!useCookie) return undefined;
  if (!ctx.refreshCookie) {
    throw new BadUserInputError([
      { field: "input.useCookie", rule: "transport", message: "needs a request over HTTP" },
    ]);
  }
  return ctx.refreshCookie;
}

/**
 * The refresh cookie of a session in cookie mode, for the mutations that raise it (verifyMfa,
 * verifyMfaWithPasskey): the request carried the cookie from an allowed origin, so the session's new
 * refresh token goes back into it, as the old one came. Undefined in body mode.
 */
export function sessionCookie(ctx: Context): RefreshCookie | undefined {
  const cookie = ctx.refreshCookie;
  return cookie?.value !== undefined && cookie.originAllowed ? cookie : undefined;
}
