import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";

import { type ApolloServer, HeaderMap, type HTTPGraphQLRequest } from "@apollo/server";
import type { Logger } from "pino";
import secureJson from "secure-json-parse";

import type { BearerRequest } from "../access/bearer.js";
import type { Context } from "../access/principal.js";
import { ErrorCode, ProtocolErrorCode } from "../errors.js";
import type { MetricsRecorder } from "../metrics.js";
import type { ClientAddress } from "./client-address.js";
import { type CookieAccess, CookieJar } from "./refresh-cookie.js";
import { type BodyAllowance, bodyTooLarge, refuseDeepJson } from "./request-limits.js";

/** The path Apollo serves; the WebSocket subscriptions share it. */
export const GRAPHQL_PATH = "/graphql";

/** What a refused request is answered with: the body of every error this layer writes itself. */
export interface HttpError {
  status: number;
  message: string;
  code: string;
  headers?: Readonly<Record<string, string>>;
  /** Beside `code` in the error's extensions. */
  extensions?: Readonly<Record<string, unknown>>;
}

export interface GraphqlRouteDeps {
  apollo: ApolloServer<Context>;
  logger: Logger;
  address: ClientAddress;
  bodyLimitBytes: number;
  /** Bodies refused before parsing (request-limits.ts) are counted here. */
  metrics: MetricsRecorder;
  /** Each body's share of HTTP_MAX_BODY_BYTES_IN_FLIGHT (request-limits.ts). */
  bodyAllowance: () => BodyAllowance;
  /** helmet's headers, worked out once (security-headers.ts). */
  securityHeaders: Readonly<Record<string, string>>;
  hstsValue: string;
  /** Whether every response says Connection: close (shutting down; graceful-close.ts). */
  closesConnections: () => boolean;
  /** The subscription screening of the Fastify route (subscriptions-over-http.ts): an error, a changed query, or nothing. */
  screen: (method: string, params: { query?: unknown; operationName?: unknown }) => HttpError | string | undefined;
  context: (request: BearerRequest, cookies: CookieAccess) => Promise<Context>;
}

/**
 * `GET` and `POST /graphql` on node:http, in front of Fastify: the request goes straight to
 * Apollo's `executeHTTPGraphQLRequest`, without Fastify's routing, hooks, request and reply objects,
 * content-type parsers, serialisation and per-request child logger, which cost about a quarter of a
 * request (docs/performance.md). Everything the Fastify route did for /graphql happens here too, in
 * the same way: an x-request-id of our own, helmet's headers and HSTS over TLS, the 1 MB body limit
 * (413) and the JSON errors for unreadable bodies (400), bodies that are not JSON handed to Apollo
 * as text so its CSRF prevention refuses them, subscriptions refused over HTTP, the refresh cookie,
 * Connection: close while closing, and Fastify's "incoming request" and "request completed" log
 * lines. Fastify keeps every other route, and /graphql requests that need its plugins: OPTIONS
 * (CORS preflights), and requests with an Origin when CORS_ORIGINS is set (see `takes`).
 */
