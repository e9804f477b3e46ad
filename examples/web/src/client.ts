// The Apollo Client of the app: subscriptions over the WebSocket, everything else over HTTP, both
// through auth.ts.
import { ApolloClient, ApolloLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { OperationTypeNode } from "graphql";

import { apiLink, wsClient } from "./auth";

export const client = new ApolloClient({
  link: ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(wsClient),
    apiLink,
  ),
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
