// #region state
// Signing in from a browser in cookie mode, all of it in this module:
// - the refresh token is an HttpOnly cookie the page never sees; the access token lives in this
//   module's memory only (never localStorage), so a reload starts with a refresh;
// - a refresh at half the token's lifetime (its `exp` is in whole seconds, and a lock or a slow
//   network may hold the refresh up), and another when a request meets TOKEN_EXPIRED anyway (a timer
//   that ran late in a background tab or a sleeping laptop); then the request is retried;
// - one refresh at a time per tab (a shared promise) and across tabs (a Web Lock): a tab that waited
//   sends the cookie the other tab's refresh just rotated. Without Web Locks the server's refresh
//   reuse interval still keeps two tabs refreshing together signed in;
// - every tab hears of a sign-in or sign-out (a BroadcastChannel), and of a session ended elsewhere
//   (the socket's 4403 SESSION_ENDED); the socket gets each new token in-band (a graphql-ws ping),
//   so the server never closes it for expiry;
// - a sign-in whose answer says mfaRequired (a password, for an account with a second factor)
//   leaves the tab in "second-factor" until verifyMfa or verifyMfaWithPasskey; so does a refusal
//   with reason MFA_REQUIRED. Passkeys sign in with @simplewebauthn/browser.
// docs/clients.md quotes this module whole, one #region at a time; test/clients/recipes.test.ts keeps
// each quote equal to its region.
import { ApolloLink, CombinedGraphQLErrors, HttpLink, type TypedDocumentNode } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { type PublicKeyCredentialRequestOptionsJSON, startAuthentication } from "@simplewebauthn/browser";
import { type DocumentNode, type GraphQLFormattedError, print } from "graphql";
import { createClient } from "graphql-ws";
import { from, switchMap } from "rxjs";

import * as ops from "./gql/graphql";

export const API_URL = (import.meta.env.VITE_API_URL as string | undefined) ?? "http://localhost:4000/graphql";

/**
 * Where this tab stands; `reason` (an `extensions.reason`, or SIGNED_OUT) says why it is signed out.
 * "second-factor": signed in with a password, the account's second factor still owed.
 */
let session: {
  status: "starting" | "signed-in" | "second-factor" | "signed-out";
  reason?: string;
  assurance?: ops.AuthenticatorAssurance;
} = { status: "starting" };
let token: string | undefined;
let refreshDue = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<void> | undefined;
let socket: WebSocket | undefined;
let signOuts = 0; // a refresh that a sign-out overtook must not sign the tab in again
const tabs = new BroadcastChannel("auth");

/** Fires "change" when the session does (the app reads it with useSyncExternalStore). */
export const sessionEvents = new EventTarget();
export const currentSession = () => session;
function setSession(next: typeof session) {
  session = next;
  sessionEvents.dispatchEvent(new Event("change"));
}

const bearer = (accessToken?: string): Record<string, string> =>
  accessToken ? { authorization: `Bearer ${accessToken}` } : {};

/** Why the server refused: the `extensions.reason` of an UNAUTHENTICATED or FORBIDDEN error among `errors`. */
function reasonOf(errors: readonly GraphQLFormattedError[] = []): string | undefined {
  const refusal = errors.find((e) => e.extensions?.code === "UNAUTHENTICATED" || e.extensions?.code === "FORBIDDEN");
  return refusal && String(refusal.extensions?.reason);
}
// #endregion

// #region send
/** The id codegen gave a document in the manifest (`__meta__.hash`, `sha256:<hex>`), as a hex SHA-256. */
export function manifestHash(document: DocumentNode): string {
  return (document as { __meta__?: { hash?: string } }).__meta__?.hash?.replace(/^sha256:/, "") ?? "";
}

// Until a server without a manifest answers PERSISTED_QUERY_NOT_SUPPORTED: then the text, as
// Apollo Client's persisted-queries link does.
let hashesOnly = true;

/**
 * A credential mutation, with `credentials: "include"` so that the cookie goes both ways, sent as
 * its hash (the server's TRUSTED_DOCUMENTS lists src/gql/persisted-documents.json).
 */
