// The answers the HTTP edge writes itself, before or instead of Apollo: their JSON body and every
// message, each written here once. The node:http GraphQL route, Fastify's error handler, the
// connection edges (timeouts, broken requests) and the limits of request-limits.ts all answer
// through this module, so that one refusal reads the same whichever way in it arrived by.
import { ErrorCode, INTERNAL_ERROR_MESSAGE, ProtocolErrorCode } from "../errors.js";

/** An answer of the edge: its status and headers, and the message and code of its one error. */
export interface HttpError {
  readonly status: number;
  readonly message: string;
  readonly code: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Beside `code` in the error's extensions. */
  readonly extensions?: Readonly<Record<string, unknown>>;
}

/** Every message of the edge; those that name a limit take its value. */
export const EDGE_MESSAGES = Object.freeze({
  notJson: "The request body is not valid JSON.",
  unreadable: "The request could not be read.",
  internal: INTERNAL_ERROR_MESSAGE,
  headersTooLarge: "The request's headers are too large.",
  bodyTooLarge: (bytes: number) => `Request body is larger than ${bytes} bytes.`,
  nestsTooDeep: (levels: number) => `The request's JSON nests deeper than ${levels} levels.`,
  notForm: "This endpoint takes an application/x-www-form-urlencoded body.",
  tooManyBodies: "The server is receiving too many large request bodies at once; retry shortly.",
  headersTimeout: (seconds: number) => `The request's headers did not arrive within ${seconds} s.`,
  requestTimeout: (seconds: number) => `The request did not arrive whole within ${seconds} s.`,
});

/** A body that says it is JSON and is not (or has a `__proto__` or `constructor` key). */
export const NOT_JSON: HttpError = Object.freeze({
  status: 400,
  message: EDGE_MESSAGES.notJson,
  code: ProtocolErrorCode.BAD_REQUEST,
});

/** A request that cannot be read as HTTP or as the body its content type names. */
export const UNREADABLE: HttpError = Object.freeze({
  status: 400,
  message: EDGE_MESSAGES.unreadable,
  code: ProtocolErrorCode.BAD_REQUEST,
});

/** A failure of our own; the details go to the log, never to the client. */
export const INTERNAL_ERROR: HttpError = Object.freeze({
  status: 500,
  message: EDGE_MESSAGES.internal,
  code: ErrorCode.INTERNAL_SERVER_ERROR,
});

/** The body of an edge answer, as Apollo writes a request error: `{ errors: [{ message, extensions: { code } }] }`. */
export function errorBody(error: Pick<HttpError, "message" | "code" | "extensions">) {
  return { errors: [{ message: error.message, extensions: { code: error.code, ...error.extensions } }] };
}

/** {@link errorBody} as the JSON text a response carries. */
export function errorJson(error: Pick<HttpError, "message" | "code" | "extensions">): string {
  return JSON.stringify(errorBody(error));
}
