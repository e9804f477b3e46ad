import type { ApolloServerPlugin, GraphQLRequestListener } from "@apollo/server";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";

/**
 * Every `extensions.code` this service produces itself. Clients switch on these; the README's
 * error table is checked against this object by a test.
 */
export const ErrorCode = {
  UNAUTHENTICATED: "UNAUTHENTICATED",
  FORBIDDEN: "FORBIDDEN",
  BAD_USER_INPUT: "BAD_USER_INPUT",
  NOT_FOUND: "NOT_FOUND",
  FRESH_TOKEN_REQUIRED: "FRESH_TOKEN_REQUIRED",
  RATE_LIMITED: "RATE_LIMITED",
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  INTERNAL_SERVER_ERROR: "INTERNAL_SERVER_ERROR",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Codes produced by the HTTP and GraphQL layers before any resolver runs (Apollo Server's own, plus
 * the two this service adds for bodies Fastify refuses). Documented next to {@link ErrorCode}.
 */
export const ProtocolErrorCode = {
  BAD_REQUEST: "BAD_REQUEST",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  GRAPHQL_PARSE_FAILED: "GRAPHQL_PARSE_FAILED",
  GRAPHQL_VALIDATION_FAILED: "GRAPHQL_VALIDATION_FAILED",
  PERSISTED_QUERY_NOT_FOUND: "PERSISTED_QUERY_NOT_FOUND",
  PERSISTED_QUERY_NOT_SUPPORTED: "PERSISTED_QUERY_NOT_SUPPORTED",
  OPERATION_RESOLUTION_FAILURE: "OPERATION_RESOLUTION_FAILURE",
} as const;

/** Base class: a GraphQL error whose code is always one of {@link ErrorCode}. */
export abstract class AppError extends GraphQLError {
  abstract readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions } });
  }
}

/** Not signed in where sign-in is required, or wrong credentials. HTTP 200. */
export class UnauthenticatedError extends AppError {
  readonly code = ErrorCode.UNAUTHENTICATED;
  constructor(message = "You must be signed in to do this.") {
    super(message, ErrorCode.UNAUTHENTICATED);
  }
}

/** The one message for an unknown username and a wrong password, so neither is revealed. */
export const INVALID_CREDENTIALS_MESSAGE = "Invalid username or password.";

/** The one message for every rejected access token, whatever the reason. */
export const INVALID_TOKEN_MESSAGE = "The access token is invalid or has expired.";

/**
 * A token was sent and is unusable: the whole request is refused with HTTP 401 and the
 * RFC 6750 `WWW-Authenticate` challenge, so HTTP-level clients know to refresh or sign in again.
 */
export class InvalidTokenError extends AppError {
  readonly code = ErrorCode.UNAUTHENTICATED;
  constructor() {
    super(INVALID_TOKEN_MESSAGE, ErrorCode.UNAUTHENTICATED, {
      http: { status: 401, headers: new Map([["www-authenticate", 'Bearer error="invalid_token"']]) },
    });
  }
}

/** Signed in but not allowed: a missing role or someone else's resource. HTTP 200. */
export class ForbiddenError extends AppError {
  readonly code = ErrorCode.FORBIDDEN;
  constructor(message = "You are not allowed to do this.") {
    super(message, ErrorCode.FORBIDDEN);
  }
}

/** One broken input rule: the argument path (`input.username`), the rule's name and a sentence. */
export interface FieldProblem {
  field: string;
  rule: string;
  message: string;
}

/** Input breaks a rule; `extensions.fields` lists every failing field and rule. HTTP 200. */
export class BadUserInputError extends AppError {
  readonly code = ErrorCode.BAD_USER_INPUT;
  readonly fields: readonly FieldProblem[];
  constructor(fields: readonly FieldProblem[]) {
    const summary = fields.map((f) => `${f.field} ${f.message}`).join("; ");
    super(`Invalid input: ${summary}.`, ErrorCode.BAD_USER_INPUT, { fields });
    this.fields = fields;
  }
}

