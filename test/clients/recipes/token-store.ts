// The tokens a client holds between requests, in memory only: the access token for the
// Authorization header, the refresh token for refreshToken, and what to do when the session is over.

/** A pair from login, register or refreshToken. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
}

export interface TokenStore {
  readonly accessToken: string | undefined;
  readonly refreshToken: string | undefined;
  /** Keeps the pair a sign-in or a refresh returned, replacing both tokens. */
  save(tokens: TokenPair): void;
  /** Forgets both tokens and calls `onSignOut` with the server's reason, once per session. */
  signOut(reason: string): void;
}

/** A store that starts signed out; `onSignOut` is where an app sends the user back to its sign-in page. */
export function createTokenStore(onSignOut: (reason: string) => void): TokenStore {
  let tokens: TokenPair | undefined;
  return {
    get accessToken() {
      return tokens?.accessToken;
    },
    get refreshToken() {
      return tokens?.refreshToken;
    },
    save(next) {
      tokens = { ...next };
    },
    signOut(reason) {
      // Several operations may fail at once for the same reason: the user signs out once.
      if (tokens === undefined) return;
      tokens = undefined;
      onSignOut(reason);
    },
  };
}
