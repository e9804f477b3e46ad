import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";

import type { Context } from "../access/principal.js";
import type { Config } from "../config.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { createErrorReporter, serviceUnavailableStatus } from "./format-error.js";
import { landingPagePlugin } from "./landing-page.js";
import { mfaGatePlugin } from "./mfa-gate.js";
import { operationMetricsPlugin } from "./operation-metrics.js";
import { createOperationRules, type FormatError, type OperationRules } from "./operation-rules.js";
import { createResultStringifier } from "./response-size.js";
import { subscriptionsOverHttpRefused } from "./subscriptions-over-http.js";
import { createTrustedDocumentStore, fixedCostOf } from "./trusted-document-store.js";
import type { TrustedDocuments } from "./trusted-documents.js";

/**
 * What Apollo Server and the compiled lane (compiled-lane.ts) answer with, built once per app: the
 * operation rules (with the cost plugin's check and its in-flight budget), the error reporter,
 * `formatError` and `stringifyResult`, so that the two share every function, never a copy.
 */
export interface GraphqlShared {
  readonly rules: OperationRules;
  readonly errorReporter: ReturnType<typeof createErrorReporter>;
  readonly formatError: FormatError;
  readonly stringifyResult: ReturnType<typeof createResultStringifier>;
  /** Apollo's includeStacktraceInErrorResponses: outside production. */
  readonly includeStacktrace: boolean;
}

/** The {@link GraphqlShared} of an app: `metrics` counts their refusals, `logger` gets the masked errors. */
export function createGraphqlShared(
  config: Config,
  logger: Logger,
  metrics: MetricsRecorder = NO_METRICS,
  trusted?: TrustedDocuments,
): GraphqlShared {
  const errorReporter = createErrorReporter(logger);
  const rules = createOperationRules(config, metrics, trusted && ((d, o) => fixedCostOf(trusted, d, o)));
  return {
    rules,
    errorReporter,
    formatError: rules.formatError(errorReporter.report),
    // An answer over RESPONSE_MAX_BYTES is never built: RESPONSE_TOO_LARGE instead.
    stringifyResult: createResultStringifier(config.responseMaxBytes, metrics),
    includeStacktrace: !config.isProduction,
  };
}

/**
 * Apollo Server for the schema, with what production changes (no introspection, no stack traces,
 * no schema details in errors, no landing page), the operation rules every transport shares (the
 * query limits, the credential rule, the error formatting: graphql/operation-rules.ts) and the
 * plugins, operations counted in `metrics` (default: nowhere). In development its landing page links
 * `explorerPath`, the offline explorer, for when Apollo's CDN cannot load (landing-page.ts). With
 * `trusted`, the listed documents come from the set checked at load, neither parsed, validated nor
 * (where no variable changes it) priced again (trusted-document-store.ts). Started, so it can be
 * handed to the HTTP server. `extra.shared` is what it answers with (default: built here), and
 * `extra.plugins` come after its own (the compiled lane's registration).
 */
export async function createApolloServer(
  schema: GraphQLSchema,
  config: Config,
  logger: Logger,
  metrics: MetricsRecorder = NO_METRICS,
  explorerPath?: string,
  trusted?: TrustedDocuments,
  extra: { shared?: GraphqlShared; plugins?: readonly ApolloServerPlugin<Context>[] } = {},
): Promise<ApolloServer<Context>> {
  const shared = extra.shared ?? createGraphqlShared(config, logger, metrics, trusted);
  const { rules, errorReporter } = shared;
  const apollo = new ApolloServer<Context>({
    schema,
    introspection: !config.isProduction,
    includeStacktraceInErrorResponses: shared.includeStacktrace,
    hideSchemaDetailsFromClientErrors: config.isProduction,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    // No automatic persisted queries: a hash alone never runs a document that was only sent before
    // (anybody could register any document under its hash). The listed ones are TRUSTED_DOCUMENTS'.
    persistedQueries: false,
    documentStore: trusted && createTrustedDocumentStore(trusted),
    stringifyResult: shared.stringifyResult,
    // Depth, aliases, directives and tokens (and cost, in rules.plugin): refused with 400 before anything runs.
    parseOptions: rules.parseOptions,
    validationRules: [...rules.validationRules],
    // main.ts owns SIGTERM/SIGINT. Apollo's own handler would call stop() concurrently with the
    // onClose hook's, and Apollo 5 never resolves a second concurrent stop(): shutdown would hang.
    stopOnTerminationSignals: false,
    logger: logger.child({ component: "apollo" }),
    formatError: shared.formatError,
    plugins: [
      // No cache hints are used; the plugin would otherwise wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      operationMetricsPlugin(metrics),
      // A session that owes its second factor runs only MFA_PENDING_FIELDS (FORBIDDEN, MFA_REQUIRED).
      mfaGatePlugin(),
      rules.plugin,
      errorReporter.plugin,
      serviceUnavailableStatus,
      subscriptionsOverHttpRefused(),
      landingPagePlugin(config.isProduction, explorerPath),
      ...(extra.plugins ?? []),
    ],
  });
  await apollo.start();
  return apollo;
}