/** The post or user named does not exist. HTTP 200. */
export class NotFoundError extends AppError {
  readonly code = ErrorCode.NOT_FOUND;
  constructor(what: "Post" | "User" | "Session", id: string) {
    super(`${what} ${JSON.stringify(id)} does not exist.`, ErrorCode.NOT_FOUND);
  }
}

/** A sensitive mutation needs a token minted by login or register, not by a refresh. HTTP 200. */
export class FreshTokenRequiredError extends AppError {
  readonly code = ErrorCode.FRESH_TOKEN_REQUIRED;
  constructor() {
    super("This action needs a fresh sign-in: log in again and retry with the new access token.", ErrorCode.FRESH_TOKEN_REQUIRED);
  }
}

/**
 * A limit was reached: too many failed logins, registrations from one address, or posts by one
 * user. `extensions.retryAfter` says how many seconds to wait. HTTP 200. `what` names the limit,
 * without a full stop (default "Too many failed attempts").
 */
export class RateLimitedError extends AppError {
  readonly code = ErrorCode.RATE_LIMITED;
  constructor(retryAfterSeconds: number, what = "Too many failed attempts") {
    super(`${what}. Try again in ${retryAfterSeconds} seconds.`, ErrorCode.RATE_LIMITED, {
      retryAfter: retryAfterSeconds,
    });
  }
}

/** What a client is told to wait before retrying after SERVICE_UNAVAILABLE (`Retry-After`, `retryAfter`). */
export const SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** The one message for a request that needed a database (or Redis) that did not answer in time. */
export const SERVICE_UNAVAILABLE_MESSAGE = "The service is temporarily unavailable: its database did not answer in time. Try again shortly.";

/**
 * A database or Redis the request needs did not answer within its timeout. HTTP 200 with the
 * field's error, or 503 with `Retry-After` when nothing ran ({@link serviceUnavailableStatus}).
 */
export class ServiceUnavailableError extends AppError {
  readonly code = ErrorCode.SERVICE_UNAVAILABLE;
  constructor() {
    super(SERVICE_UNAVAILABLE_MESSAGE, ErrorCode.SERVICE_UNAVAILABLE, { retryAfter: SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS });
  }
}

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
        const { data, errors } = response.body.singleResult;
        if (data != null || !errors?.length) return;
        if (!errors.every((error) => error.extensions?.code === ErrorCode.SERVICE_UNAVAILABLE)) return;
        response.http.status = 503;
        response.http.headers.set("retry-after", String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
      },
    };
  },
};

/**
 * The one message for an operation refused by a query limit (depth, aliases, directives, tokens,
 * cost) in production: which limit, and its value, stay private so they cannot be probed.
 */
export const QUERY_TOO_COMPLEX_MESSAGE = "Query is too complex.";

// graphql-js's syntax error when the parser's maxTokens stops it (see query-limits.ts).
// graphql 16 spells it "more that"; later versions may fix the typo.
const TOKEN_LIMIT = /^Syntax Error: Document contains more tha[nt] (\d+) tokens\. Parsing aborted\.$/;

/** graphql-js's "Did you mean …?" ending, as matched by Apollo's own suggestion hiding. */
const SUGGESTION = / ?Did you mean(.+?)\?$/;

/**
 * graphql-js puts the whole offending variable value in coercion messages
 * (`Variable "$input" got invalid value { username: "x", password: "…" }; Field "usernme" is not
 * defined…`). That value may hold a password, so only the part after the last "; " is kept: it
 * comes after the value, so nothing of the value survives.
 */
export function withoutVariableValue(message: string): string {
  const match = /^(Variable "\$[^"]+" got invalid value)/.exec(message);
  if (!match) return message;
  const cut = message.lastIndexOf("; ");
  return cut < 0 ? `${match[1]}.` : `${match[1]}; ${message.slice(cut + 2)}`;
}

const KNOWN_CODES = new Set<string>([...Object.values(ErrorCode), ...Object.values(ProtocolErrorCode)]);