export async function send<T, V>(document: TypedDocumentNode<T, V>, variables?: V, accessToken?: string) {
  const hashed = hashesOnly;
  const persistedQuery = { version: 1, sha256Hash: manifestHash(document) };
  const response = await fetch(API_URL, {
    method: "POST",
    credentials: "include",
    headers: { "content-type": "application/json", ...bearer(accessToken) },
    body: JSON.stringify(
      hashed ? { extensions: { persistedQuery }, variables } : { query: print(document), variables },
    ),
  });
  const answer = (await response.json()) as { data?: T | null; errors?: GraphQLFormattedError[] };
  if (!hashed || !answer.errors?.some((e) => e.extensions?.code === "PERSISTED_QUERY_NOT_SUPPORTED")) return answer;
  hashesOnly = false;
  return send(document, variables, accessToken);
}
// #endregion

// #region tokens
/** Keeps a new access token, schedules its refresh and hands it to the open socket. */
function keep(payload: ops.AuthFieldsFragment) {
  token = payload.accessToken;
  refreshDue = Date.now() + payload.expiresIn * 500;
  clearTimeout(timer);
  timer = setTimeout(() => void refresh().catch(() => undefined), refreshDue - Date.now());
  renewSocket();
  const status = payload.mfaRequired ? "second-factor" : "signed-in";
  if (session.status !== status || session.assurance !== payload.assurance)
    setSession({ status, assurance: payload.assurance });
}

// In-band renewal: the server moves the open socket's expiry to the new token's.
function renewSocket() {
  if (token && socket?.readyState === WebSocket.OPEN)
    socket.send(JSON.stringify({ type: "ping", payload: bearer(token) }));
}

/** Signs this tab out, and the others unless `tell` is false. A failed refresh at start-up shows no reason. */
function end(reason: string, tell = true) {
  if (session.status === "signed-out") return;
  const wasSignedIn = session.status === "signed-in" || session.status === "second-factor";
  signOuts++;
  token = undefined;
  clearTimeout(timer);
  setSession({ status: "signed-out", reason: wasSignedIn ? reason : undefined });
  if (tell && wasSignedIn) tabs.postMessage({ signedOut: reason });
}
// #endregion

// #region refresh
/** Exchanges the cookie for a new access token, one exchange at a time in this tab and across tabs. */
export function refresh(): Promise<void> {
  const exchange = async () => {
    const before = signOuts;
    const { data, errors } = await send(ops.RefreshDocument);
    const reason = reasonOf(errors);
    if (signOuts !== before) return;
    if (data?.refreshToken) keep(data.refreshToken);
    else if (reason) end(reason);
    else throw new Error(errors?.[0]?.message ?? "refresh failed"); // RATE_LIMITED, …: still signed in
  };
  const locked = () => (navigator.locks ? navigator.locks.request("refresh", exchange) : exchange());
  refreshing ??= locked().finally(() => (refreshing = undefined));
  return refreshing;
}

/** The access token to send now, refreshed first when due. */
export async function accessToken(): Promise<string | undefined> {
  if (token && Date.now() >= refreshDue) await refresh();
  return token;
}
// #endregion

// #region sign-in
/**
 * Signs in (or up, with `newAccount`, and an optional e-mail address to verify) in cookie mode;
 * resolves to the refusal, if any, for the form to show.
 */
export async function signIn(input: { username: string; password: string; email?: string }, newAccount = false) {
  const { email, ...credentials } = input;
  const { data, errors } = newAccount
    ? await send(ops.RegisterDocument, { input: { ...credentials, email, useCookie: true } })
    : await send(ops.LoginDocument, { input: { ...credentials, useCookie: true } });
  const payload = data && ("register" in data ? data.register : data.login);
  if (!payload) return errors?.[0];
  keep(payload);
  tabs.postMessage({ signedIn: true });
}

/** Signs every tab out, then ends the session on the server (which clears the cookie and closes its sockets). */
export async function signOut() {
  const current = await accessToken().catch(() => token);
  end("SIGNED_OUT"); // first: the server's SESSION_ENDED close must not tell this tab's story
  await send(ops.LogoutDocument, {}, current).catch(() => undefined);
}

