import type { ApolloServerPlugin, GraphQLRequestListener } from "@apollo/server";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";

import {
  ErrorCode,
  type FieldProblem,
  INTERNAL_ERROR_MESSAGE,
  ProtocolErrorCode,
  QUERY_TOO_COMPLEX_MESSAGE,
  SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS,
  ServiceUnavailableError,
} from "../errors.js";
import { GRAPHQL_MESSAGES } from "../library-messages.js";

// How errors reach clients: Apollo's formatError, the reporter that logs what it masks, and the
// 503 for a response that is only SERVICE_UNAVAILABLE. The catalogue itself is ../errors.ts.
/**
 * Apollo plugin: a response whose only errors are SERVICE_UNAVAILABLE and that has no data at all
 * (nothing ran, or everything that ran was nulled) becomes HTTP 503 with `Retry-After`, so load
 * balancers, retrying HTTP clients and monitoring see an outage rather than a 200.
 */
export const serviceUnavailableStatus: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async willSendResponse({ response }) {
        if (response.body.kind !== "single") return;
        if (!onlyUnavailable(response.body.singleResult)) return;
        response.http.status = 503;
        response.http.headers.set("retry-after", String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
      },
    };
  },
};

/**
 * Whether a formatted result is only SERVICE_UNAVAILABLE, without data: the plugin's test above, and
 * the compiled lane's (compiled-lane-answer.ts), which then answers 503 with `Retry-After` the same.
 */
export function onlyUnavailable(result: {
  readonly data?: unknown;
  readonly errors?: readonly GraphQLFormattedError[];
}): boolean {
  const { data, errors } = result;
  if (data != null || !errors?.length) return false;
  return errors.every((error) => error.extensions?.code === ErrorCode.SERVICE_UNAVAILABLE);
}

// graphql-js's messages this module reads (the parser's token limit, "Did you mean …?", variable
// and argument coercion), each tested against the real library in library-messages.ts.
const { tokenLimit: TOKEN_LIMIT, didYouMean: SUGGESTION, argumentProblem: ARGUMENT_PROBLEM } = GRAPHQL_MESSAGES;

/**
 * graphql-js puts the whole offending variable value in coercion messages
 * (`Variable "$input" got invalid value { username: "x", password: "…" }; Field "usernme" is not
 * defined…`). That value may hold a password, so only the part after the last "; " is kept: it
 * comes after the value, so nothing of the value survives.
 */
export function withoutVariableValue(message: string): string {
  const match = GRAPHQL_MESSAGES.variableInvalidValue.exec(message);
  if (!match) return message;
  const separator = GRAPHQL_MESSAGES.variableValueSeparator;
  const cut = message.lastIndexOf(separator);
  return cut < 0 ? `${match[1]}.` : `${match[1]}; ${message.slice(cut + separator.length)}`;
}

const KNOWN_CODES = new Set<string>([...Object.values(ErrorCode), ...Object.values(ProtocolErrorCode)]);

/**
 * The code for an error that arrived without one but is the client's doing: graphql-js refusing an
 * argument value or giving up on too many bad variable values (BAD_USER_INPUT, with `fields` like our
 * own validation where it names an argument), or Apollo refusing a request with a 4xx status (its
 * persisted-query hash check, for one), which is BAD_REQUEST.
 *
 * ARGUMENT_PROBLEM is graphql-js's own argument check at execution time (getArgumentValues):
 * validation lets a nullable variable into a non-null argument that has a default (`posts(first: $n)`
 * with `$n: Int`), so an explicit `null` is only caught there, as a GraphQLError without a code that
 * would otherwise be masked as INTERNAL_SERVER_ERROR. `variableErrorLimit` is the error graphql-js
 * adds when it stops coercing variables after 50 failures, with no code and no node (so Apollo does
 * not see a coercion error in it); 10,000 wrong list items would reach it.
 */
function clientErrorWithoutCode(
  error: unknown,
): { code: ErrorCode | typeof ProtocolErrorCode.BAD_REQUEST; extensions?: Record<string, unknown> } | undefined {
  if (!(error instanceof GraphQLError)) return undefined;
  const original = error.originalError;
  if (
    original instanceof GraphQLError &&
    original.originalError === undefined &&
    original.extensions.code === undefined
  ) {
    const argument = ARGUMENT_PROBLEM.exec(original.message);
    if (argument) {
      const problem = argument[2]!;
      const message = problem.endsWith("must not be null")
        ? "must not be null"
        : problem.endsWith("was not provided")
          ? "is required"
          : "has an invalid value";
      const fields: FieldProblem[] = [{ field: argument[1]!, rule: "type", message }];
      return { code: ErrorCode.BAD_USER_INPUT, extensions: { fields } };
    }
  }
  if (
    error.extensions.code === undefined &&
    original === undefined &&
    error.message === GRAPHQL_MESSAGES.variableErrorLimit
  ) {
    return { code: ErrorCode.BAD_USER_INPUT };
  }
  const status = (error.extensions.http as { status?: unknown } | undefined)?.status;
  if (
    error.extensions.code === undefined &&
    original === undefined &&
    typeof status === "number" &&
    status >= 400 &&
    status < 500
  ) {
    return { code: ProtocolErrorCode.BAD_REQUEST };
  }
  return undefined;
}

