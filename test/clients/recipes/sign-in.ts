// Signing in with fetch, the challenge step included: login; when the answer says mfaRequired, ask
// the user for a code (from the authenticator app, or a recovery code) and send verifyMfa with the
// new access token, then keep the pair it returns in place of the first. Any client library can
// call this before it sends its first operation: it needs nothing but fetch and the token store.
import type { TokenPair, TokenStore } from "./token-store.js";

interface Answer<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

async function post<T>(url: string, query: string, variables: object, accessToken?: string): Promise<Answer<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as Answer<T>;
}

type Payload = TokenPair & { mfaRequired: boolean };

const LOGIN = `mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken mfaRequired }
}`;
const VERIFY = `mutation VerifyMfa($code: String!) {
  verifyMfa(code: $code) { accessToken refreshToken mfaRequired }
}`;

/** How a sign-in ended: signed in, or the server's error (wrong password, RATE_LIMITED, …) for the form. */
export type SignInResult = { signedIn: true } | { signedIn: false; code: string; reason?: string };

/**
 * Signs in; when the account has a second factor, `askForCode` is called (with the previous code's
 * problem, if any) until a code is accepted. It returns undefined to give up; that, or any other
 * refusal of a code (RATE_LIMITED: the form says when to try again), ends the half-open session.
 */
export async function signIn(
  url: string,
  store: TokenStore,
  credentials: { username: string; password: string },
  askForCode: (problem?: string) => Promise<string | undefined>,
): Promise<SignInResult> {
  const login = await post<{ login: Payload }>(url, LOGIN, { input: credentials });
  if (!login.data?.login) return refusal(login);
  store.save(login.data.login);
  let problem: string | undefined;
  while (login.data.login.mfaRequired) {
    const code = await askForCode(problem);
    const verified =
      code === undefined ? undefined : await post<{ verifyMfa: Payload }>(url, VERIFY, { code }, store.accessToken);
    if (verified?.data?.verifyMfa) {
      store.save(verified.data.verifyMfa); // a new pair: the first refresh token is spent
      return { signedIn: true };
    }
    const error = verified?.errors?.[0];
    if (error?.extensions?.code === "BAD_USER_INPUT") {
      problem = error.message; // a wrong or used code: ask again
      continue;
    }
    await post(url, "mutation { logout }", {}, store.accessToken);
    store.signOut("SIGNED_OUT");
    return verified ? refusal(verified) : { signedIn: false, code: "CANCELLED" };
  }
  return { signedIn: true };
}

function refusal(answer: Answer<unknown>): SignInResult {
  const extensions = answer.errors?.[0]?.extensions ?? {};
  const reason = typeof extensions.reason === "string" ? extensions.reason : undefined;
  const code = typeof extensions.code === "string" ? extensions.code : "UNKNOWN";
  return { signedIn: false, code, ...(reason ? { reason } : {}) };
}
