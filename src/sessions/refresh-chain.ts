import { createHmac } from "node:crypto";

import { hashOpaqueSecret, randomOpaqueSecret } from "../access/opaque-token.js";

/**
 * The shape and derivation of a session's refresh tokens.
 *
 * A refresh token looks like `rt_<43 base64url characters>`: 256 bits behind a greppable prefix.
 * The first token of a session is random; each successor is the HMAC-SHA256 of its parent under
 * the session's own random chain key. That is what lets the reuse interval hand out the same
 * successor again without storing it: the server recomputes it from the parent the client
 * presents. Someone holding only a token cannot compute its successor (they lack the key), and
 * the database holds the key and the tokens' SHA-256 hashes but no token, so a copy of the
 * database cannot compute one either.
 */

const PREFIX = "rt_";
const SHAPE = /^rt_[A-Za-z0-9_-]{43}$/;
/** Every refresh token is this long: the prefix and 256 bits in base64url. */
export const REFRESH_TOKEN_LENGTH = PREFIX.length + 43;

/** Whether `token` has the shape of a refresh token (checked before any lookup). */
export function isRefreshTokenShape(token: string): boolean {
  return SHAPE.test(token);
}

/** A new session's chain key: 32 random bytes, base64url. */
export function newChainKey(): string {
  return randomOpaqueSecret();
}

/** The first refresh token of a session, or every token of a session that has no chain key. */
export function randomRefreshToken(): string {
  return PREFIX + randomOpaqueSecret();
}

/** The token that follows `parent` in the chain keyed by `chainKey`; the same inputs give the same token. */
export function successorOf(chainKey: string, parent: string): string {
  return PREFIX + createHmac("sha256", Buffer.from(chainKey, "base64url")).update(parent).digest("base64url");
}

/** What is stored of a refresh token (access/opaque-token.ts): its SHA-256. */
export function hashRefreshToken(token: string): string {
  return hashOpaqueSecret(token);
}
