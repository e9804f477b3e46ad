// Apollo Client 4 against this API: an auth link adds the bearer token to every operation; an error
// link refreshes on a 401 with reason TOKEN_EXPIRED, once for all operations failing together, and
// retries; on any other UNAUTHENTICATED reason, or when the refresh is refused, it signs out. On
// FORBIDDEN with reason MFA_REQUIRED it sends the user to the code prompt: no refresh, no retry.
// Every operation goes out as its manifest hash alone (the persisted-queries link), the refresh too.
import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  type ErrorLike,
  HttpLink,
  InMemoryCache,
} from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import type { DocumentNode } from "graphql";
import { type Observable, firstValueFrom, from, switchMap, throwError } from "rxjs";

import { RefreshDocument } from "./gql/graphql.js";
import type { TokenPair, TokenStore } from "./token-store.js";

/**
 * The id codegen gave the document in the manifest (`__meta__.hash`, `sha256:<hex>`), as the hex
 * hash the link sends; Apollo Client's own transforms keep `__meta__`.
 */
function manifestHash(document: DocumentNode): string {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash) throw new Error("a document that is not in the manifest: generate it with codegen");
  return hash.replace(/^sha256:/, "");
}

/** The `extensions.reason` of the error's UNAUTHENTICATED entry, if it has one. */
function unauthenticatedReason(error: ErrorLike): string | undefined {
  if (!CombinedGraphQLErrors.is(error)) return undefined;
  const entry = error.errors.find((e) => e.extensions?.code === "UNAUTHENTICATED");
  return entry?.extensions?.reason as string | undefined;
}

/** Whether the server asks for the second factor: FORBIDDEN with reason MFA_REQUIRED. */
function secondFactorRequired(error: ErrorLike): boolean {
  return CombinedGraphQLErrors.is(error) && error.errors.some((e) => e.extensions?.reason === "MFA_REQUIRED");
}

/** An Apollo Client that keeps `store`'s tokens fresh; sign-in is the app's (it calls `store.save`). */
export function createApolloClient(url: string, store: TokenStore): ApolloClient {
  // The link's defaults: back to the text only when the server has no manifest and says
  // PERSISTED_QUERY_NOT_SUPPORTED; the gate's PERSISTED_QUERY_NOT_ALLOWED is an error like any other.
  const http = ApolloLink.from([new PersistedQueryLink({ generateHash: manifestHash }), new HttpLink({ uri: url })]);
  let refreshing: Promise<boolean> | undefined;

  // The refresh goes straight to the hashing HttpLink, past the error link (its own failure must not recurse).
  async function refresh(): Promise<boolean> {
    const variables = { refreshToken: store.refreshToken };
    const result = await firstValueFrom(ApolloLink.execute(http, { query: RefreshDocument, variables }, { client }));
    const tokens = (result.data as { refreshToken?: TokenPair } | null | undefined)?.refreshToken;
    if (tokens) store.save(tokens);
    else store.signOut((result.errors?.[0]?.extensions?.reason as string | undefined) ?? "REFRESH_FAILED");
    return tokens !== undefined;
  }

  // Single flight: operations failing while a refresh is under way wait for that one; one sent with a
  // token that has been replaced since just retries with the new one.
  function refreshOnce(sentToken: string | undefined): Promise<boolean> {
    if (sentToken !== store.accessToken) return Promise.resolve(store.accessToken !== undefined);
    refreshing ??= refresh()
      .catch(() => false)
      .finally(() => (refreshing = undefined));
    return refreshing;
  }

  const auth = new SetContextLink((prevContext) => ({
    headers: { ...prevContext.headers, ...(store.accessToken ? { authorization: `Bearer ${store.accessToken}` } : {}) },
    sentToken: store.accessToken,
  }));

  const renew = new ErrorLink(({ error, operation, forward }): Observable<ApolloLink.Result> | void => {
    if (secondFactorRequired(error)) return store.secondFactorOwed();
    const reason = unauthenticatedReason(error);
    if (reason === undefined) return;
    if (reason !== "TOKEN_EXPIRED" || operation.getContext().retried === true) {
      store.signOut(reason);
      return;
    }
    return from(refreshOnce(operation.getContext().sentToken as string | undefined)).pipe(
      switchMap((refreshed) => {
        if (!refreshed) return throwError(() => error);
        operation.setContext({ retried: true });
        return forward(operation);
      }),
    );
  });

  const client: ApolloClient = new ApolloClient({
    link: ApolloLink.from([renew, auth, http]),
    cache: new InMemoryCache(),
  });
  return client;
}
