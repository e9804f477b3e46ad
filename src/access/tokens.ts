import { randomUUID } from "node:crypto";

import jwt from "jsonwebtoken";

import type { Config, CrossRule } from "../config.js";
import { JSONWEBTOKEN_MESSAGES } from "../library-messages.js";
import { aalClaim, type Assurance } from "./assurance.js";
import type { KeyRing } from "./keys.js";
import type { Role } from "./roles.js";
import { type AccessTokenClaims, checkClaims, TokenError } from "./token-claims.js";

// The claims, the failures and the checks after the signature have a file of their own
// (token-claims.ts); what the app uses of them is exported from here, the tokens module.
export type { AccessTokenClaims, TokenFailure } from "./token-claims.js";
export { IAT_LEEWAY_SECONDS, TOKEN_FAILURES, TokenError } from "./token-claims.js";

/** The `typ` header of every access token (RFC 9068), so no other JWT can pass as one. */
export const ACCESS_TOKEN_TYPE = "at+jwt";

/** Tokens longer than this are refused before any parsing or signature work. */
export const MAX_TOKEN_LENGTH = 4096;

/** How many verified tokens are remembered, so a client's repeated requests skip the signature check. */
export const VERIFIED_CACHE_SIZE = 10_000;

// Header parameters that tell a verifier to fetch or trust a key chosen by the token's author
// (RFC 8725 §3.10), or demand extensions we do not implement (RFC 7515 §4.1.11).
const FORBIDDEN_HEADERS = ["jku", "x5u", "jwk", "x5c", "crit"] as const;

/** JWT_REFRESH_TOKEN_EXPIRES and JWT_ACCESS_TOKEN_EXPIRES: a session outlives its access tokens. */
export const tokenLifetimeProblem: CrossRule = (config) =>
  config && config.jwt.refreshTokenTtlSeconds < config.jwt.accessTokenTtlSeconds
    ? "JWT_REFRESH_TOKEN_EXPIRES must not be shorter than JWT_ACCESS_TOKEN_EXPIRES"
    : undefined;

export interface TokenServiceOptions {
  /** Signing and verification keys, held as KeyObjects (jsonwebtoken verifies an HMAC about 50 times faster than with a string). */
  keys: KeyRing;
  /** Called when a token names a kid the ring does not know, before refusing it: a chance to reload keys after a rotation. */
  onUnknownKid?: () => void;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  /** Milliseconds since the epoch; tests freeze it. Default `Date.now`. */
  now?: () => number;
}

/** A TokenService for a configuration's issuer, audience and lifetime, over the given keys. */
export function createTokenService(
  config: Config,
  keys: KeyRing,
  options: Pick<TokenServiceOptions, "now" | "onUnknownKid"> = {},
): TokenService {
  return new TokenService({
    keys,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    accessTokenTtlSeconds: config.jwt.accessTokenTtlSeconds,
    ...options,
  });
}

/** The one module that imports jsonwebtoken: it mints and verifies access tokens. */
export class TokenService {
  private readonly now: () => number;

  /** Tokens that verified, by their exact text; a hit skips the signature work, never the expiry. */
  private readonly verified = new Map<string, AccessTokenClaims>();

