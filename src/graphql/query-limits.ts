import type { ApolloServerPlugin, GraphQLRequestListener } from "@apollo/server";
import { ApolloServerErrorCode } from "@apollo/server/errors";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import {
  type DocumentNode,
  GraphQLError,
  type OperationDefinitionNode,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
} from "graphql";

import type { Context } from "../access/principal.js";
import type { CrossRule, QueryLimits } from "../config.js";
import { ErrorCode, QUERY_TOO_COMPLEX_MESSAGE, SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS } from "../errors.js";
import { GRAPHQL_ARMOR_MESSAGES, GRAPHQL_MESSAGES } from "../library-messages.js";
import { type LimitName, type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { CostBudget } from "./cost-budget.js";
import { type CostInput, operationCost } from "./query-cost.js";

/**
 * Well above what this API's clients send, well below what abuse needs. Useful queries nest about
 * 6 levels (`me { posts { author { posts { … } } } }`). The cost prices text by its declared
 * maximum length (a post body 20, a title 1: src/graphql/query-cost.ts), so it bounds the size of
 * an answer as well as its count of values, and 12,000 is the cost of the largest ordinary query
 * in the tests: a page of 100 posts, each with its author and the author's 3 newest posts, every
 * field and `__typename` included, 100 × (2 + 25 + (2 + 5 + 3 × (2 + 25 + 1) + 1) + 1) = 12,000.
 * A plain page of 100 posts with every post and author field costs 3,200, and `posts(first: $n)
 * { author { posts(first: $n) { … { id } } } }` nested 8 deep runs with n = 7 (8,799, 2,401 ids)
 * and is refused with n = 8 (14,624). `post { author { posts(first: 40) { author { posts(first:
 * 40) { body } } } } }`, 1,600 bodies (32 MB) from a 125-byte request, costs 2 + 2 + 40 × (2 + 2 +
 * 40 × 22) = 35,364: refused. A body costs at least 20 wherever it is, so no answer within the
 * limit holds more than 600 bodies, and every answer at most 12,000 values and about 13 million
 * characters of text and keys (at most 1,000 of text and 99 of an alias per unit);
 * {@link DEFAULT_RESPONSE_MAX_BYTES} stops it well before that. Apollo Sandbox's introspection is
 * under 200 tokens, and its `__schema` part counts for neither depth nor cost. The token limit is
 * what refuses 600 repeated fields: no other rule counts a plain field selected again and again.
 */
/** QUERY_MAX_COST_IN_FLIGHT and QUERY_MAX_COST: an operation at the cost limit must be able to run. */
export const costInFlightProblem: CrossRule = (config) =>
  config && config.queryLimits.maxCostInFlight < config.queryLimits.maxCost
    ? "QUERY_MAX_COST_IN_FLIGHT must be at least QUERY_MAX_COST (an operation at the cost limit must be able to run)"
    : undefined;

export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxDepth: 10,
  maxAliases: 15,
  maxDirectives: 50,
  maxTokens: 500,
  maxCost: 12_000,
  // Three operations at the cost limit at once (about 12 MB of text each at most), or thousands of
  // ordinary ones: what they build together stays well inside npm start's heap (docs/limits.md).
  maxCostInFlight: 36_000,
});

/**
 * How long an operation may wait for {@link QueryLimits.maxCostInFlight} to make room, and how many
 * may wait at once; past either it is refused with {@link BUSY_MESSAGE} (503, SERVICE_UNAVAILABLE).
 */
export const COST_BUDGET_QUEUE = Object.freeze({ maxWaitMs: 2_000, maxWaiters: 500 });

/** The refusal of an operation that found the server's budget of operations running at once full. */
export const BUSY_MESSAGE =
  "The server is running as many large operations as it can at once. Try again shortly, or ask for less.";

/**
 * The cost recorded at load for an operation of a trusted document that no variable changes
 * (graphql/trusted-document-store.ts), or undefined: price it.
 */
export type FixedCost = (document: DocumentNode, operation: OperationDefinitionNode) => number | undefined;

/** What Apollo Server needs to enforce {@link QueryLimits}: parser options, validation rules and the cost plugin. */
export interface QueryLimitOptions {
  readonly parseOptions: ParseOptions;
  readonly validationRules: ValidationRule[];
  readonly plugin: ApolloServerPlugin<Context>;
  /**
   * The plugin's cost check, counting nothing: the operation's cost (a trusted document's recorded
   * one where `fixedCost` has it), or the refusal thrown. The compiled lane asks it too.
   */
  readonly costOf: (input: CostInput) => number;
  /** QUERY_MAX_COST_IN_FLIGHT: the budget the plugin (and the compiled lane) holds each operation's cost in. */
  readonly inFlight: CostBudget;
}

/**
 * Throws the query-limit refusal (HTTP 400, `GRAPHQL_VALIDATION_FAILED`) when the operation costs
 * more than `maxCost` (see {@link operationCost}). With `exposeLimits` the message names the limit
 * and the cost found, in graphql-armor's words like the other limits; without it, only
 * {@link QUERY_TOO_COMPLEX_MESSAGE}. For any server that runs operations, Apollo's or a WebSocket one.
 * `known` is the operation's cost when it was priced before (a trusted document's, at load).
 */
export function checkOperationCost(
  input: CostInput,
  maxCost: number,
  options: { exposeLimits: boolean },
  known?: number,
): number {
  const cost = known ?? operationCost(input);
  if (cost <= maxCost) return cost;
  throw new GraphQLError(
    options.exposeLimits ? `Query Cost limit of ${maxCost} exceeded, found ${cost}.` : QUERY_TOO_COMPLEX_MESSAGE,
    {
      extensions: { code: ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED, http: { status: 400 } },
    },
  );
}

