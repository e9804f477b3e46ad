import {
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  getOperationAST,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  OperationTypeNode,
} from "graphql";

import { type ClientInfo, type Context, credentialId, type Principal, withOwnerRoles } from "../../access/principal.js";
import type { RevocationList } from "../../access/revocation-list.js";
import type { Config } from "../../config.js";
import { ProtocolErrorCode, RateLimitedError } from "../../errors.js";
import type { OperationRules } from "../../graphql/operation-rules.js";
import { limitEventSize } from "../../graphql/response-size.js";
import { DeliveryLimiter, subscribeWithLimit } from "../../graphql/subscription-delivery.js";
import type { TrustedDocument } from "../../graphql/trusted-documents.js";
import type { MetricsRecorder } from "../../metrics.js";
import { type DocumentGate, documentNotAllowedError } from "../document-gate.js";
import { CAPACITY_RETRY_AFTER_SECONDS, type Connection, type SubscriptionsHeld } from "./connections.js";

/**
 * The one difference in what HTTP and WebSocket run, deliberate: each transport serves what it is
 * made for, so a query or mutation over WebSocket is refused after validation (HTTP refuses a
 * subscription before it: graphql/subscriptions-over-http.ts).
 */
export const ONLY_SUBSCRIPTIONS_MESSAGE =
  "Only subscriptions are served over WebSocket: send queries and mutations over HTTP to /graphql.";

/** The error of a subscription past WS_MAX_SUBSCRIPTIONS_PER_CONNECTION. */
export function tooManySubscriptionsMessage(max: number): string {
  return `A connection may hold at most ${max} active subscriptions: complete one first, or open another connection.`;
}

/** Who runs a subscription: where the connection came from and what its token proves (at connect, or at its last renewal). */
export type Caller = ClientInfo & {
  requestId: string;
  readonly principal: Principal | null;
  readonly expiresAt: number | undefined;
};

/** The caller of a connection's subscriptions: its principal and expiry as they are at each read, since a renewal replaces them. */
export function callerOf(connection: Pick<Connection, "client" | "principal" | "expiresAt">): Caller {
  return {
    ...connection.client,
    get principal() {
      return connection.principal;
    },
    get expiresAt() {
      return connection.expiresAt;
    },
  };
}

/** A `subscribe` message's payload, as graphql-ws hands it over. */
export interface SubscribePayload {
  readonly query: string;
  /** The id of a listed document (GraphQL over HTTP's `documentId`), or `extensions.persistedQuery.sha256Hash`. */
  readonly documentId?: unknown;
  readonly extensions?: Record<string, unknown> | null;
  readonly operationName?: string | null;
  readonly variables?: Record<string, unknown> | null;
}

/** One operation's way through the server, for graphql-ws's hooks. */
export interface Operations {
  /** `onSubscribe`: the caps (from `held`), then parse, validate and price; what to run, or why not. */
  prepare(caller: Caller, held: SubscriptionsHeld, payload: SubscribePayload): ExecutionArgs | readonly GraphQLError[];
  /** graphql-ws's `subscribe`: each event's selections under SUBSCRIPTION_DELIVERY_CONCURRENCY, each with a context of its own. */
  subscribe(args: ExecutionArgs): ReturnType<typeof subscribeWithLimit>;
  /** `onError`: errors formatted (unknown ones masked) as HTTP's are. */
  formatErrors(errors: readonly GraphQLError[]): GraphQLFormattedError[];
  /** `onNext`: an event's result formatted likewise, and replaced by RESPONSE_TOO_LARGE over RESPONSE_MAX_BYTES. */
  formatEvent(result: ExecutionResult): FormattedExecutionResult;
}

export interface OperationsDeps {
  readonly schema: GraphQLSchema;
  readonly config: Config;
  /** The HTTP path's own parse, validation, cost check and error formatting (graphql/operation-rules.ts). */
  readonly rules: OperationRules;
  readonly revocations: Pick<RevocationList, "isSessionEnded" | "currentRoles">;
  readonly now: () => number;
  readonly metrics: MetricsRecorder;
  /** Hears each error the formatter masks. */
  readonly report: (error: unknown) => void;
  /** The TRUSTED_DOCUMENTS gate (../document-gate.ts): a refusal, or a listed document that is run without a parse. */
  readonly gate: Pick<DocumentGate, "ws">;
}

/**
 * Subscriptions run with HTTP's rules: the document parsed and validated by the same code and
 * limits (tokens, depth, aliases, directives, one credential mutation), then priced against the
 * much lower SUBSCRIPTION_MAX_COST, since a selection runs on every event; each event's selections
 * run through a {@link DeliveryLimiter}; errors are formatted (and unknown ones masked) by HTTP's
 * formatter.
 */
