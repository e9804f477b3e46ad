// What a request may be before anything parses it: the bytes of its body (413) and the nesting of
// its JSON (400). One place for both /graphql routes (node:http and Fastify's JSON parser) and for
// GET /graphql's `variables` and `extensions`, so that each refusal reads, and is counted, the same
// way wherever it happens.
import { ProtocolErrorCode } from "../errors.js";
import type { LimitName, MetricsRecorder } from "../metrics.js";
import { JSON_MAX_NESTING, jsonNestingExceeds } from "./json-nesting.js";

/** Largest request body accepted; larger ones get 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** A request refused before parsing: the status, message and code of its JSON error body, and the limit it hit. */
export interface Refusal {
  readonly status: number;
  readonly message: string;
  readonly code: string;
  readonly limit: LimitName;
}

const TOO_LARGE: Refusal = Object.freeze({
  status: 413,
  message: `Request body is larger than ${BODY_LIMIT_BYTES} bytes.`,
  code: ProtocolErrorCode.PAYLOAD_TOO_LARGE,
  limit: "BODY_LIMIT_BYTES",
});

const TOO_DEEP: Refusal = Object.freeze({
  status: 400,
  message: `The request's JSON nests deeper than ${JSON_MAX_NESTING} levels.`,
  code: ProtocolErrorCode.BAD_REQUEST,
  limit: "JSON_MAX_NESTING",
});

/** The 413 of a body over {@link BODY_LIMIT_BYTES}, counted. */
export function bodyTooLarge(metrics: MetricsRecorder): Refusal {
  metrics.limitReached(TOO_LARGE.limit);
  return TOO_LARGE;
}

/**
 * The 400 for a JSON body nested deeper than {@link JSON_MAX_NESTING} (counted), or undefined. A
 * byte scan of about a millisecond per megabyte, run before the parser, which would spend some 40
 * times as long building the nested arrays of a hostile body.
 */
export function refuseDeepJson(body: Buffer | string, metrics: MetricsRecorder): Refusal | undefined {
  if (!jsonNestingExceeds(body, JSON_MAX_NESTING)) return undefined;
  metrics.limitReached(TOO_DEEP.limit);
  return TOO_DEEP;
}

/**
 * The same for the JSON that a GET request carries in its `variables` and `extensions` parameters
 * (Apollo parses both); `params` as the query string gives them.
 */
export function refuseDeepJsonParameters(params: object, metrics: MetricsRecorder): Refusal | undefined {
  for (const name of ["variables", "extensions"] as const) {
    // Fastify's query parser gives a repeated parameter as an array.
    const given = (params as Record<string, unknown>)[name];
    for (const value of Array.isArray(given) ? (given as unknown[]) : [given]) {
      const refusal = typeof value === "string" ? refuseDeepJson(value, metrics) : undefined;
      if (refusal) return refusal;
    }
  }
  return undefined;
}