/**
 * Builds the checks that refuse an operation before it runs when it is too deep, has too many
 * aliases or directives, too many tokens, or costs too much. Every refusal is an HTTP 400 with code
 * `GRAPHQL_VALIDATION_FAILED`. With `exposeLimits` (development) the message names the limit and
 * what was found; without it (production) every refusal says only {@link QUERY_TOO_COMPLEX_MESSAGE},
 * so nobody can probe for the exact numbers.
 *
 * The token limit is graphql-js's own `maxTokens` parser option rather than graphql-armor's: the
 * parser stops at the first token over the limit, so an oversized document costs no more than the
 * limit to refuse (and no second parse). Its syntax error is renamed in `createErrorFormatter`.
 *
 * The cost is ours ({@link operationCost}), not graphql-armor's, which multiplies only by a literal
 * `first` and so priced `posts(first: $n) { author { posts { … } } }` as if every list held one
 * item. A list's size may come from a variable, and Apollo caches validated documents without
 * their variables, so the cost is checked in the plugin's `didResolveOperation`, which runs for
 * every request after validation and before execution, with the variables at hand.
 *
 * With `options.fixedCost`, an operation whose cost was recorded when its trusted document was
 * loaded is not priced again (only held against the limit).
 *
 * Each refusal is counted in `options.metrics` (`limitReached`) under its variable's name,
 * `QUERY_MAX_DEPTH` … `QUERY_MAX_COST`: the validation rules count on every transport that runs
 * them; the token limit and the cost are counted by the plugin, so over HTTP.
 */
export function createQueryLimits(
  limits: QueryLimits,
  options: { exposeLimits: boolean; metrics?: Pick<MetricsRecorder, "limitReached">; fixedCost?: FixedCost },
): QueryLimitOptions {
  const metrics = options.metrics ?? NO_METRICS;
  // graphql-armor reports through the validation context, so Apollo answers 400 like any other
  // validation error; its own reporter would prefix "Syntax Error: " and use code BAD_USER_INPUT.
  const report = (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(new GraphQLError(error.message.replace(GRAPHQL_ARMOR_MESSAGES.syntaxErrorPrefix, "")));
  };
  const common = (limit: LimitName) => ({
    exposeLimits: options.exposeLimits,
    errorMessage: QUERY_TOO_COMPLEX_MESSAGE,
    propagateOnRejection: false,
    onReject: [report, () => metrics.limitReached(limit)],
  });
  const armor = new ApolloArmor({
    maxDepth: { ...common("QUERY_MAX_DEPTH"), n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    // Every alias counts: armor's default exempts `__typename`, which would let 600 of those through.
    maxAliases: { ...common("QUERY_MAX_ALIASES"), n: limits.maxAliases, allowList: [] },
    maxDirectives: { ...common("QUERY_MAX_DIRECTIVES"), n: limits.maxDirectives },
    costLimit: { enabled: false },
    maxTokens: { enabled: false },
    // Apollo's hideSchemaDetailsFromClientErrors already drops "Did you mean" in production, and in
    // development the suggestions help.
    blockFieldSuggestion: { enabled: false },
  });
  // With the two plugin-based protections off, armor's protection is validation rules only.
  const { validationRules } = armor.protect();
  // Every HTTP operation holds its cost here while it runs (QUERY_MAX_COST_IN_FLIGHT).
  const inFlight = new CostBudget(Math.max(limits.maxCostInFlight, limits.maxCost), COST_BUDGET_QUEUE);
  const costOf = (input: CostInput) =>
    checkOperationCost(input, limits.maxCost, options, options.fixedCost?.(input.document, input.operation));
  const plugin: ApolloServerPlugin<Context> = {
    requestDidStart: async () => costListener(costOf, metrics, inFlight),
  };
  return { parseOptions: { maxTokens: limits.maxTokens }, validationRules, plugin, costOf, inFlight };
}

/**
 * The plugin's listener for one request: counts a parse stopped by the token limit, refuses an
 * operation over the cost limit, and holds its cost in `inFlight` from resolution to response.
 */
function costListener(
  costOf: (input: CostInput) => number,
  metrics: Pick<MetricsRecorder, "limitReached">,
  inFlight: CostBudget,
): GraphQLRequestListener<Context> {
  let release: (() => void) | undefined;
  return {
    async parsingDidStart() {
      return async (error) => {
        if (error && GRAPHQL_MESSAGES.tokenLimit.test(error.message)) metrics.limitReached("QUERY_MAX_TOKENS");
      };
    },
    async didResolveOperation({ schema, document, operation, request, contextValue }) {
      // Apollo resolves the operation before this hook and answers itself when none matches.
      if (!operation) return;
      let cost: number;
      try {
        cost = costOf({ schema, document, operation, variables: request.variables });
      } catch (error) {
        metrics.limitReached("QUERY_MAX_COST");
        throw error;
      }
      release = await inFlight.acquire(cost, contextValue.ip);
      if (release) return;
      metrics.limitReached("QUERY_MAX_COST_IN_FLIGHT");
      throw new GraphQLError(BUSY_MESSAGE, {
        extensions: {
          code: ErrorCode.SERVICE_UNAVAILABLE,
          retryAfter: SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS,
          http: { status: 503 },
        },
      });
    },
    // Apollo calls this for every request that got this far, answered or refused.
    async willSendResponse() {
      release?.();
    },
  };
}