// graphql-js's own argument checks at execution time (getArgumentValues). Validation lets a nullable
// variable into a non-null argument that has a default (`posts(first: $n)` with `$n: Int`), so an
// explicit `null` is only caught here, as a GraphQLError without a code that would otherwise be
// masked as INTERNAL_SERVER_ERROR.
const ARGUMENT_PROBLEM = /^Argument "([^"]+)" (of non-null type "[^"]+" must not be null|of required type "[^"]+" was not provided|has invalid value .*)\.$/s;

// graphql-js stops coercing variables after 50 errors and adds this one, with no code and no node
// (so Apollo does not recognise it as a coercion error); 10,000 wrong list items would reach it.
const VARIABLE_ERROR_LIMIT = "Too many errors processing variables, error limit reached. Execution aborted.";

/**
 * The code for an error that arrived without one but is the client's doing: graphql-js refusing an
 * argument value or giving up on too many bad variable values (BAD_USER_INPUT, with `fields` like our
 * own validation where it names an argument), or Apollo refusing a request with a 4xx status (its
 * persisted-query hash check, for one), which is BAD_REQUEST.
 */
function clientErrorWithoutCode(error: unknown): { code: ErrorCode | typeof ProtocolErrorCode.BAD_REQUEST; extensions?: Record<string, unknown> } | undefined {
  if (!(error instanceof GraphQLError)) return undefined;
  const original = error.originalError;
  if (original instanceof GraphQLError && original.originalError === undefined && original.extensions.code === undefined) {
    const argument = ARGUMENT_PROBLEM.exec(original.message);
    if (argument) {
      const problem = argument[2]!;
      const message = problem.endsWith("must not be null") ? "must not be null" : problem.endsWith("was not provided") ? "is required" : "has an invalid value";
      const fields: FieldProblem[] = [{ field: argument[1]!, rule: "type", message }];
      return { code: ErrorCode.BAD_USER_INPUT, extensions: { fields } };
    }
  }
  if (error.extensions.code === undefined && original === undefined && error.message === VARIABLE_ERROR_LIMIT) {
    return { code: ErrorCode.BAD_USER_INPUT };
  }
  const status = (error.extensions.http as { status?: unknown } | undefined)?.status;
  if (error.extensions.code === undefined && original === undefined && typeof status === "number" && status >= 400 && status < 500) {
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
      const message = withoutVariableValue(options.revealInternals ? formatted.message : formatted.message.replace(SUGGESTION, ""));
      return { ...formatted, message, extensions: { code: clientError.code, ...clientError.extensions } };
    }
    if (typeof code === "string" && KNOWN_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      const { http: _http, stacktrace: _stacktrace, ...extensions } = formatted.extensions as Record<string, unknown>;
      // Apollo's hideSchemaDetailsFromClientErrors strips these from validation errors only; variable
      // coercion errors (BAD_USER_INPUT) would still reveal input field and enum value names.
      const message = withoutVariableValue(options.revealInternals ? formatted.message : formatted.message.replace(SUGGESTION, ""));
      return { ...formatted, message, extensions };
    }
    options.report(error);
    return {
      message: options.revealInternals ? formatted.message : "Internal server error.",
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: {
        code: ErrorCode.INTERNAL_SERVER_ERROR,
        ...(options.revealInternals && formatted.extensions?.stacktrace ? { stacktrace: formatted.extensions.stacktrace } : {}),
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
  const listener: GraphQLRequestListener<{ requestId: string }> = {
    async didEncounterErrors({ errors, contextValue }) {
      for (const error of errors) requestIdOf.set(error, contextValue.requestId);
    },
  };
  return {
    plugin: { requestDidStart: async () => listener } satisfies ApolloServerPlugin<{ requestId: string }>,
    report(error: unknown): void {
      const requestId = typeof error === "object" && error !== null ? requestIdOf.get(error) : undefined;
      (requestId === undefined ? logger : logger.child({ reqId: requestId })).error({ err: error }, "unexpected error");
    },
  };
}
