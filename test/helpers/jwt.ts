// The one kit for forging JWTs in tests: hand-built compact JWS (so nothing is added, reordered or
// checked on the way), jsonwebtoken-signed tokens (as another honest implementation would sign),
// signers for HMAC secrets and private keys, alg none, tampered signatures and expired claims.
import { constants, createHmac, type KeyObject, sign as cryptoSign } from "node:crypto";

import jwt from "jsonwebtoken";

export type Json = Record<string, unknown>;

/** Signs a JWS signing input (`header.payload`) and returns the raw signature bytes. */
export type Signer = (signingInput: string) => Buffer;

/** The value with every `undefined` member removed: an override of `undefined` removes a field. */
export function withoutUndefined(value: Json): Json {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/** One base64url segment: a string is taken as raw text, anything else is JSON-encoded. */
export function segment(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value), "utf8").toString("base64url");
}

/** The three segments of a compact token. */
export function parts(token: string): [string, string, string] {
  return token.split(".") as [string, string, string];
}

/** One segment of a token, decoded as JSON without verification. */
export function decodeSegment(token: string, index: 0 | 1): Record<string, any> {
  return JSON.parse(Buffer.from(token.split(".")[index]!, "base64url").toString("utf8"));
}

/** The JOSE header of a token, decoded without verification. */
export function headerOf(token: string): Record<string, any> {
  return decodeSegment(token, 0);
}

/** The payload (claims) of a token, decoded without verification. */
export function payloadOf(token: string): Record<string, any> {
  return decodeSegment(token, 1);
}

/** Replaces one of the three segments of a token. */
export function replaceSegment(token: string, index: 0 | 1 | 2, value: string): string {
  const segments = token.split(".");
  segments[index] = value;
  return segments.join(".");
}

/** The token with its payload replaced by `claims` and its original signature kept (so the signature no longer matches). */
export function withClaims(token: string, claims: unknown): string {
  return replaceSegment(token, 1, segment(claims));
}

/** The token with the first character of its signature changed (so the signature bytes differ): SIGNATURE_INVALID. */
export function tamperedSignature(token: string): string {
  const [header, payload, signature] = parts(token);
  return `${header}.${payload}.${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
}

/** A compact JWS of exactly this header and payload (see {@link segment}); with no signer, the signature is empty (alg none). */
export function jws(header: unknown, payload: unknown, signer?: Signer): string {
  const input = `${segment(header)}.${segment(payload)}`;
  return `${input}.${signer ? signer(input).toString("base64url") : ""}`;
}

/** A compact JWS with an empty signature, whatever the header says. */
export function unsigned(header: unknown, payload: unknown): string {
  return jws(header, payload);
}

/** An HMAC signer (HS256 by default; `sha384` for HS384, `sha512` for HS512). */
export function hmac(secret: string | Buffer | KeyObject, hash = "sha256"): Signer {
  return (input) => createHmac(hash, secret).update(input).digest();
}

/** A private-key signer: ECDSA as JWS wants it (r || s, not DER), RSA PKCS#1 v1.5 or, with `pss`, RSA-PSS. */
export function withKey(key: KeyObject, hash: string | null = "sha256", options: { pss?: boolean } = {}): Signer {
  return (input) => {
    const data = Buffer.from(input);
    if (key.asymmetricKeyType === "ec") return cryptoSign(hash, data, { key, dsaEncoding: "ieee-p1363" });
    if (options.pss)
      return cryptoSign(hash, data, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    return cryptoSign(hash, data, key);
  };
}

/**
 * Signs with jsonwebtoken itself. The payload's own `iat` is kept; without one, none is added
 * (jsonwebtoken would otherwise stamp the real clock's time).
 */
export function sign(payload: Json, key: jwt.Secret, options: { alg?: jwt.Algorithm; header?: Json } = {}): string {
  const alg = options.alg ?? "HS256";
  return jwt.sign(payload, key, {
    algorithm: alg,
    header: withoutUndefined({ alg, ...options.header }) as unknown as jwt.JwtHeader,
    noTimestamp: !("iat" in payload),
  });
}

/** `claims` moved into the past: issued `ageSeconds` before `nowSeconds` and expired `agoSeconds` before it. */
export function expiredClaims(
  claims: Json,
  nowSeconds: number,
  options: { ageSeconds?: number; agoSeconds?: number } = {},
): Json {
  return { ...claims, iat: nowSeconds - (options.ageSeconds ?? 1000), exp: nowSeconds - (options.agoSeconds ?? 100) };
}
