// urql with @urql/exchange-auth, in the shape its README documents: addAuthToOperation adds the
// bearer token, didAuthError recognises the API's auth error, refreshAuth rotates the tokens through
// utils.mutate; a mapExchange above it signs out on the errors a refresh cannot fix.
import {
  type Client,
  type CombinedError,
  type Operation,
  cacheExchange,
  createClient,
  fetchExchange,
  gql,
  mapExchange,
} from "@urql/core";
import { authExchange } from "@urql/exchange-auth";

import type { TokenPair, TokenStore } from "./token-store.js";

const REFRESH = gql<{ refreshToken: TokenPair }, { refreshToken: string }>`
  mutation Refresh($refreshToken: String!) {
    refreshToken(refreshToken: $refreshToken) {
      accessToken
      refreshToken
    }
  }
`;

/** The `extensions.reason` of the error's UNAUTHENTICATED entry, if it has one. */
function unauthenticatedReason(error: CombinedError): string | undefined {
  const entry = error.graphQLErrors.find((e) => e.extensions?.code === "UNAUTHENTICATED");
  return entry?.extensions?.reason as string | undefined;
}

/** The bearer token an operation was sent with (as addAuthToOperation put it there). */
function sentToken(operation: Operation): string | undefined {
  const options = operation.context.fetchOptions;
  const headers = (typeof options === "function" ? options() : options)?.headers as Record<string, string> | undefined;
  return headers?.Authorization?.replace(/^Bearer /, "");
}

/** An urql client that keeps `store`'s tokens fresh; sign-in is the app's (it calls `store.save`). */
export function createUrqlClient(url: string, store: TokenStore): Client {
  let failedWith: string | undefined;
  return createClient({
    url,
    // Queries by POST like mutations: Apollo Server refuses a GET without a preflight header (CSRF).
    preferGetMethod: false,
    exchanges: [
      // README, "Handling Errors via the errorExchange": above authExchange, so it sees only the
      // errors the auth exchange did not handle (another reason, or still expired after a refresh).
      mapExchange({
        onError(error) {
          const reason = unauthenticatedReason(error);
          if (reason !== undefined) store.signOut(reason);
        },
      }),
      cacheExchange,
      // README, "Quick Start Guide": the documented authExchange with its three callbacks.
      authExchange(async (utils) => ({
        addAuthToOperation(operation) {
          if (!store.accessToken) return operation;
          return utils.appendHeaders(operation, { Authorization: `Bearer ${store.accessToken}` });
        },
        didAuthError(error, operation) {
          failedWith = sentToken(operation); // ours: see refreshAuth
          return unauthenticatedReason(error) === "TOKEN_EXPIRED";
        },
        async refreshAuth() {
          // Ours, not the README's: an operation sent before the last refresh only needs a retry.
          if (failedWith !== store.accessToken) return;
          // utils.mutate passes through addAuthToOperation, so the expired token rides along; an
          // operation of only refreshToken ignores the header.
          const result = await utils.mutate(REFRESH, { refreshToken: store.refreshToken ?? "" });
          if (result.data?.refreshToken) store.save(result.data.refreshToken);
          else
            store.signOut(result.error ? (unauthenticatedReason(result.error) ?? "REFRESH_FAILED") : "REFRESH_FAILED");
        },
      })),
      fetchExchange,
    ],
  });
}
