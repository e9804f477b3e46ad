import { randomBytes, timingSafeEqual } from "node:crypto";

import { createTOTPKeyURI, generateHOTP } from "@oslojs/otp";

/** RFC 6238's defaults, which every authenticator app supports: 30-second steps, 6 digits, HMAC-SHA-1. */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** 160 bits, the HMAC-SHA-1 key length RFC 4226 recommends. */
const SECRET_BYTES = 20;
/** Steps accepted either side of the current one (clock skew, a code typed as it changed). */
const SKEW_STEPS = 1;

/** A new random TOTP secret. */
export function newTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

/** The most code points of the issuer an otpauth URI carries (JWT_ISSUER may be longer; apps show a short label). */
export const OTPAUTH_ISSUER_MAX = 64;

/**
 * The longest otpauth URI {@link otpauthUri} makes: the issuer twice and the username once, each
 * percent-encoded (at most 12 characters a code point), the 32-character secret and the fixed parts.
 */
export const OTPAUTH_URI_MAX_LENGTH = 2048;

/** The secret as enrollTotp shows it: 160 bits in base32, without padding. */
export const TOTP_SECRET_TEXT_LENGTH = 32;

/** The `otpauth://totp/...` URI authenticator apps read (as a QR code) for `secret`. */
export function otpauthUri(issuer: string, account: string, secret: Uint8Array): string {
  const label = Array.from(issuer).slice(0, OTPAUTH_ISSUER_MAX).join("");
  return createTOTPKeyURI(label, account, secret, TOTP_PERIOD_SECONDS, TOTP_DIGITS);
}

/** The 30-second step the moment `nowMs` falls in. */
export function stepAt(nowMs: number): number {
  return Math.floor(nowMs / (TOTP_PERIOD_SECONDS * 1000));
}

/** `input` as a TOTP code (spaces dropped: apps show `123 456`), or undefined when it cannot be one. */
export function asTotpCode(input: string): string | undefined {
  const code = input.replace(/\s/g, "");
  return /^\d{6}$/.test(code) ? code : undefined;
}

/**
 * The step within one step of `nowMs` whose code `code` (6 digits, see {@link asTotpCode}) is, or undefined. Every step in the window is
 * computed and compared in constant time; should two match, the later one is taken (a code is
 * accepted only for a step later than the last one accepted).
 */
export function matchingStep(secret: Uint8Array, code: string, nowMs: number): number | undefined {
  const current = stepAt(nowMs);
  let found: number | undefined;
  for (let step = current - SKEW_STEPS; step <= current + SKEW_STEPS; step++) {
    const expected = Buffer.from(generateHOTP(secret, BigInt(step), TOTP_DIGITS));
    if (timingSafeEqual(expected, Buffer.from(code))) found = step;
  }
  return found;
}
