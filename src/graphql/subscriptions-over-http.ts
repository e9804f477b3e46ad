import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, OperationTypeNode } from "graphql";

import { ProtocolErrorCode } from "../errors.js";

/** What a client is told when it sends a subscription over HTTP. */
export const SUBSCRIPTIONS_OVER_HTTP_MESSAGE =
  "Subscriptions are not served over HTTP: open a WebSocket to /graphql with the graphql-transport-ws protocol.";

/**
 * Apollo plugin: refuses a subscription operation sent over HTTP with 400 BAD_REQUEST before it
 * runs. graphql-js validation accepts `subscription { __typename }` even on a schema without a
 * Subscription type, and execution then throws a GraphQLError without a code ("Schema is not
 * configured to execute subscription operation."), which formatError would mask and log as an
 * unexpected error on every such request. With a Subscription type, `execute` would call the
 * subscription resolvers without an event, which is no better. Only the selected operation counts,
 * so a document that also holds a subscription may still run its query.
 */
export function subscriptionsOverHttpRefused(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation !== OperationTypeNode.SUBSCRIPTION) return;
          throw new GraphQLError(SUBSCRIPTIONS_OVER_HTTP_MESSAGE, {
            extensions: { code: ProtocolErrorCode.BAD_REQUEST, http: { status: 400 } },
          });
        },
      };
    },
  };
}
