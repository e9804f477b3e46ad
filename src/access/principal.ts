import type { Role } from "./roles.js";

/** Who is calling, as proven by a verified access token. */
export interface Principal {
  readonly userId: string;
  readonly roles: readonly Role[];
  readonly sessionId: string;
  readonly tokenId: string;
  readonly fresh: boolean;
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
