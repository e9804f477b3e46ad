// What a request may be before anything parses it: the bytes of its body (413), the bytes of all
// bodies arriving at once (503), and the nesting of its JSON (400). One place for the node:http
// GraphQL route, Fastify's JSON parser (its other routes) and GET /graphql's `variables` and
// `extensions`, so that each refusal reads, and is counted, the same way wherever it happens.
import { ErrorCode, ProtocolErrorCode } from "../errors.js";
import type { LimitName, MetricsRecorder } from "../metrics.js";
import { EDGE_MESSAGES, type HttpError } from "./error-body.js";
import { JSON_MAX_NESTING, jsonNestingExceeds } from "./json-nesting.js";

/** Largest request body accepted; larger ones get 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** A request refused before parsing: the answer (error-body.ts), and the limit it hit. */
export interface Refusal extends HttpError {
  readonly limit: LimitName;
}

const TOO_LARGE: Refusal = Object.freeze({
  status: 413,
  message: EDGE_MESSAGES.bodyTooLarge(BODY_LIMIT_BYTES),
  code: ProtocolErrorCode.PAYLOAD_TOO_LARGE,
  limit: "BODY_LIMIT_BYTES",
});

const TOO_DEEP: Refusal = Object.freeze({
  status: 400,
  message: EDGE_MESSAGES.nestsTooDeep(JSON_MAX_NESTING),
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
    // A repeated parameter may come as an array (Apollo refuses repeats, but after this scan).
    const given = (params as Record<string, unknown>)[name];
    for (const value of Array.isArray(given) ? (given as unknown[]) : [given]) {
      const refusal = typeof value === "string" ? refuseDeepJson(value, metrics) : undefined;
      if (refusal) return refusal;
    }
  }
  return undefined;
}

/**
 * The first bytes of every body, which never wait on {@link BodyBudget}: any GraphQL request a
 * client sends in earnest fits, and the connection cap bounds them (1,500 × 64 KB = 96 MB).
 */
export const FREE_BODY_BYTES = 64 * 1024;

/** Seconds a client is told to wait when the bodies in flight fill the budget. */
const BUSY_RETRY_AFTER_SECONDS = 1;

const TOO_MANY_BODIES: Refusal = Object.freeze({
  status: 503,
  message: EDGE_MESSAGES.tooManyBodies,
  code: ErrorCode.SERVICE_UNAVAILABLE,
  limit: "HTTP_MAX_BODY_BYTES_IN_FLIGHT",
  headers: { "retry-after": String(BUSY_RETRY_AFTER_SECONDS) },
  extensions: { retryAfter: BUSY_RETRY_AFTER_SECONDS },
});

/** One request's share of the {@link BodyBudget}. */
export interface BodyAllowance {
  /** Counts `bytes` more of the body: undefined while they fit, else the 503 (counted; nothing is kept). */
  add: (bytes: number) => Refusal | undefined;
  /** Gives back what the body held; call it once the body is parsed or dropped. Idempotent. */
  release: () => void;
}

/**
 * The bytes of request bodies held at once while they arrive (in buffers outside the JavaScript
 * heap, until each is parsed), over every connection: past {@link FREE_BODY_BYTES} of a body, each
 * byte counts against `maxBytes`, and a body that does not fit is refused with 503 and Retry-After.
 * Without it, connections each sending a 1 MB body and stalling before its last byte held 1 MB
 * each for the whole request timeout (300 of them grew the process by 300 MB). Small requests,
 * a bystander's included, never wait on it.
 */
export function createBodyBudget(maxBytes: number, metrics: MetricsRecorder): { open: () => BodyAllowance } {
  let held = 0;
  return {
    open() {
      let received = 0;
      let charged = 0;
      const release = () => {
        held -= charged;
        charged = 0;
      };
      return {
        add(bytes) {
          received += bytes;
          const charge = Math.max(0, received - FREE_BODY_BYTES) - charged;
          if (charge === 0) return undefined;
          if (held + charge > maxBytes) {
            release();
            metrics.limitReached(TOO_MANY_BODIES.limit);
            return TOO_MANY_BODIES;
          }
          held += charge;
          charged += charge;
          return undefined;
        },
        release,
      };
    },
  };
}