tabs.onmessage = ({ data }: MessageEvent<{ signedIn?: true; signedOut?: string }>) => {
  if (data.signedOut) end(data.signedOut, false);
  else if (data.signedIn && session.status !== "signed-in") refresh().catch(() => undefined);
};
// #endregion

// #region second-factor
/**
 * The challenge step: a TOTP or recovery code proves the second factor of this tab's session, which
 * becomes AAL2 with new tokens (the refresh cookie replaced); resolves to the refusal, if any
 * (BAD_USER_INPUT on `code` for a wrong or used code, RATE_LIMITED).
 */
export async function verifyCode(code: string) {
  const { data, errors } = await send(ops.VerifyMfaDocument, { code }, await accessToken());
  if (!data?.verifyMfa) return errors?.[0];
  keep(data.verifyMfa);
  tabs.postMessage({ signedIn: true });
}

/**
 * A passkey: as the second factor of this tab's session (`secondFactor`), or to sign in without a
 * password (discoverable without `username`). The challenge is asked for without a token (a session
 * that owes its factor may call only the fields that prove it). Throws when the browser made no
 * assertion (cancelled).
 */
export async function passkeySignIn(options: { secondFactor: boolean; username?: string }) {
  const bearerToken = options.secondFactor ? await accessToken() : undefined;
  const start = await send(ops.StartPasskeySignInDocument, { username: options.username || null });
  if (!start.data) return start.errors?.[0];
  const optionsJSON = start.data.startPasskeySignIn as PublicKeyCredentialRequestOptionsJSON;
  const response = await startAuthentication({ optionsJSON });
  const { data, errors } = options.secondFactor
    ? await send(ops.VerifyMfaWithPasskeyDocument, { response }, bearerToken)
    : await send(ops.FinishPasskeySignInDocument, { response });
  const payload = data && ("verifyMfaWithPasskey" in data ? data.verifyMfaWithPasskey : data.finishPasskeySignIn);
  if (!payload) return errors?.[0];
  keep(payload);
  tabs.postMessage({ signedIn: true });
}
// #endregion

// #region apollo-link
/** Apollo Client's link to the API: the token on every operation; on TOKEN_EXPIRED a refresh and one retry. */
export const apiLink = ApolloLink.from([
  new ErrorLink(({ error, operation, forward }) => {
    const reason = CombinedGraphQLErrors.is(error) ? reasonOf(error.errors) : undefined;
    if (reason === "TOKEN_EXPIRED" && operation.getContext().retried !== true) {
      operation.setContext({ retried: true });
      return from(refresh()).pipe(switchMap(() => forward(operation)));
    }
    if (reason === "SESSION_ENDED" || reason === "TOKEN_INVALID") end(reason);
    // The session owes its second factor (or the field needs it again): the prompt, not a retry.
    if (reason === "MFA_REQUIRED") setSession({ ...session, status: "second-factor" });
  }),
  new SetContextLink(async () => ({ headers: bearer(await accessToken()) })),
  new HttpLink({ uri: API_URL }),
]);
// #endregion

// #region socket
/**
 * The socket for subscriptions, signed in with the current token at each connection. It does not
 * retry: graphql-ws would re-send the first subscribe message, whose `after` is stale by then; the
 * feed subscribes again itself, after the last post it showed (feed.ts).
 */
export const wsClient = createClient({
  url: API_URL.replace(/^http/, "ws"),
  retryAttempts: 0,
  connectionParams: async () => bearer(await accessToken()),
  on: {
    connected: (opened) => {
      socket = opened as WebSocket;
      renewSocket(); // a refresh may have landed while the connection was being made
    },
    closed: (event) => {
      socket = undefined;
      const { code, reason } = event as CloseEvent;
      if (code === 4403 && ["SESSION_ENDED", "TOKEN_INVALID", "ACCOUNT_DISABLED"].includes(reason)) end(reason);
    },
  },
});
// #endregion

// #region start
// A reload starts signed out in memory: the cookie, if any, signs this tab in again.
refresh().catch(() => setSession({ status: "signed-out", reason: "NETWORK" }));
// #endregion
