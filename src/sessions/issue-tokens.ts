import type { RefreshCookie } from "../access/principal.js";
import type { TokenService } from "../access/tokens.js";
import type { User } from "../users/index.js";
import { AuthenticatorAssurance, type AuthPayload } from "./auth-payload.type.js";
import type { SessionRecord } from "./session.store.js";

/** What {@link issueTokens} reads of a session: its id, its end and its assurance, as its row holds them. */
export type IssuedSession = Pick<SessionRecord, "id" | "expiresAt" | "assurance">;

/**
 * The one function every path that hands out tokens goes through (login, register, refreshToken,
 * resetPassword, verifyMfa, passkey sign-in, cookie mode, and any later one, all by way of
 * SessionService): the access token carries the session row's assurance (`aal`, `amr`, and
 * `mfa_pending` while the second factor is owed), never anything a caller passes beside it, and
 * never outlives the session; `refreshToken` goes in the payload or, with `cookie`, into it. The
 * rule that decides a session's assurance runs where the row is written (access/assurance.ts's
 * assuranceOf at start, SessionStore.raise after a second factor); a refresh copies it.
 */
export function issueTokens(
  tokens: TokenService,
  user: User,
  session: IssuedSession,
  refreshToken: string,
  fresh: boolean,
  nowMs: number,
  cookie?: RefreshCookie,
): AuthPayload {
  const { token, claims } = tokens.signAccessToken({
    userId: user.id,
    roles: user.roles,
    sessionId: session.id,
    fresh,
    assurance: session.assurance,
    notAfter: Math.floor(session.expiresAt.getTime() / 1000),
  });
  // The cookie lives exactly as long as the session can be refreshed.
  cookie?.set(refreshToken, Math.max(0, Math.floor((session.expiresAt.getTime() - nowMs) / 1000)));
  return {
    accessToken: token,
    refreshToken: cookie ? null : refreshToken,
    tokenType: "Bearer",
    expiresIn: claims.exp - claims.iat,
    assurance: session.assurance.aal === 2 ? AuthenticatorAssurance.AAL2 : AuthenticatorAssurance.AAL1,
    mfaRequired: session.assurance.mfaPending,
    user: {
      id: user.id,
      username: user.username,
      roles: user.roles,
      disabled: user.disabled,
      email: user.email,
      emailVerified: user.emailVerified,
      createdAt: user.createdAt,
      updatedAt: user.updatedAt,
      signedInByThisResponse: true,
    },
  };
}
