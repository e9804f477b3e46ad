import type { FastifyReply, FastifyRequest } from "fastify";

import type { RefreshCookie } from "../access/principal.js";

/**
 * The refresh-token cookie of cookie mode. Over HTTPS (directly, or as reported by a proxy that
 * TRUST_PROXY trusts) it is `__Host-refresh-token`: the prefix makes browsers insist on Secure,
 * Path=/ and no Domain, so no sibling subdomain can plant or overwrite it. Over plain HTTP (local
 * development) browsers refuse that prefix without Secure, so the name is `refresh-token`. Always
 * HttpOnly (page scripts never see it) and SameSite=Strict (other sites' pages never send it).
 */
export const SECURE_COOKIE_NAME = "__Host-refresh-token";
export const PLAIN_COOKIE_NAME = "refresh-token";

/**
 * The cookie as one request reads and writes it. `allowedOrigins` is CORS_ORIGINS: besides the
 * server's own origin, the only pages whose requests may use the cookie. SameSite=Strict already
 * keeps other sites' pages from sending it; the Origin check also covers same-site pages of other
 * origins (a sibling subdomain), which SameSite treats as the same site.
 */
export function refreshCookieOf(
  request: FastifyRequest,
  reply: FastifyReply,
  allowedOrigins: ReadonlySet<string>,
): RefreshCookie {
  const secure = request.protocol === "https";
  const name = secure ? SECURE_COOKIE_NAME : PLAIN_COOKIE_NAME;
  const origin = request.headers.origin;
  const ownOrigin = `${request.protocol}://${request.host}`;
  const options = { path: "/", httpOnly: true, sameSite: "strict", secure } as const;
  return {
    value: request.cookies[name],
    originAllowed: origin === undefined || origin === ownOrigin || allowedOrigins.has(origin),
    set(refreshToken, maxAgeSeconds) {
      void reply.setCookie(name, refreshToken, { ...options, maxAge: maxAgeSeconds });
    },
    clear() {
      void reply.clearCookie(name, options);
    },
  };
}