export function createGraphqlRoute(deps: GraphqlRouteDeps) {
  const { apollo, logger, address } = deps;
  const securityHeaders = Object.entries(deps.securityHeaders);

  /** Writes a whole response: status, this layer's headers, the body. */
  function finish(
    res: ServerResponse,
    status: number,
    headers: Iterable<[string, string | string[]]>,
    body: string,
  ): void {
    res.statusCode = status;
    for (const [name, value] of headers) res.setHeader(name, value);
    if (deps.closesConnections()) res.setHeader("connection", "close");
    // As bytes: a string handed to the socket stays on the JS heap until the client has read all of
    // it, so a few large answers to slow readers would hold the heap; a Buffer's bytes live outside it.
    const bytes = Buffer.from(body, "utf8");
    res.setHeader("content-length", bytes.length);
    res.end(bytes);
  }

  function refuse(res: ServerResponse, error: HttpError): void {
    finish(
      res,
      error.status,
      [["content-type", "application/json; charset=utf-8"], ...Object.entries(error.headers ?? {})],
      JSON.stringify({ errors: [{ message: error.message, extensions: { code: error.code, ...error.extensions } }] }),
    );
  }

  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    ip: string,
    protocol: string,
  ): Promise<void> {
    const method = req.method!;
    const url = req.url!;
    const queryAt = url.indexOf("?");
    const search = queryAt === -1 ? "" : url.slice(queryAt);
    let body: unknown;
    if (method === "POST") {
      const allowance = deps.bodyAllowance();
      const read = await readBody(req, deps.bodyLimitBytes, deps.metrics, allowance);
      if (read === ABORTED) {
        // The client went away mid-body: nobody to answer, and nothing wrong with the server.
        logger.debug({ reqId: id }, "request aborted by the client");
        res.destroy();
        return;
      }
      if (read !== undefined && !Buffer.isBuffer(read)) return refuse(res, read);
      try {
        body = parseBody(req.headers["content-type"], read, deps.metrics);
      } finally {
        // Parsed (or refused): the bytes are no longer held.
        allowance.release();
      }
      if (body instanceof BodyError) return refuse(res, body.error);
    }
    const params = (method === "GET" ? Object.fromEntries(new URLSearchParams(search)) : body) as
      { query?: unknown; operationName?: unknown } | undefined;
    if (params && typeof params === "object") {
      const screened = deps.screen(method, params);
      if (typeof screened === "object") return refuse(res, screened);
      if (typeof screened === "string") (params as { query: string }).query = screened;
    }

    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const cookies = new CookieJar(req.headers.cookie, protocol, address.host(req), req.headers.origin);
    const httpGraphQLRequest: HTTPGraphQLRequest = { method, headers, search, body };
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest,
      context: () => deps.context({ id, ip, headers: req.headers, body }, cookies),
    });
    const setCookie = cookies.headers();
    if (setCookie) res.setHeader("set-cookie", setCookie);
    if (response.body.kind === "complete") {
      return finish(res, response.status ?? 200, response.headers, response.body.string);
    }
    res.statusCode = response.status ?? 200;
    for (const [name, value] of response.headers) res.setHeader(name, value);
    if (deps.closesConnections()) res.setHeader("connection", "close");
    Readable.from(response.body.asyncIterator).pipe(res);
  }

  return {
    /**
     * Whether this route serves the request; otherwise Fastify does. `cors` is whether CORS_ORIGINS
     * is set: then a request with an Origin goes to Fastify, whose CORS plugin answers it.
     */
    takes(req: IncomingMessage, cors: boolean): boolean {
      if (req.method !== "POST" && req.method !== "GET") return false;
      const url = req.url ?? "";
      if (!url.startsWith(GRAPHQL_PATH) || (url.length > GRAPHQL_PATH.length && url[GRAPHQL_PATH.length] !== "?")) {
        return false;
      }
      return !(cors && req.headers.origin !== undefined);
    },

    handle(req: IncomingMessage, res: ServerResponse): void {
      const started = performance.now();
      const id = randomUUID();
      const ip = address.ip(req);
      const protocol = address.protocol(req);
      res.setHeader("x-request-id", id);
      for (const [name, value] of securityHeaders) res.setHeader(name, value);
      if (protocol === "https") res.setHeader("strict-transport-security", deps.hstsValue);
      const logsRequests = logger.isLevelEnabled("info");
      if (logsRequests) {
        logger.info({ reqId: id, req: { method: req.method, url: req.url, ip } }, "incoming request");
        res.once("finish", () => {
          logger.info(
            { reqId: id, res: { statusCode: res.statusCode }, responseTime: performance.now() - started },
            "request completed",
          );
        });
      }
      serve(req, res, id, ip, protocol).catch((error: unknown) => {
        logger.error({ reqId: id, err: error }, "request failed");
        if (res.headersSent) {
          res.destroy();
          return;
        }
        refuse(res, { status: 500, message: "Internal server error.", code: ErrorCode.INTERNAL_SERVER_ERROR });
      });
    },
  };
}

/** What readBody gives when the connection closed before the body was complete. */
const ABORTED = Symbol("aborted");

/**
 * Reads a POST body, up to `limit` bytes, counting them in `allowance`: its bytes (still counted:
 * the caller releases them once parsed), undefined for none, a 413 or 503 (counted, released), or
 * ABORTED (released).
 */
function readBody(
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

class BodyError {
  constructor(readonly error: HttpError) {}
}

const unreadable = (message: string) => new BodyError({ status: 400, message, code: ProtocolErrorCode.BAD_REQUEST });

/**
 * A POST body as Fastify's parsers would have given it to Apollo: JSON for `application/json`
 * (with Fastify's own protection against `__proto__` and `constructor.prototype` keys, and nested
 * no deeper than JSON_MAX_NESTING, checked on the bytes before parsing), the text for anything
 * else, so that Apollo's CSRF prevention refuses form and text posts. Nothing at all without a body
 * and without a content type.
 */
function parseBody(contentType: string | undefined, bytes: Buffer | undefined, metrics: MetricsRecorder): unknown {
  if (contentType === undefined && bytes === undefined) return undefined;
  const semicolon = contentType?.indexOf(";") ?? -1;
  const mediaType = (semicolon === -1 ? contentType : contentType!.slice(0, semicolon))?.trim().toLowerCase();
  if (mediaType !== "application/json") return bytes?.toString("utf8") ?? "";
  if (bytes === undefined || bytes.length === 0) return unreadable("The request could not be read.");
  const tooDeep = refuseDeepJson(bytes, metrics);
  if (tooDeep) return new BodyError(tooDeep);
  const text = bytes.toString("utf8");
  try {
    return secureJson.parse(text, undefined, { protoAction: "error", constructorAction: "error" });
  } catch {
    return unreadable("The request body is not valid JSON.");
  }
}
