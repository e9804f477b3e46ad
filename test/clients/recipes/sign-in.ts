// Signing in with fetch, the challenge step included: login; when the answer says mfaRequired, ask
// the user for a code (from the authenticator app, or a recovery code) and send verifyMfa with the
// new access token, then keep the pair it returns in place of the first. Any client library can
// call this before it sends its first operation: it needs nothing but fetch and the token store.
// Each operation goes out as its manifest id (`documentId`), never as text.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";

import { LoginDocument, LogoutDocument, VerifyMfaDocument } from "./gql/graphql.js";
import type { TokenStore } from "./token-store.js";

interface Answer<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** Sends a generated document by the id codegen gave it in the manifest (`__meta__.hash`, `sha256:<hex>`). */
async function post<T, V>(url: string, document: TypedDocumentNode<T, V>, variables: V, accessToken?: string) {
  const { hash } = (document as { __meta__?: { hash?: string } }).__meta__ ?? {};
  if (!hash) throw new Error("a document that is not in the manifest: generate it with codegen");
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
    },
    body: JSON.stringify({ documentId: hash, variables }),
  });
  return (await response.json()) as Answer<T>;
}

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
  const login = await post(url, LoginDocument, { input: credentials });
  if (!login.data?.login) return refusal(login);
  store.save(login.data.login);
  let problem: string | undefined;
  while (login.data.login.mfaRequired) {
    const code = await askForCode(problem);
    const verified = code === undefined ? undefined : await post(url, VerifyMfaDocument, { code }, store.accessToken);
    if (verified?.data?.verifyMfa) {
      store.save(verified.data.verifyMfa); // a new pair: the first refresh token is spent
      return { signedIn: true };
    }
    const error = verified?.errors?.[0];
    if (error?.extensions?.code === "BAD_USER_INPUT") {
      problem = error.message; // a wrong or used code: ask again
      continue;
    }
    await post(url, LogoutDocument, {}, store.accessToken);
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
