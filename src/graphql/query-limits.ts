import type { ApolloServerPlugin, GraphQLRequestListener } from "@apollo/server";
import { ApolloServerErrorCode } from "@apollo/server/errors";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import { GraphQLError, type ParseOptions, type ValidationContext, type ValidationRule } from "graphql";

import type { QueryLimits } from "../config.js";
import { QUERY_TOO_COMPLEX_MESSAGE } from "../errors.js";
import { type CostInput, operationCost } from "./query-cost.js";
import { GRAPHQL_ARMOR_MESSAGES, GRAPHQL_MESSAGES } from "../library-messages.js";
import { type LimitName, type MetricsRecorder, NO_METRICS } from "../metrics.js";

/** What Apollo Server needs to enforce {@link QueryLimits}: parser options, validation rules and the cost plugin. */
export interface QueryLimitOptions {
  readonly parseOptions: ParseOptions;
  readonly validationRules: ValidationRule[];
  readonly plugin: ApolloServerPlugin;
}

/**
 * Throws the query-limit refusal (HTTP 400, `GRAPHQL_VALIDATION_FAILED`) when the operation costs
 * more than `maxCost` (see {@link operationCost}). With `exposeLimits` the message names the limit
 * and the cost found, in graphql-armor's words like the other limits; without it, only
 * {@link QUERY_TOO_COMPLEX_MESSAGE}. For any server that runs operations, Apollo's or a WebSocket one.
 */
export function checkOperationCost(input: CostInput, maxCost: number, options: { exposeLimits: boolean }): void {
  const cost = operationCost(input);
  if (cost <= maxCost) return;
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
 * Each refusal is counted in `options.metrics` (`limitReached`) under its variable's name,
 * `QUERY_MAX_DEPTH` … `QUERY_MAX_COST`: the validation rules count on every transport that runs
 * them; the token limit and the cost are counted by the plugin, so over HTTP.
 */
export function createQueryLimits(
  limits: QueryLimits,
  options: { exposeLimits: boolean; metrics?: Pick<MetricsRecorder, "limitReached"> },
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
  const listener: GraphQLRequestListener<object> = {
    async parsingDidStart() {
      return async (error) => {
        if (error && GRAPHQL_MESSAGES.tokenLimit.test(error.message)) metrics.limitReached("QUERY_MAX_TOKENS");
      };
    },
    async didResolveOperation({ schema, document, operation, request }) {
      // Apollo resolves the operation before this hook and answers itself when none matches.
      if (!operation) return;
      try {
        checkOperationCost({ schema, document, operation, variables: request.variables }, limits.maxCost, options);
      } catch (error) {
        metrics.limitReached("QUERY_MAX_COST");
        throw error;
      }
    },
  };
  const plugin: ApolloServerPlugin = { requestDidStart: async () => listener };
  return { parseOptions: { maxTokens: limits.maxTokens }, validationRules, plugin };
}
