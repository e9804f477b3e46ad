// The compiled lane's answer (compiled-lane.ts): an execution's result made into exactly the
// response Apollo Server 5 makes of it, step by step as @apollo/server's dist/esm files do.
import { type ExecutionResult, GraphQLError, type GraphQLFormattedError } from "graphql";

import type { Context } from "../access/principal.js";
import { SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS } from "../errors.js";
import type { MetricsRecorder } from "../metrics.js";
import type { GraphqlShared } from "./apollo.js";
import { MEDIA_TYPES } from "./compiled-lane-request.js";
import { onlyUnavailable } from "./format-error.js";
import { countPageLimits } from "./operation-metrics.js";

/** A whole response: status, headers (lower-case names), body. */
export interface LaneAnswer {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** Apollo's HTTPGraphQLHead: a status when one was set, and headers. */
interface Head {
  status?: number;
  readonly headers: Map<string, string>;
}

/**
 * graphql-js's error for what graphql-jit reports: the same message, path and locations, the
 * original error as graphql-js's locatedError keeps it (so `extensions` are the original's), and
 * for a null in a non-null field (graphql-jit keeps no original) the plain Error graphql-js throws.
 */
export function asGraphqlJsError(error: GraphQLError): GraphQLError {
  const original = error.originalError ?? new Error(error.message);
  const converted = new GraphQLError(error.message, { path: error.path, originalError: original });
  if (error.locations) {
    Object.defineProperty(converted, "locations", {
      value: error.locations,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return converted;
}

/**
 * Apollo's normalizeAndFormatErrors (errorNormalize.js): each error enriched (a code, INTERNAL_SERVER_ERROR
 * by default; `extensions.http` taken into the head; the stack with `includeStacktrace`), then
 * `formatError(enriched, original)`; a formatter that throws gives Apollo's fallback.
 */
export function normalizeAndFormatErrors(
  errors: readonly unknown[],
  shared: Pick<GraphqlShared, "formatError" | "includeStacktrace">,
): { formatted: GraphQLFormattedError[]; head: Head } {
  const head: Head = { headers: new Map() };
  const enrich = (maybeError: unknown): GraphQLFormattedError => {
    const error = ensureGraphQLError(maybeError);
    const extensions: Record<string, unknown> = {
      ...error.extensions,
      code: error.extensions.code ?? "INTERNAL_SERVER_ERROR",
    };
    if (isPartialHead(extensions.http)) {
      if (extensions.http.status) head.status = extensions.http.status;
      for (const [name, value] of extensions.http.headers ?? []) head.headers.set(name, value);
      delete extensions.http;
    }
    if (shared.includeStacktrace) extensions.stacktrace = error.stack?.split("\n");
    return { ...error.toJSON(), extensions };
  };
  const formatted = errors.map((error) => {
    try {
      return shared.formatError(enrich(error), error);
    } catch (formattingError) {
      if (shared.includeStacktrace) return enrich(formattingError);
      return { message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR" } };
    }
  });
  return { formatted, head };
}

// errorNormalize.js's ensureError and ensureGraphQLError.
function ensureGraphQLError(maybeError: unknown): GraphQLError {
  const error =
    maybeError instanceof Error ? maybeError : new GraphQLError(`Unexpected error value: ${String(maybeError)}`);
  return error instanceof GraphQLError ? error : new GraphQLError(error.message, { originalError: error });
}

function isPartialHead(value: unknown): value is { status?: number; headers?: Map<string, string> } {
  return (
    !!value &&
    typeof value === "object" &&
    (!("status" in value) || typeof value.status === "number") &&
    (!("headers" in value) || value.headers instanceof Map)
  );
}

/** What an answer is made from besides the result. */
export interface AnswerInput {
  readonly shared: GraphqlShared;
  readonly metrics: MetricsRecorder;
  readonly context: Context;
  /** The content-type negotiated for a single result (compiled-lane-request.ts). */
  readonly mediaType: string;
  /** performance.now() when the operation started, for its latency. */
  readonly started: number;
  /** Gives back the operation's cost in QUERY_MAX_COST_IN_FLIGHT. */
  readonly release: () => void;
}

/**
 * The response Apollo makes of an executed query's `result` (graphql-js errors): requestPipeline.js's
 * didEncounterErrors (page limits counted, each error's request noted for the reporter), the errors
 * normalised and formatted with their HTTP head, willSendResponse (the 503 and Retry-After of
 * serviceUnavailableStatus, the cost given back, the operation counted), then runHttpQuery.js's
 * content-type and `stringifyResult`, whose refusal (RESPONSE_TOO_LARGE) Apollo answers as an error
 * response (ApolloServer.js's errorResponse).
 */
export function answerOf(result: ExecutionResult, input: AnswerInput): LaneAnswer {
  const { shared, metrics } = input;
  const errors = result.errors;
  if (!errors && result.extensions === undefined) return answerWithoutErrors(result.data, input);
  if (errors) {
    countPageLimits(metrics, errors);
    shared.errorReporter.note(errors, input.context.requestId);
  }
  const { formatted, head } = errors
    ? normalizeAndFormatErrors(errors, shared)
    : { formatted: undefined, head: { headers: new Map<string, string>() } as Head };
  const single = { ...result, errors: formatted };
  if (onlyUnavailable(single)) {
    head.status = 503;
    head.headers.set("retry-after", String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
  }
  input.release();
  const failed = (errors?.length ?? 0) > 0;
  metrics.operation("query", failed ? "error" : "ok", (performance.now() - input.started) / 1000);
  if (!head.headers.has("content-type")) head.headers.set("content-type", input.mediaType);
  let body: string;
  try {
    body = shared.stringifyResult({ errors: single.errors, data: single.data, extensions: single.extensions });
  } catch (error) {
    return errorResponse(error, input);
  }
  return { status: head.status ?? 200, headers: head.headers, body };
}

/** The head of an answer without errors, one per media type: only its content-type. */
const HEADS_WITHOUT_ERRORS: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map(
  Object.values(MEDIA_TYPES).map((mediaType) => [mediaType, new Map([["content-type", mediaType]])] as const),
);

/**
 * {@link answerOf} for a result with data and no errors or extensions, which needs nothing of the
 * error path: no errors to count, note or format, never a 503, a head that is only its content-type.
 */
function answerWithoutErrors(data: ExecutionResult["data"], input: AnswerInput): LaneAnswer {
  const { shared, metrics } = input;
  input.release();
  metrics.operation("query", "ok", (performance.now() - input.started) / 1000);
  let body: string;
  try {
    body = shared.stringifyResult({ errors: undefined, data, extensions: undefined });
  } catch (error) {
    return errorResponse(error, input);
  }
  const headers = HEADS_WITHOUT_ERRORS.get(input.mediaType) ?? new Map([["content-type", input.mediaType]]);
  return { status: 200, headers, body };
}

/** ApolloServer.js's errorResponse: one error, formatted, 500 unless it says otherwise. */
function errorResponse(error: unknown, input: AnswerInput): LaneAnswer {
  const { formatted, head } = normalizeAndFormatErrors([error], input.shared);
  const headers = new Map(head.headers);
  headers.set("content-type", input.mediaType);
  return { status: head.status ?? 500, headers, body: input.shared.stringifyResult({ errors: formatted }) };
}
