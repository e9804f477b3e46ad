// Access tokens of a real session at a chosen assurance, minted by the app's own TokenService, for
// the suites of the gate and step-up: the session row stays as it is, so these stand for what the
// sign-in paths hand out (a password session of an enrolled user owes its second factor; verifyMfa
// makes it AAL2) without going through them. End-to-end suites enroll through the API instead.
import type { Assurance } from "../../src/access/assurance.js";
import { claimsOf } from "./api.js";
import type { TestApp } from "./app.js";

/** A password session of a user with a second factor, before verifyMfa: it owes the factor. */
export const PENDING: Assurance = { aal: 1, amr: ["pwd"], mfaPending: true };
/** A password session of a user without a second factor. */
export const AAL1: Assurance = { aal: 1, amr: ["pwd"], mfaPending: false };
/** A session that proved its second factor (a password, then a TOTP code). */
export const AAL2: Assurance = { aal: 2, amr: ["pwd", "otp"], mfaPending: false };

/**
 * A new access token of the session `accessToken` belongs to (same user, roles and freshness unless
 * `fresh` says otherwise), carrying `assurance`.
 */
export function tokenWith(t: TestApp, accessToken: string, assurance: Assurance, fresh?: boolean): string {
  const claims = claimsOf(accessToken);
  return t.app.tokens.signAccessToken({
    userId: claims.sub,
    roles: claims.roles,
    sessionId: claims.sid,
    fresh: fresh ?? claims.fresh,
    assurance,
  }).token;
}
