// The tokens a client holds between requests, in memory only: the access token for the
// Authorization header, the refresh token for refreshToken, what to do when the session is over,
// and where to send the user when the server asks for the second factor.

/** A pair from login, register or refreshToken (whose refreshToken is null only in cookie mode, for browsers). */
export interface TokenPair {
  accessToken: string;
  refreshToken: string | null;
}

export interface TokenStore {
  readonly accessToken: string | undefined;
  readonly refreshToken: string | undefined;
  /** Keeps the pair a sign-in or a refresh returned, replacing both tokens. */
  save(tokens: TokenPair): void;
  /** Forgets both tokens and calls `onSignOut` with the server's reason, once per session. */
  signOut(reason: string): void;
  /**
   * The server answered FORBIDDEN, reason MFA_REQUIRED: keeps the tokens (the session is alive) and
   * calls `onSecondFactor` once, until a new pair is saved (after verifyMfa).
   */
  secondFactorOwed(): void;
}

/**
 * A store that starts signed out; `onSignOut` is where an app sends the user back to its sign-in
 * page, `onSecondFactor` where it asks for the code (or a passkey).
 */
export function createTokenStore(
  onSignOut: (reason: string) => void,
  onSecondFactor: () => void = () => undefined,
): TokenStore {
  let tokens: TokenPair | undefined;
  let prompted = false;
  return {
    get accessToken() {
      return tokens?.accessToken;
    },
    get refreshToken() {
      return tokens?.refreshToken ?? undefined;
    },
    save(next) {
      tokens = { ...next };
      prompted = false;
    },
    signOut(reason) {
      // Several operations may fail at once for the same reason: the user signs out once.
      if (tokens === undefined) return;
      tokens = undefined;
      onSignOut(reason);
    },
    secondFactorOwed() {
      // Never a reason to refresh, retry or sign out: the user proves the factor, then goes on.
      if (tokens === undefined || prompted) return;
      prompted = true;
      onSecondFactor();
    },
  };
}
