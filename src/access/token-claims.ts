import { AUTH_METHODS, type AuthMethod } from "./assurance.js";
import { parseRoles, type Role } from "./roles.js";

/** How far in the future an `iat` may lie before it is refused (clock skew between instances). */
export const IAT_LEEWAY_SECONDS = 5;

/** The claims of a verified access token. */
export interface AccessTokenClaims {
  /** User id. */
  sub: string;
  roles: Role[];
  /** Session id. */
  sid: string;
  /** Token id. */
  jti: string;
  /** True only for tokens of a sign-in (login, register, resetPassword, a passkey; verifyMfa keeps it), never a refresh. */
  fresh: boolean;
  /** The session's assurance when the token was minted: "aal1" or "aal2". Tokens minted before issue 26 have none: aal1. */
  aal: "aal1" | "aal2";
  /** How the session was proven (RFC 8176): pwd, otp, recovery, passkey, reset. */
  amr: AuthMethod[];
  /** Present (true) only while the session owes its user's second factor. */
  mfa_pending?: true;
  iat: number;
  exp: number;
  iss: string;
  aud: string;
}

/** Why a token was refused: a stable code for logs and the CLI. Clients only ever see one message. */
export const TOKEN_FAILURES = [
  "MALFORMED",
  "TOO_LONG",
  "ALGORITHM_NOT_ALLOWED",
  "KEY_UNKNOWN",
  "FORBIDDEN_HEADER",
  "WRONG_TYPE",
  "SIGNATURE_INVALID",
  "EXPIRED",
  "NOT_YET_VALID",
  "ISSUED_IN_FUTURE",
  "LIFETIME_TOO_LONG",
  "ISSUER_MISMATCH",
  "AUDIENCE_MISMATCH",
  "CLAIM_MISSING",
  "CLAIM_INVALID",
] as const;
export type TokenFailure = (typeof TOKEN_FAILURES)[number];

/** A refused token, with a stable {@link TokenFailure} code and an exact, library-independent message. */
export class TokenError extends Error {
  constructor(
    readonly reason: TokenFailure,
    message: string,
  ) {
    super(message);
    this.name = "TokenError";
  }
}

/**
 * The claims of a payload whose signature, issuer and audience jsonwebtoken has checked, or a
 * {@link TokenError}: `exp`, `iat`, `sub`, `sid`, `jti`, `roles`, `iss` and `aud` are required, an
 * `iat` in the future (beyond {@link IAT_LEEWAY_SECONDS}) or a lifetime longer than
 * `maxLifetimeSeconds` is refused.
 */
export function checkClaims(payload: unknown, nowSeconds: number, maxLifetimeSeconds: number): AccessTokenClaims {
  if (typeof payload !== "object" || payload === null)
    throw new TokenError("MALFORMED", "payload is not a JSON object");
  const p = payload as Record<string, unknown>;
  for (const name of ["exp", "iat", "sub", "sid", "jti", "roles", "iss", "aud"]) {
    if (p[name] === undefined) throw new TokenError("CLAIM_MISSING", `"${name}" claim is required`);
  }
  if (!isSeconds(p.exp)) throw new TokenError("CLAIM_INVALID", `"exp" claim must be a NumericDate`);
  if (!isSeconds(p.iat)) throw new TokenError("CLAIM_INVALID", `"iat" claim must be a NumericDate`);
  if (p.iat > nowSeconds + IAT_LEEWAY_SECONDS) throw new TokenError("ISSUED_IN_FUTURE", `"iat" claim is in the future`);
  if (p.exp - p.iat > maxLifetimeSeconds) {
    throw new TokenError("LIFETIME_TOO_LONG", `token lifetime exceeds ${maxLifetimeSeconds} seconds`);
  }
  for (const name of ["sub", "sid", "jti"] as const) {
    if (typeof p[name] !== "string" || p[name] === "")
      throw new TokenError("CLAIM_INVALID", `"${name}" claim must be a non-empty string`);
  }
  const roles = parseRoles(p.roles);
  if (!roles) throw new TokenError("CLAIM_INVALID", `"roles" claim must be a list of roles`);
  if (p.fresh !== undefined && typeof p.fresh !== "boolean")
    throw new TokenError("CLAIM_INVALID", `"fresh" claim must be a boolean`);
  if (p.aal !== undefined && p.aal !== "aal1" && p.aal !== "aal2")
    throw new TokenError("CLAIM_INVALID", `"aal" claim must be "aal1" or "aal2"`);
  if (
    p.amr !== undefined &&
    (!Array.isArray(p.amr) || !p.amr.every((m) => (AUTH_METHODS as readonly unknown[]).includes(m)))
  )
    throw new TokenError("CLAIM_INVALID", `"amr" claim must be a list of methods`);
  if (p.mfa_pending !== undefined && p.mfa_pending !== true)
    throw new TokenError("CLAIM_INVALID", `"mfa_pending" claim must be true when present`);
  // jsonwebtoken already matched iss and aud; aud may be an array there, but we only ever mint a string.
  if (typeof p.aud !== "string" || typeof p.iss !== "string")
    throw new TokenError("CLAIM_INVALID", `"iss" and "aud" claims must be strings`);
  return {
    sub: p.sub as string,
    roles,
    sid: p.sid as string,
    jti: p.jti as string,
    fresh: p.fresh === true,
    aal: p.aal === "aal2" ? "aal2" : "aal1",
    amr: (p.amr as AuthMethod[] | undefined) ?? ["pwd"],
    ...(p.mfa_pending === true ? { mfa_pending: true as const } : {}),
    iat: p.iat,
    exp: p.exp,
    iss: p.iss,
    aud: p.aud,
  };
}

function isSeconds(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
