// urql with @urql/exchange-auth, in the shape its README documents: addAuthToOperation adds the
// bearer token, didAuthError recognises the API's auth error, refreshAuth rotates the tokens through
// utils.mutate; a mapExchange above it signs out on the errors a refresh cannot fix, and sends the
// user to the code prompt on FORBIDDEN with reason MFA_REQUIRED. @urql/exchange-persisted sends
// every operation, the refresh included, as its manifest hash alone.
import {
  type Client,
  type CombinedError,
  type Operation,
  cacheExchange,
  createClient,
  fetchExchange,
  mapExchange,
} from "@urql/core";
import { authExchange } from "@urql/exchange-auth";
import { persistedExchange } from "@urql/exchange-persisted";
import type { DocumentNode } from "graphql";

import { RefreshDocument } from "./gql/graphql.js";
import type { TokenStore } from "./token-store.js";

/**
 * The id codegen gave the document in the manifest (`__meta__.hash`, `sha256:<hex>`), as the hex
 * hash the exchange sends; urql's own formatting (the added __typename) keeps `__meta__`.
 */
function manifestHash(document: DocumentNode): string {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash) throw new Error("a document that is not in the manifest: generate it with codegen");
  return hash.replace(/^sha256:/, "");
}

/** The `extensions.reason` of the error's UNAUTHENTICATED entry, if it has one. */
function unauthenticatedReason(error: CombinedError): string | undefined {
  const entry = error.graphQLErrors.find((e) => e.extensions?.code === "UNAUTHENTICATED");
  return entry?.extensions?.reason as string | undefined;
}

/** Whether the server asks for the second factor: FORBIDDEN with reason MFA_REQUIRED. */
function secondFactorRequired(error: CombinedError): boolean {
  return error.graphQLErrors.some((e) => e.extensions?.reason === "MFA_REQUIRED");
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
    // Ours: queries by POST too. urql sends them by GET, which Apollo Server's CSRF prevention
    // refuses without a Content-Type or a preflight header.
    preferGetMethod: false,
    exchanges: [
      // README, "Handling Errors via the errorExchange" (documented): a mapExchange above authExchange
      // sees only the errors authExchange did not handle (another reason, or still expired after the
      // retry), and logs out. Ours: MFA_REQUIRED goes to the code prompt instead.
      mapExchange({
        onError(error) {
          if (secondFactorRequired(error)) return store.secondFactorOwed();
          const reason = unauthenticatedReason(error);
          if (reason !== undefined) store.signOut(reason);
        },
      }),
      cacheExchange,
      // README, "Quick Start Guide": the documented authExchange. Its lines are marked "documented";
      // the README's willAuthError (`!token`) is left out, as it would send a signed-out client to
      // refreshAuth with no refresh token.
      authExchange(async (utils) => ({
        addAuthToOperation(operation) {
          if (!store.accessToken) return operation; // documented
          return utils.appendHeaders(operation, { Authorization: `Bearer ${store.accessToken}` }); // documented
        },
        didAuthError(error, operation) {
          failedWith = sentToken(operation); // ours: see refreshAuth
          // Documented: check the error's extensions. Ours: the reason, since only TOKEN_EXPIRED is
          // cured by a refresh (the code is UNAUTHENTICATED for SESSION_ENDED too).
          return unauthenticatedReason(error) === "TOKEN_EXPIRED";
        },
        async refreshAuth() {
          // Ours: an operation sent before the last refresh only needs its retry, not a refresh.
          if (failedWith !== store.accessToken) return;
          // Documented: utils.mutate. It passes through addAuthToOperation, so the expired token
          // rides along; an operation of only refreshToken ignores the header.
          const result = await utils.mutate(RefreshDocument, { refreshToken: store.refreshToken ?? "" });
          // Documented: save the new tokens, "otherwise, if refresh fails, clear storage and log out".
          if (result.data?.refreshToken) store.save(result.data.refreshToken);
          else store.signOut((result.error && unauthenticatedReason(result.error)) ?? "REFRESH_FAILED");
        },
      })),
      // README: in front of fetchExchange (after authExchange here). Ours: the hash only, never the text
      // (`enforcePersistedQueries`), for mutations too, and by POST as every other operation.
      persistedExchange({
        enforcePersistedQueries: true,
        enableForMutation: true,
        preferGetForPersistedQueries: false,
        generateHash: async (_query, document) => manifestHash(document),
      }),
      fetchExchange,
    ],
  });
}
