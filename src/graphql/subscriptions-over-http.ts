import type { ApolloServerPlugin } from "@apollo/server";
import {
  type DocumentNode,
  getOperationAST,
  GraphQLError,
  Kind,
  OperationTypeNode,
  parse,
  type ParseOptions,
  visit,
} from "graphql";

import { ProtocolErrorCode } from "../errors.js";

/** What a client is told when it sends a subscription over HTTP. */
export const SUBSCRIPTIONS_OVER_HTTP_MESSAGE =
  "Subscriptions are not served over HTTP: open a WebSocket to /graphql with the graphql-transport-ws protocol (docs/subscriptions.md).";

/** The refusal of a subscription over HTTP: 400 BAD_REQUEST, or 405 in a GET (like Apollo's own check for mutations). */
export function subscriptionOverHttpError(method: string): GraphQLError {
  return new GraphQLError(SUBSCRIPTIONS_OVER_HTTP_MESSAGE, {
    extensions: { code: ProtocolErrorCode.BAD_REQUEST, http: { status: method === "GET" ? 405 : 400 } },
  });
}

// Only a document that holds this word can hold a subscription; any other costs no extra parse.
const MAY_SUBSCRIBE = /\bsubscription\b/;

/**
 * What HTTP makes of a document's subscription operations, before Apollo parses and validates it:
 * `{ refuse: true }` when the operation selected by `operationName` is a subscription; the same text with
 * every other subscription operation (and the fragments only they use) blanked out with spaces, so
 * that locations stay right, when the selected operation is a query or a mutation; undefined when
 * there is nothing to do (no subscription, or text that does not parse, left to Apollo's parser).
 *
 * This runs before validation because graphql-js's subscription rules (one root field, no
 * `__typename`) would otherwise answer `subscription { __typename }` with a validation error that
 * does not say where subscriptions are served, and refuse `query Q { … } subscription S { … }` as a
 * whole although only Q is asked to run over HTTP.
 */
export function screenSubscriptions(
  query: string,
  operationName: string | undefined,
  parseOptions: ParseOptions,
): { refuse: true } | { query: string } | undefined {
  if (!MAY_SUBSCRIBE.test(query)) return undefined;
  let document: DocumentNode;
  try {
    document = parse(query, parseOptions);
  } catch {
    return undefined;
  }
  const selected = getOperationAST(document, operationName);
  if (!selected) return undefined;
  if (selected.operation === OperationTypeNode.SUBSCRIPTION) return { refuse: true };
  const dropped = document.definitions.filter(
    (definition) =>
      definition.kind === Kind.OPERATION_DEFINITION && definition.operation === OperationTypeNode.SUBSCRIPTION,
  );
  if (dropped.length === 0) return undefined;
  // Fragments still spread by what is kept (directly or through other fragments) stay.
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  const kept = new Set<string>();
  const spreadIn = (node: (typeof document.definitions)[number]) => {
    visit(node, {
      FragmentSpread(spread) {
        const name = spread.name.value;
        if (kept.has(name) || !fragments.has(name)) return;
        kept.add(name);
        spreadIn(fragments.get(name)!);
      },
    });
  };
  for (const definition of document.definitions)
    if (definition.kind !== Kind.FRAGMENT_DEFINITION && !dropped.includes(definition)) spreadIn(definition);
  const blank = [...dropped, ...[...fragments.values()].filter((fragment) => !kept.has(fragment.name.value))];
  let text = query;
  for (const { loc } of blank) {
    if (!loc) return undefined;
    text = text.slice(0, loc.start) + text.slice(loc.start, loc.end).replace(/[^\n]/g, " ") + text.slice(loc.end);
  }
  return { query: text };
}

/**
 * Apollo plugin: refuses a subscription operation sent over HTTP with 400 BAD_REQUEST before it
 * runs, for the documents {@link screenSubscriptions} does not see before Apollo (a persisted query
 * sent by its hash alone). graphql-js validation accepts `subscription { __typename }` even on a schema without a
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
          throw subscriptionOverHttpError("POST");
        },
      };
    },
  };
}
