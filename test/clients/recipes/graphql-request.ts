// graphql-request 7 against this API: a requestMiddleware adds the bearer token; `request` wraps the
// client's own and, on a 401 with reason TOKEN_EXPIRED, refreshes once for all the operations
// failing together and retries; on any other UNAUTHENTICATED reason, or a refused refresh, it signs out.
// On FORBIDDEN with reason MFA_REQUIRED it sends the user to the code prompt: no refresh, no retry.
import { ClientError, GraphQLClient, type RequestDocument, type Variables, gql } from "graphql-request";

import type { TokenPair, TokenStore } from "./token-store.js";

const REFRESH = gql`
  mutation Refresh($refreshToken: String!) {
    refreshToken(refreshToken: $refreshToken) {
      accessToken
      refreshToken
    }
  }
`;

/** The `extensions.reason` of the error's UNAUTHENTICATED entry, if it has one. */
function unauthenticatedReason(error: unknown): string | undefined {
  if (!(error instanceof ClientError)) return undefined;
  const entry = error.response.errors?.find((e) => e.extensions?.code === "UNAUTHENTICATED");
  return entry?.extensions?.reason as string | undefined;
}

/** Whether the server asks for the second factor: FORBIDDEN with reason MFA_REQUIRED. */
function secondFactorRequired(error: unknown): boolean {
  return error instanceof ClientError && !!error.response.errors?.some((e) => e.extensions?.reason === "MFA_REQUIRED");
}

export interface AuthenticatedClient {
  /** Sends an operation with the current access token, refreshing and retrying once when it has expired. */
  request<T>(document: RequestDocument, variables?: Variables): Promise<T>;
}

/** A graphql-request client that keeps `store`'s tokens fresh; sign-in is the app's (it calls `store.save`). */
export function createGraphQLRequestClient(url: string, store: TokenStore): AuthenticatedClient {
  const client = new GraphQLClient(url, {
    requestMiddleware(request) {
      const headers = new Headers(request.headers);
      if (store.accessToken) headers.set("authorization", `Bearer ${store.accessToken}`);
      return { ...request, headers };
    },
  });
  let refreshing: Promise<boolean> | undefined;

  // The expired token rides along on the refresh: an operation of only refreshToken ignores it.
  async function refresh(): Promise<boolean> {
    try {
      const data = await client.request<{ refreshToken: TokenPair }>(REFRESH, { refreshToken: store.refreshToken });
      store.save(data.refreshToken);
      return true;
    } catch (error) {
      store.signOut(unauthenticatedReason(error) ?? "REFRESH_FAILED");
      return false;
    }
  }

  // Single flight: operations failing while a refresh is under way wait for that one; one sent with a
  // token that has been replaced since just retries with the new one.
  function refreshOnce(sentToken: string | undefined): Promise<boolean> {
    if (sentToken !== store.accessToken) return Promise.resolve(store.accessToken !== undefined);
    refreshing ??= refresh().finally(() => (refreshing = undefined));
    return refreshing;
  }

  async function send<T>(document: RequestDocument, variables: Variables | undefined, retry: boolean): Promise<T> {
    const sentToken = store.accessToken;
    try {
      return await client.request<T>(document, variables);
    } catch (error) {
      if (secondFactorRequired(error)) store.secondFactorOwed();
      const reason = unauthenticatedReason(error);
      if (reason === "TOKEN_EXPIRED" && retry && (await refreshOnce(sentToken)))
        return send(document, variables, false);
      if (reason !== undefined) store.signOut(reason);
      throw error;
    }
  }

  return { request: (document, variables) => send(document, variables, true) };
}
