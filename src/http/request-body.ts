// A request body on node:http, read within the limits of request-limits.ts and parsed as Fastify's
// parsers parse one: JSON for `application/json`, the text for anything else.
import type { IncomingMessage } from "node:http";

import secureJson from "secure-json-parse";

import type { MetricsRecorder } from "../metrics.js";
import { type HttpError, NOT_JSON, UNREADABLE } from "./error-body.js";
import { type BodyAllowance, bodyTooLarge, refuseDeepJson } from "./request-limits.js";

/** What readBody gives when the connection closed before the body was complete. */
export const ABORTED = Symbol("aborted");

/**
 * Reads a body, up to `limit` bytes, counting them in `allowance`: its bytes (still counted: the
 * caller releases them once parsed), undefined for none, a 413 or 503 (counted, released), or
 * ABORTED (released).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  metrics: MetricsRecorder,
  allowance: BodyAllowance,
): Promise<Buffer | undefined | HttpError | typeof ABORTED> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    return Promise.resolve(bodyTooLarge(metrics));
  }
  if (req.headers["transfer-encoding"] === undefined && (declared === undefined || declared === "0")) {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      const refusal = length > limit ? bodyTooLarge(metrics) : allowance.add(chunk.length);
      if (refusal) {
        // The rest of the body is read and dropped, never kept.
        allowance.release();
        req.off("data", onData);
        req.off("end", onEnd);
        req.resume();
        resolve(refusal);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks, length));
    req.on("data", onData);
    req.on("end", onEnd);
    // An incoming request errs only when its connection closes early ("aborted", ECONNRESET).
    req.on("error", () => {
      allowance.release();
      resolve(ABORTED);
    });
  });
}

/** A body that could not be parsed: the answer to give. */
export class BodyError {
  constructor(readonly error: HttpError) {}
}

/**
 * A body as Fastify's parsers would have given it to Apollo: JSON for `application/json` (with
 * Fastify's own protection against `__proto__` and `constructor.prototype` keys, and nested no
 * deeper than JSON_MAX_NESTING, checked on the bytes before parsing), the text for anything else,
 * so that Apollo's CSRF prevention refuses form and text posts. Nothing at all without a body and
 * without a content type.
 */
export function parseBody(
  contentType: string | undefined,
  bytes: Buffer | undefined,
  metrics: MetricsRecorder,
): unknown {
  if (contentType === undefined && bytes === undefined) return undefined;
  const semicolon = contentType?.indexOf(";") ?? -1;
  const mediaType = (semicolon === -1 ? contentType : contentType!.slice(0, semicolon))?.trim().toLowerCase();
  if (mediaType !== "application/json") return bytes?.toString("utf8") ?? "";
  if (bytes === undefined || bytes.length === 0) return new BodyError(UNREADABLE);
  const tooDeep = refuseDeepJson(bytes, metrics);
  if (tooDeep) return new BodyError(tooDeep);
  const text = bytes.toString("utf8");
  try {
    return secureJson.parse(text, undefined, { protoAction: "error", constructorAction: "error" });
  } catch {
    return new BodyError(NOT_JSON);
  }
}