/**
 * Apollo Server's `formatError`. Errors that carry one of our codes (or Apollo's protocol codes)
 * keep their message and extensions, without a stack trace: they are expected outcomes. Everything
 * else (a driver error, a bug, a library's message) is reported through `report` and becomes a plain
 * INTERNAL_SERVER_ERROR; only with `revealInternals` (development) do its message and stack show.
 * Without `revealInternals`, "Did you mean …?" suggestions are also cut from every message.
 * The parser's token-limit error becomes `GRAPHQL_VALIDATION_FAILED` like the other query limits,
 * saying {@link QUERY_TOO_COMPLEX_MESSAGE} without `revealInternals`. Errors that come without a
 * code but are the client's doing (an argument graphql-js refuses at execution, a request Apollo
 * refuses with a 4xx status) get BAD_USER_INPUT or BAD_REQUEST instead of being masked and logged.
 */
export function createErrorFormatter(options: {
  revealInternals: boolean;
  report: (error: unknown) => void;
  /** Whether an unexpected error means a dependency did not answer: SERVICE_UNAVAILABLE, not masked. */
  isUnavailable?: (error: unknown) => boolean;
}) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    if (code !== ErrorCode.SERVICE_UNAVAILABLE && options.isUnavailable?.(error)) {
      // Already logged once per outage by the database module; a line per request would flood.
      const unavailable = new ServiceUnavailableError();
      return {
        message: unavailable.message,
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { ...unavailable.extensions },
      };
    }
    const tokenLimit = code === ProtocolErrorCode.GRAPHQL_PARSE_FAILED ? TOKEN_LIMIT.exec(formatted.message) : null;
    if (tokenLimit) {
      // A query limit like the others, so the same code; no location, which would show where the
      // parser stopped and so the limit.
      return {
        message: options.revealInternals ? `Token limit of ${tokenLimit[1]} exceeded.` : QUERY_TOO_COMPLEX_MESSAGE,
        extensions: { code: ProtocolErrorCode.GRAPHQL_VALIDATION_FAILED },
      };
    }
    const clientError = clientErrorWithoutCode(error);
    if (clientError) {
      const message = withoutVariableValue(
        options.revealInternals ? formatted.message : formatted.message.replace(SUGGESTION, ""),
      );
      return { ...formatted, message, extensions: { code: clientError.code, ...clientError.extensions } };
    }
    if (typeof code === "string" && KNOWN_CODES.has(code) && code !== (ErrorCode.INTERNAL_SERVER_ERROR as string)) {
      const { http: _http, stacktrace: _stacktrace, ...extensions } = formatted.extensions as Record<string, unknown>;
      // Apollo's hideSchemaDetailsFromClientErrors strips these from validation errors only; variable
      // coercion errors (BAD_USER_INPUT) would still reveal input field and enum value names.
      const message = withoutVariableValue(
        options.revealInternals ? formatted.message : formatted.message.replace(SUGGESTION, ""),
      );
      return { ...formatted, message, extensions };
    }
    options.report(error);
    return {
      message: options.revealInternals ? formatted.message : INTERNAL_ERROR_MESSAGE,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: {
        code: ErrorCode.INTERNAL_SERVER_ERROR,
        ...(options.revealInternals && formatted.extensions?.stacktrace
          ? { stacktrace: formatted.extensions.stacktrace }
          : {}),
      },
    };
  };
}

/**
 * Logs the errors {@link createErrorFormatter} masks, with the id of the request they happened in.
 * Apollo gives `formatError` no context, so `plugin` notes each error's request id when Apollo
 * reports the operation's errors to plugins, which it does just before formatting them, with the
 * same error objects. An error from outside any operation (the context function) has no entry and
 * is logged without an id.
 */
export function createErrorReporter(logger: Logger) {
  const requestIdOf = new WeakMap<object, string>();
  const note = (errors: readonly object[], requestId: string): void => {
    for (const error of errors) requestIdOf.set(error, requestId);
  };
  const listener: GraphQLRequestListener<{ requestId: string }> = {
    async didEncounterErrors({ errors, contextValue }) {
      note(errors, contextValue.requestId);
    },
  };
  return {
    /** Notes the request each error happened in, before formatting (the plugin's step, and the compiled lane's). */
    note,
    plugin: { requestDidStart: async () => listener } satisfies ApolloServerPlugin<{ requestId: string }>,
    report: (error: unknown): void => {
      const requestId = typeof error === "object" && error !== null ? requestIdOf.get(error) : undefined;
      (requestId === undefined ? logger : logger.child({ reqId: requestId })).error({ err: error }, "unexpected error");
    },
  };
}
