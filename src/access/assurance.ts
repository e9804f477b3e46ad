/**
 * Authenticator assurance, decided where tokens are issued: the methods a session was proven with
 * (RFC 8176 names, and `recovery`/`passkey`/`reset` of our own) give its level, and a user who has a
 * second factor but proved only a password owes it (`mfaPending`): such a session may only call the
 * fields of {@link MFA_PENDING_FIELDS} until verifyMfa or verifyMfaWithPasskey raises it to AAL2.
 */

/** The ways a session can be proven, as access tokens' `amr` names them. */
export const AUTH_METHODS = ["pwd", "otp", "recovery", "passkey", "reset"] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** The methods that are a second factor (or, for a passkey with user verification, two in one). */
const STRONG_METHODS: ReadonlySet<AuthMethod> = new Set(["otp", "recovery", "passkey"]);

/** What a session's tokens say of how it was proven. */
export interface Assurance {
  /** 1: a password, a reset link, or nothing more than the user has; 2: a second factor was proven. */
  readonly aal: 1 | 2;
  /** The methods, in the order they were proven, without duplicates. */
  readonly amr: readonly AuthMethod[];
  /** The user has a second factor this session has not proven yet. */
  readonly mfaPending: boolean;
}

/**
 * The one rule: a session proven with a second factor (`otp`, `recovery`, or `passkey`, which the
 * passkey paths add only for a proof that counts: a sign-in with user verification, or a passkey
 * after a password) is AAL2; otherwise AAL1, and it owes the second factor when the user has one.
 */
export function assuranceOf(methods: readonly AuthMethod[], hasSecondFactor: boolean): Assurance {
  const amr = [...new Set(methods)];
  const strong = amr.some((m) => STRONG_METHODS.has(m));
  return { aal: strong ? 2 : 1, amr, mfaPending: !strong && hasSecondFactor };
}

/** The fields a session that owes its second factor may call (`FORBIDDEN`, reason `MFA_REQUIRED`, elsewhere). */
export const MFA_PENDING_FIELDS: ReadonlySet<string> = new Set([
  "me",
  "verifyMfa",
  "verifyMfaWithPasskey",
  "logout",
  "refreshToken",
]);

/** The `aal` claim's value for a level ("aal1", "aal2"). */
export function aalClaim(aal: 1 | 2): "aal1" | "aal2" {
  return aal === 2 ? "aal2" : "aal1";
}

/** Parses a stored `amr` (space-separated); unknown words are dropped. */
export function parseAmr(stored: string): AuthMethod[] {
  return stored.split(" ").filter((m): m is AuthMethod => (AUTH_METHODS as readonly string[]).includes(m));
}
