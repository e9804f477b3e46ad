import type { ApolloServerPlugin } from "@apollo/server";
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  parse,
  type ParseOptions,
  specifiedRules,
  validate,
  type ValidationRule,
} from "graphql";

import type { Context } from "../access/principal.js";
import type { Config } from "../config.js";
import { isDatabaseUnavailable } from "../db/unavailable.js";
import { ProtocolErrorCode } from "../errors.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { createErrorFormatter } from "./format-error.js";
import type { CostInput } from "./query-cost.js";
import { checkOperationCost, createQueryLimits, type FixedCost, type QueryLimitOptions } from "./query-limits.js";
import { singleAuthFieldRule } from "./single-auth-field.rule.js";

/** Apollo's `formatError`: a formatted error (and the error it came from) as the client sees it. */
export type FormatError = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

/**
 * What every transport checks an operation with before it runs and how it words the errors after,
 * built once from the config. Apollo Server (graphql/apollo.ts) takes the options; a transport that
 * runs graphql-js itself (the WebSocket server, http/ws/) takes `parse` and `validate`, which are
 * Apollo's own steps over the same options, with Apollo's codes.
 */
export interface OperationRules {
  /** With development's messages (`!isProduction`): a refusal names the limit and what was found. */
  readonly exposeLimits: boolean;
  /** graphql-js's parser options: QUERY_MAX_TOKENS, so an oversized document costs no more than the limit to refuse. */
  readonly parseOptions: ParseOptions;
  /**
   * The rules beyond graphql-js's `specifiedRules` (which Apollo adds itself): depth, aliases and
   * directives (graphql-armor) and at most one credential mutation per operation. Apollo's own
   * `NoIntrospection` (with `introspection: false`) stays Apollo's: introspection is a query, and
   * no other transport runs queries.
   */
  readonly validationRules: readonly ValidationRule[];
  /**
   * Apollo plugin: counts the token limit, checks the cost (QUERY_MAX_COST) with the variables at
   * hand, and holds it in QUERY_MAX_COST_IN_FLIGHT while the operation runs. HTTP's only: a
   * subscription's cost is checked against its own limit, and its events are bounded by
   * SUBSCRIPTION_DELIVERY_CONCURRENCY instead.
   */
  readonly plugin: ApolloServerPlugin<Context>;
  /** The plugin's cost check and in-flight budget, for the compiled lane (query-limits.ts). */
  readonly cost: Pick<QueryLimitOptions, "costOf" | "inFlight">;
  /**
   * Throws the query-limit refusal (GRAPHQL_VALIDATION_FAILED) when the operation costs more than
   * `maxCost`; `known` is its cost when priced before (a trusted document's `fixedCosts`).
   */
  checkCost(input: CostInput, maxCost: number, known?: number): number;
  /** The error formatter of every transport; `report` logs each error it masks. */
  formatError(report: (error: unknown) => void): FormatError;
  /** Apollo's parse step: the document, or why it does not parse (GRAPHQL_PARSE_FAILED). */
  parse(query: string): DocumentNode | GraphQLError;
  /** Apollo's validation step: `specifiedRules` and {@link validationRules}, each error GRAPHQL_VALIDATION_FAILED. */
  validate(schema: GraphQLSchema, document: DocumentNode): readonly GraphQLError[];
}

/**
 * The operation rules of `config`: its query limits (`config.queryLimits`), the credential rule and
 * the error formatting, with refusals counted in `metrics` (default: nowhere). Production hides the
 * limits' numbers and masks unknown errors without their message. `fixedCost` gives the plugin the
 * costs recorded for trusted documents at load (default: every operation is priced).
 */
export function createOperationRules(
  config: Config,
  metrics: MetricsRecorder = NO_METRICS,
  fixedCost?: FixedCost,
): OperationRules {
  const exposeLimits = !config.isProduction;
  const limits = createQueryLimits(config.queryLimits, { exposeLimits, metrics, fixedCost });
  const validationRules: readonly ValidationRule[] = [...limits.validationRules, singleAuthFieldRule];
  const { parseOptions } = limits;
  return {
    exposeLimits,
    parseOptions,
    validationRules,
    plugin: limits.plugin,
    cost: { costOf: limits.costOf, inFlight: limits.inFlight },
    checkCost: (input, maxCost, known) => checkOperationCost(input, maxCost, { exposeLimits }, known),
    formatError: (report) =>
      createErrorFormatter({ revealInternals: !config.isProduction, report, isUnavailable: isDatabaseUnavailable }),
    parse: (query) => parseLikeApollo(query, parseOptions),
    validate: (schema, document) => validateLikeApollo(schema, document, validationRules),
  };
}

// Apollo's SyntaxError: the parser's error with GRAPHQL_PARSE_FAILED (the formatter renames the token limit's).
function parseLikeApollo(query: string, options: ParseOptions): DocumentNode | GraphQLError {
  try {
    return parse(query, options);
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    return new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      extensions: { code: ProtocolErrorCode.GRAPHQL_PARSE_FAILED },
    });
  }
}

// Apollo's ValidationError: each rule's error, its extensions kept, with GRAPHQL_VALIDATION_FAILED.
function validateLikeApollo(
  schema: GraphQLSchema,
  document: DocumentNode,
  rules: readonly ValidationRule[],
): readonly GraphQLError[] {
  return validate(schema, document, [...specifiedRules, ...rules]).map(
    (error) =>
      new GraphQLError(error.message, {
        nodes: error.nodes,
        extensions: { ...error.extensions, code: ProtocolErrorCode.GRAPHQL_VALIDATION_FAILED },
      }),
  );
}