export function createOperations(deps: OperationsDeps): Operations {
  const { schema, config, rules, metrics } = deps;
  const budget = config.subscriptions;
  const formatError = rules.formatError(deps.report);
  const format = (errors: readonly GraphQLError[]) => errors.map((error) => formatError(error.toJSON(), error));
  const limiter = new DeliveryLimiter(budget.deliveryConcurrency, (waiting) => metrics.deliveriesWaiting(waiting));
  // A subscription's context -> how to make a fresh one for each of its events.
  const eventContexts = new WeakMap<Context, () => Context>();
  const contextOfEvent = (context: unknown) => eventContexts.get(context as Context)?.() ?? context;

  const runnable = (caller: Caller, payload: SubscribePayload, listed?: TrustedDocument): Prepared => {
    // A listed document was parsed, validated and priced with these same rules when the manifest was read.
    const document = listed?.document ?? rules.parse(payload.query);
    if (document instanceof GraphQLError) return [document];
    const invalid = listed ? [] : rules.validate(schema, document);
    if (invalid.length > 0) return invalid;
    const operation = getOperationAST(document, payload.operationName);
    if (!operation)
      return [
        new GraphQLError("The document has no operation of that name, or several and no operationName.", {
          extensions: { code: ProtocolErrorCode.OPERATION_RESOLUTION_FAILURE },
        }),
      ];
    if (operation.operation !== OperationTypeNode.SUBSCRIPTION)
      return [new GraphQLError(ONLY_SUBSCRIPTIONS_MESSAGE, { extensions: { code: ProtocolErrorCode.BAD_REQUEST } })];
    try {
      const known = listed?.fixedCosts.get(operation.name?.value ?? null);
      const input = { schema, document, operation, variables: payload.variables ?? undefined };
      rules.checkCost(input, budget.maxCost, known);
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      metrics.limitReached("SUBSCRIPTION_MAX_COST");
      return [error];
    }
    const contextOf = () => liveContext(caller, deps.revocations, deps.now);
    const contextValue = contextOf();
    eventContexts.set(contextValue, contextOf);
    const { operationName, variables: variableValues } = payload;
    return { schema, document, operationName, variableValues, contextValue };
  };

  return {
    prepare: (caller, held, payload) => {
      const listed = admitted(deps, caller, payload);
      if (listed instanceof GraphQLError) return [listed];
      const full = capsRefusal(caller, held, config.subscriptions, metrics);
      return full ? [full] : runnable(caller, payload, listed);
    },
    subscribe: (args) => subscribeWithLimit(args, limiter, contextOfEvent),
    formatErrors: format,
    formatEvent: (result) =>
      limitEventSize(
        result.errors ? { ...result, errors: format(result.errors) } : result,
        config.responseMaxBytes,
        metrics,
      ),
  };
}

/** What `onSubscribe` answers: what to run, or why not. */
type Prepared = ExecutionArgs | readonly GraphQLError[];

// The document gate's say on a payload (../document-gate.ts): its refusal, the listed document to
// run without a parse (and at its recorded cost, when no variable changes it), or undefined (any other document is parsed and validated). The caller is
// taken as it is now: an OPERATIONS_ANY token whose owner is no longer an ADMIN holds it no more.
function admitted(
  deps: OperationsDeps,
  caller: Caller,
  payload: SubscribePayload,
): GraphQLError | TrustedDocument | undefined {
  const principal = liveContext(caller, deps.revocations, deps.now).principal;
  const verdict = deps.gate.ws(payload, principal, caller);
  if (verdict.kind === "refused") return documentNotAllowedError();
  return verdict.kind === "trusted" ? verdict.document : undefined;
}

// Refusals before any document is read: the caps, cheapest first. Undefined: room for one more.
function capsRefusal(
  caller: Caller,
  held: SubscriptionsHeld,
  budget: Config["subscriptions"],
  metrics: MetricsRecorder,
): GraphQLError | undefined {
  if (held.onConnection >= budget.maxSubscriptionsPerConnection) {
    metrics.limitReached("WS_MAX_SUBSCRIPTIONS_PER_CONNECTION");
    return new GraphQLError(tooManySubscriptionsMessage(budget.maxSubscriptionsPerConnection), {
      extensions: { code: ProtocolErrorCode.BAD_REQUEST },
    });
  }
  if (held.fromIp >= budget.maxSubscriptionsPerIp) {
    metrics.limitReached("WS_MAX_SUBSCRIPTIONS_PER_IP");
    return new RateLimitedError(CAPACITY_RETRY_AFTER_SECONDS, "Too many subscriptions from this address");
  }
  if (!caller.principal && held.anonymous >= budget.maxAnonymousSubscriptions) {
    metrics.limitReached("WS_MAX_ANONYMOUS_SUBSCRIPTIONS");
    return new RateLimitedError(CAPACITY_RETRY_AFTER_SECONDS, "Too many anonymous subscriptions: sign in");
  }
  if (held.all >= budget.maxSubscriptions) {
    metrics.limitReached("WS_MAX_SUBSCRIPTIONS");
    return new RateLimitedError(CAPACITY_RETRY_AFTER_SECONDS, "The server holds as many subscriptions as it can");
  }
  return undefined;
}

/**
 * The context of one subscription: its `principal` is worked out again at every access, from the
 * caller's as it is then (renewed or not), so each event sees the session and roles as they are
 * now: null once the session has ended or the token has expired (the socket is being closed then),
 * and roles changed since the token was minted replace the token's, as on the HTTP path.
 */
export function liveContext(
  caller: Caller,
  revocations: Pick<RevocationList, "isSessionEnded" | "currentRoles">,
  now: () => number,
): Context {
  return {
    get principal(): Principal | null {
      const { principal, expiresAt } = caller;
      if (principal === null) return null;
      if (revocations.isSessionEnded(credentialId(principal))) return null;
      if (expiresAt !== undefined && expiresAt <= now()) return null;
      const roles = revocations.currentRoles(principal.userId);
      return roles === undefined ? principal : withOwnerRoles(principal, roles);
    },
    requestId: caller.requestId,
    ip: caller.ip ?? "",
    userAgent: caller.userAgent,
  };
}
