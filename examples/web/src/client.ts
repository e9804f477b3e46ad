// The Apollo Client of the app: subscriptions over the WebSocket, everything else over HTTP, both
// through auth.ts, each operation named by its hash in the manifest (src/gql/persisted-documents.json,
// the server's TRUSTED_DOCUMENTS).
import { ApolloClient, ApolloLink, InMemoryCache } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { OperationTypeNode } from "graphql";
import type { Client } from "graphql-ws";

import { apiLink, manifestHash, wsClient } from "./auth";
import manifest from "./gql/persisted-documents.json";

// graphql-ws's subscribe message must hold a `query` text: with the hash goes the manifest's text
// for it, which a server lets through with a manifest (the same text) and without one (a document).
const listed: Record<string, string> = manifest;
const socketClient: Client = {
  ...wsClient,
  subscribe: (payload, sink) => {
    const hash = (payload.extensions?.persistedQuery as { sha256Hash?: string } | undefined)?.sha256Hash;
    return wsClient.subscribe({ ...payload, query: listed[`sha256:${hash}`] ?? payload.query }, sink);
  },
};

export const client = new ApolloClient({
  link: ApolloLink.from([
    // Hashes only over HTTP; back to the text only when the server has no manifest and says
    // PERSISTED_QUERY_NOT_SUPPORTED. A refusal (PERSISTED_QUERY_NOT_ALLOWED) is an error like any other.
    new PersistedQueryLink({ generateHash: manifestHash }),
    ApolloLink.split(
      ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
      new GraphQLWsLink(socketClient),
      apiLink,
    ),
  ]),
  cache: new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One list per page size: a page fetched with `after` is appended to the pages before it.
          posts: {
            keyArgs: ["first"],
            merge: (existing: unknown[] = [], incoming: unknown[], { args }) =>
              args?.after ? [...existing, ...incoming] : incoming,
          },
        },
      },
    },
  }),
});
