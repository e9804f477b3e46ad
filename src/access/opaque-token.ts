import { createHash, randomBytes } from "node:crypto";

/**
 * The one way this service makes and stores an opaque secret: refresh tokens, API tokens and the
 * single-use tokens of mailed links. Each is 256 random bits in base64url (43 characters), usually
 * behind a greppable prefix, and only its SHA-256 is stored. SHA-256 without a key or a slow hash
 * is enough for such a secret: with 256 bits of entropy there is nothing to brute-force, unlike a
 * password or a six-digit code.
 */

/** Characters of a secret: 32 random bytes in base64url. */
export const OPAQUE_SECRET_LENGTH = 43;

/** The base64url shape of a secret, for a prefix's pattern to include. */
export const OPAQUE_SECRET_PATTERN = `[A-Za-z0-9_-]{${OPAQUE_SECRET_LENGTH}}`;

/** 256 fresh random bits, base64url. */
export function randomOpaqueSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** What is stored of an opaque secret or of a whole token holding one: its SHA-256, hex. */
export function hashOpaqueSecret(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

/** A new token `prefix` + secret, with the hash to store. */
export function mintOpaqueToken(prefix: string): { token: string; hash: string } {
  const token = prefix + randomOpaqueSecret();
  return { token, hash: hashOpaqueSecret(token) };
}
