import { ApolloArmor } from "@escape.tech/graphql-armor";
import { GraphQLError, type ParseOptions, type ValidationContext, type ValidationRule } from "graphql";

import type { QueryLimits } from "./config.js";
import { QUERY_TOO_COMPLEX_MESSAGE } from "./errors.js";

/** What Apollo Server needs to enforce {@link QueryLimits}: parser options and validation rules. */
export interface QueryLimitOptions {
  readonly parseOptions: ParseOptions;
  readonly validationRules: ValidationRule[];
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
 */
export function createQueryLimits(limits: QueryLimits, options: { exposeLimits: boolean }): QueryLimitOptions {
  // graphql-armor reports through the validation context, so Apollo answers 400 like any other
  // validation error; its own reporter would prefix "Syntax Error: " and use code BAD_USER_INPUT.
  const report = (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, "")));
  };
  const common = {
    exposeLimits: options.exposeLimits,
    errorMessage: QUERY_TOO_COMPLEX_MESSAGE,
    propagateOnRejection: false,
    onReject: [report],
  };
  const armor = new ApolloArmor({
    maxDepth: { ...common, n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    // Every alias counts: armor's default exempts `__typename`, which would let 600 of those through.
    maxAliases: { ...common, n: limits.maxAliases, allowList: [] },
    maxDirectives: { ...common, n: limits.maxDirectives },
    costLimit: { ...common, maxCost: limits.maxCost, ignoreIntrospection: true, flattenFragments: true },
    maxTokens: { enabled: false },
    // Apollo's hideSchemaDetailsFromClientErrors already drops "Did you mean" in production, and in
    // development the suggestions help.
    blockFieldSuggestion: { enabled: false },
  });
  // With the two plugin-based protections off, armor's protection is validation rules only.
  const { validationRules } = armor.protect();
  return { parseOptions: { maxTokens: limits.maxTokens }, validationRules };
}
