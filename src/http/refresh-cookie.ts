import { parse as parseCookie, serialize as serializeCookie } from "cookie";

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

/** The attributes this service sets a cookie with. */
export interface CookieOptions {
  path: string;
  httpOnly: boolean;
  sameSite: "strict";
  secure: boolean;
  maxAge?: number;
}

/** One request's view of its cookies. */
export interface CookieAccess {
  /** `http` or `https`, as TRUST_PROXY lets the request say. */
  readonly protocol: string;
  /** The Host (or a trusted proxy's X-Forwarded-Host). */
  readonly host: string;
  readonly origin: string | undefined;
  read(name: string): string | undefined;
  set(name: string, value: string, options: CookieOptions): void;
  clear(name: string, options: CookieOptions): void;
}

/**
 * The cookie as one request reads and writes it. `allowedOrigins` is CORS_ORIGINS: besides the
 * server's own origin, the only pages whose requests may use the cookie. SameSite=Strict already
 * keeps other sites' pages from sending it; the Origin check also covers same-site pages of other
 * origins (a sibling subdomain), which SameSite treats as the same site.
 */
export function refreshCookieOf(access: CookieAccess, allowedOrigins: ReadonlySet<string>): RefreshCookie {
  const secure = access.protocol === "https";
  const name = secure ? SECURE_COOKIE_NAME : PLAIN_COOKIE_NAME;
  const origin = access.origin;
  const ownOrigin = `${access.protocol}://${access.host}`;
  const options = { path: "/", httpOnly: true, sameSite: "strict", secure } as const;
  return {
    value: access.read(name),
    originAllowed: origin === undefined || origin === ownOrigin || allowedOrigins.has(origin),
    set(refreshToken, maxAgeSeconds) {
      access.set(name, refreshToken, { ...options, maxAge: maxAgeSeconds });
    },
    clear() {
      access.clear(name, options);
    },
  };
}

/**
 * The cookies of one request to the GraphQL route: the Cookie header parsed on first read, and
 * one Set-Cookie per name and path, the last write winning; clearing is an empty value that
 * expired at the epoch (as @fastify/cookie wrote it when Fastify served /graphql).
 */
export class CookieJar implements CookieAccess {
  readonly #header: string | undefined;
  #parsed: Record<string, string | undefined> | undefined;
  readonly #pending = new Map<string, string>();

  constructor(
    header: string | undefined,
    readonly protocol: string,
    readonly host: string,
    readonly origin: string | undefined,
  ) {
    this.#header = header;
  }

  read(name: string): string | undefined {
    this.#parsed ??= this.#header ? parseCookie(this.#header) : {};
    return this.#parsed[name];
  }

  set(name: string, value: string, options: CookieOptions): void {
    this.#pending.set(`${name};${options.path}`, serializeCookie(name, value, options));
  }

  clear(name: string, options: CookieOptions): void {
    this.#pending.set(
      `${name};${options.path}`,
      serializeCookie(name, "", { ...options, expires: new Date(0), maxAge: 0 }),
    );
  }

  /** The Set-Cookie values to send, if any were written. */
  headers(): string[] | undefined {
    return this.#pending.size === 0 ? undefined : [...this.#pending.values()];
  }
}
