// graphql-request 7 against this API: a requestMiddleware adds the bearer token; `request` wraps the
// client's own and, on a 401 with reason TOKEN_EXPIRED, refreshes once for all the operations
// failing together and retries; on any other UNAUTHENTICATED reason, or a refused refresh, it signs out.
// On FORBIDDEN with reason MFA_REQUIRED it sends the user to the code prompt: no refresh, no retry.
// Every operation goes out as its manifest id (`documentId`, GraphQL over HTTP) in place of its text.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { type DocumentNode, print } from "graphql";
import { ClientError, GraphQLClient, type Variables } from "graphql-request";

import { RefreshDocument } from "./gql/graphql.js";
import type { TokenStore } from "./token-store.js";

/** The id codegen gave the document in the manifest (`__meta__.hash`): `sha256:<hex>`, as `documentId` takes it. */
function manifestId(document: DocumentNode): string {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash) throw new Error("a document that is not in the manifest: generate it with codegen");
  return hash;
}

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
  request<T, V extends Variables>(document: TypedDocumentNode<T, V>, variables?: V): Promise<T>;
}

/** A graphql-request client that keeps `store`'s tokens fresh; sign-in is the app's (it calls `store.save`). */
export function createGraphQLRequestClient(url: string, store: TokenStore): AuthenticatedClient {
  // graphql-request prints each document into the body's `query`: the middleware puts the
  // document's manifest id there instead, found by that text.
  const ids = new Map<string, string>();
  const client = new GraphQLClient(url, {
    requestMiddleware(request) {
      const headers = new Headers(request.headers);
      if (store.accessToken) headers.set("authorization", `Bearer ${store.accessToken}`);
      const { query, ...body } = JSON.parse(request.body as string) as { query: string };
      return { ...request, headers, body: JSON.stringify({ ...body, documentId: ids.get(query) }) };
    },
  });
  function post<T, V extends Variables>(document: TypedDocumentNode<T, V>, variables?: V): Promise<T> {
    ids.set(print(document), manifestId(document));
    return client.request<T>(document, variables);
  }
  let refreshing: Promise<boolean> | undefined;

  // The expired token rides along on the refresh: an operation of only refreshToken ignores it.
  async function refresh(): Promise<boolean> {
    try {
      const data = await post(RefreshDocument, { refreshToken: store.refreshToken ?? "" });
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

  async function send<T, V extends Variables>(
    document: TypedDocumentNode<T, V>,
    variables: V | undefined,
    retry: boolean,
  ): Promise<T> {
    const sentToken = store.accessToken;
    try {
      return await post(document, variables);
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