  constructor(private readonly options: TokenServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  get accessTokenTtlSeconds(): number {
    return this.options.accessTokenTtlSeconds;
  }

  /** Mints an access token for a session. */
  signAccessToken(subject: {
    userId: string;
    roles: readonly Role[];
    sessionId: string;
    fresh: boolean;
    /** The session's assurance, as its row holds it; default a password session's (aal1, pwd), for tests and tools. */
    assurance?: Assurance;
    /** Epoch seconds the token must not outlive (its session's end); default: the full lifetime. */
    notAfter?: number;
  }): {
    token: string;
    claims: AccessTokenClaims;
  } {
    const iat = Math.floor(this.now() / 1000);
    const claims: AccessTokenClaims = {
      sub: subject.userId,
      roles: [...subject.roles],
      sid: subject.sessionId,
      jti: randomUUID(),
      fresh: subject.fresh,
      aal: aalClaim(subject.assurance?.aal ?? 1),
      amr: [...(subject.assurance?.amr ?? ["pwd"])],
      ...(subject.assurance?.mfaPending ? { mfa_pending: true as const } : {}),
      iat,
      exp: Math.min(iat + this.options.accessTokenTtlSeconds, subject.notAfter ?? Number.POSITIVE_INFINITY),
      iss: this.options.issuer,
      aud: this.options.audience,
    };
    const key = this.options.keys.current;
    const token = jwt.sign(claims, key.signWith, {
      algorithm: key.alg,
      header: { alg: key.alg, typ: ACCESS_TOKEN_TYPE, kid: key.kid },
    });
    return { token, claims };
  }

  /**
   * Verifies an access token and returns its claims, or throws {@link TokenError}.
   * Only the configured algorithm and a key of the ring, found by exact `kid`, are accepted; `typ`, `exp`, `iat`, `iss`, `aud`, `sub`,
   * `sid`, `jti` and `roles` are required; an `iat` in the future or a lifetime longer than
   * configured is refused; key-fetching headers (`jku`, `x5u`, `jwk`, `x5c`) and `crit` are refused.
   */
  verifyAccessToken(token: string): AccessTokenClaims {
    const cached = this.verified.get(token);
    if (cached !== undefined) {
      // Same text, same signature: only time can have changed its verdict. A key leaving the ring
      // cannot: keys stay for longer than any token they signed can live.
      if (cached.exp > Math.floor(this.now() / 1000)) return cached;
      this.verified.delete(token);
    }
    const claims = this.verifyUncached(token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      // Evict the oldest entry (Maps keep insertion order): a bounded cache, not an unbounded leak.
      this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(token, claims);
    return claims;
  }

  private verifyUncached(token: string): AccessTokenClaims {
    if (token.length > MAX_TOKEN_LENGTH)
      throw new TokenError("TOO_LONG", `token is longer than ${MAX_TOKEN_LENGTH} characters`);
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      throw new TokenError("MALFORMED", "token is not three base64url segments");
    }
    const header = decodeSegment(token.slice(0, token.indexOf(".")));
    if (!header) throw new TokenError("MALFORMED", "token header is not a JSON object");
    // jsonwebtoken hands a non-object payload on as a string, which then fails as an audience mismatch.
    if (!decodeSegment(token.split(".")[1]!)) throw new TokenError("MALFORMED", "payload is not a JSON object");
    const algorithm = this.options.keys.algorithm;
    if (header.alg !== algorithm) throw new TokenError("ALGORITHM_NOT_ALLOWED", `"alg" must be ${algorithm}`);
    for (const name of FORBIDDEN_HEADERS) {
      if (name in header) throw new TokenError("FORBIDDEN_HEADER", `"${name}" header is not accepted`);
    }
    if (header.typ !== ACCESS_TOKEN_TYPE && header.typ !== `application/${ACCESS_TOKEN_TYPE}`) {
      throw new TokenError("WRONG_TYPE", `"typ" header must be ${ACCESS_TOKEN_TYPE}`);
    }

    if (typeof header.kid !== "string") throw new TokenError("KEY_UNKNOWN", `"kid" header is required`);
    let key = this.options.keys.find(header.kid);
    if (!key && this.options.onUnknownKid) {
      this.options.onUnknownKid();
      key = this.options.keys.find(header.kid);
    }
    if (!key || key.alg !== algorithm) throw new TokenError("KEY_UNKNOWN", `no usable key has this "kid"`);

    const nowSeconds = Math.floor(this.now() / 1000);
    let payload: unknown;
    try {
      payload = jwt.verify(token, key.verifyWith, {
        algorithms: [key.alg],
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTimestamp: nowSeconds,
      });
    } catch (error) {
      throw mapLibraryError(error);
    }
    return checkClaims(payload, nowSeconds, this.options.accessTokenTtlSeconds);
  }
}

/**
 * Decodes a token's header and payload without checking anything (for `cli token decode`).
 * Returns undefined when the token is not a JWS in compact form.
 */
export function decodeUnverified(
  token: string,
): { header: Record<string, unknown>; payload: Record<string, unknown> } | undefined {
  const [h, p] = token.split(".");
  const header = h === undefined ? undefined : decodeSegment(h);
  const payload = p === undefined ? undefined : decodeSegment(p);
  return header && payload ? { header, payload } : undefined;
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

// TokenExpiredError and NotBeforeError extend JsonWebTokenError, so they are matched first. The
// rest carry only a message; its patterns, each tested against the real library, are in
// library-messages.ts.
function mapLibraryError(error: unknown): TokenError {
  if (error instanceof jwt.TokenExpiredError) return new TokenError("EXPIRED", `"exp" claim timestamp check failed`);
  if (error instanceof jwt.NotBeforeError) return new TokenError("NOT_YET_VALID", `"nbf" claim timestamp check failed`);
  if (error instanceof jwt.JsonWebTokenError) {
    const m = error.message;
    if (JSONWEBTOKEN_MESSAGES.issuerInvalid.test(m))
      return new TokenError("ISSUER_MISMATCH", `unexpected "iss" claim value`);
    if (JSONWEBTOKEN_MESSAGES.audienceInvalid.test(m))
      return new TokenError("AUDIENCE_MISMATCH", `unexpected "aud" claim value`);
    if (JSONWEBTOKEN_MESSAGES.algorithmInvalid.test(m))
      return new TokenError("ALGORITHM_NOT_ALLOWED", `"alg" is not allowed`);
    if (JSONWEBTOKEN_MESSAGES.signatureInvalid.test(m) || JSONWEBTOKEN_MESSAGES.signatureRequired.test(m))
      return new TokenError("SIGNATURE_INVALID", "signature verification failed");
    if (JSONWEBTOKEN_MESSAGES.subjectInvalid.test(m) || JSONWEBTOKEN_MESSAGES.jwtidInvalid.test(m))
      return new TokenError("CLAIM_INVALID", "a registered claim is invalid");
    if (
      JSONWEBTOKEN_MESSAGES.optionMustBeNumber.test(m) ||
      JSONWEBTOKEN_MESSAGES.expInvalid.test(m) ||
      JSONWEBTOKEN_MESSAGES.nbfInvalid.test(m)
    )
      return new TokenError("CLAIM_INVALID", "a time claim is not a number");
  }
  return new TokenError("MALFORMED", "token could not be decoded");
}
