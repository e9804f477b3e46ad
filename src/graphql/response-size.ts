import type { FormattedExecutionResult, GraphQLFormattedError } from "graphql";

import { ErrorCode, RESPONSE_TOO_LARGE_MESSAGE, ResponseTooLargeError } from "../errors.js";
import type { MetricsRecorder } from "../metrics.js";

/**
 * 4 MiB: twice a page of 100 posts with 20,000-character ASCII bodies (2 MB), and what the cost
 * cannot see stops here: characters of more than one byte (up to 3 in UTF-8), control characters
 * stored before they were refused (6 bytes each once escaped), emoji sequences that count as one
 * character, long aliases repeated in every item. The answer is measured before it is serialised,
 * so a refused one is never built. Measured with npm start's 96 MB heap (test/abuse/answer-size.test.ts
 * and its notes): 32 concurrent answers of 4 MB each held RSS near 150 MB (8 MiB answers: 370 MB).
 */
export const DEFAULT_RESPONSE_MAX_BYTES = 4 * 1024 * 1024;

// The size of one answer, measured before it is serialised: a query within the cost limit can still
// answer far more bytes than its cost suggests (text of multi-byte characters, control characters
// stored before they were refused, which JSON escapes as six bytes each, long aliases repeated in
// every item of a list), and JSON.stringify would build the whole string before anything could
// look at its length. The walk below counts the bytes without building anything and stops as soon
// as the count passes the limit; only an answer within it is handed to JSON.stringify.

// Printable ASCII without `"` and `\`: such a string is its own length in JSON, plus the quotes.
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** The UTF-8 bytes of `JSON.stringify(text)`, quotes and escapes included. */
function stringBytes(text: string): number {
  // A string of other characters is escaped once (transiently) to count it exactly: escapes,
  // lone surrogates (`\udxxx`) and multi-byte characters all come out as JSON.stringify writes them.
  return PLAIN.test(text) ? text.length + 2 : Buffer.byteLength(JSON.stringify(text));
}

/**
 * The UTF-8 bytes of `JSON.stringify(value)`, counted without building it, as JSON.stringify
 * would write it (`toJSON`, `undefined` and functions left out of objects and `null` in arrays,
 * non-finite numbers as `null`). Stops once the count passes `limit` (default: never) and returns
 * a number over `limit` then, not the whole size. For JSON-shaped values such as GraphQL answers,
 * which are never cyclic.
 */
export function jsonByteLength(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let total = 0;
  const visit = (item: unknown): void => {
    switch (typeof item) {
      case "string":
        total += stringBytes(item);
        return;
      case "number":
        total += Number.isFinite(item) ? String(item).length : 4;
        return;
      case "boolean":
        total += item ? 4 : 5;
        return;
      case "object":
        break;
      default:
        // undefined, functions and symbols: null in an array (objects skip them before this).
        total += 4;
        return;
    }
    if (item === null) {
      total += 4;
      return;
    }
    const toJSON = (item as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return visit(toJSON.call(item));
    if (Array.isArray(item)) {
      total += 2 + Math.max(0, item.length - 1);
      for (const element of item) {
        visit(element);
        if (total > limit) return;
      }
      return;
    }
    total += 2;
    let separator = 0;
    for (const key of Object.keys(item)) {
      const field = (item as Record<string, unknown>)[key];
      if (field === undefined || typeof field === "function" || typeof field === "symbol") continue;
      total += separator + stringBytes(key) + 1;
      separator = 1;
      visit(field);
      if (total > limit) return;
    }
  };
  visit(value);
  return total;
}

/**
 * Apollo Server's `stringifyResult` (its default is `JSON.stringify(value) + "\n"`): the same text
 * for an answer of at most `maxBytes` bytes; for a larger one nothing is built and
 * {@link ResponseTooLargeError} is thrown, which Apollo answers as an HTTP 400 with code
 * RESPONSE_TOO_LARGE, counted as `RESPONSE_MAX_BYTES` in `metrics`. A response without data (a
 * request error, our refusal among them) is never refused, so the refusal itself always goes out.
 * On an answer such as `{ me { id } }` the walk takes about as long as JSON.stringify (under 1 µs).
 */
export function createResultStringifier(
  maxBytes: number,
  metrics: Pick<MetricsRecorder, "limitReached">,
): (value: FormattedExecutionResult) => string {
  return (value) => {
    if (value.data !== undefined && jsonByteLength(value, maxBytes) + 1 > maxBytes) {
      metrics.limitReached("RESPONSE_MAX_BYTES");
      throw new ResponseTooLargeError();
    }
    return `${JSON.stringify(value)}\n`;
  };
}

/** The error a WebSocket event too large to send is replaced with, formatted as graphql-ws sends it. */
const EVENT_TOO_LARGE: GraphQLFormattedError = Object.freeze({
  message: RESPONSE_TOO_LARGE_MESSAGE,
  extensions: Object.freeze({ code: ErrorCode.RESPONSE_TOO_LARGE }),
});

/**
 * For graphql-ws's `onNext`: the event's result as it is when its JSON takes at most `maxBytes`,
 * otherwise only a RESPONSE_TOO_LARGE error in its place (counted as `RESPONSE_MAX_BYTES`), so the
 * subscriber learns that it missed an event and the subscription goes on with the next one.
 */
export function limitEventSize<T extends FormattedExecutionResult>(
  result: T,
  maxBytes: number,
  metrics: Pick<MetricsRecorder, "limitReached">,
): T | FormattedExecutionResult {
  if (jsonByteLength(result, maxBytes) <= maxBytes) return result;
  metrics.limitReached("RESPONSE_MAX_BYTES");
  return { errors: [EVENT_TOO_LARGE] };
}
