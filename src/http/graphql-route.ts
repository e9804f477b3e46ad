import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";

import { type ApolloServer, HeaderMap, type HTTPGraphQLRequest } from "@apollo/server";
import type { Logger } from "pino";

import type { BearerRequest } from "../access/bearer.js";
import type { Context } from "../access/principal.js";
import { ProtocolErrorCode } from "../errors.js";
import type { CompiledLane } from "../graphql/compiled-lane.js";
import { screenSubscriptions, subscriptionOverHttpError } from "../graphql/subscriptions-over-http.js";
import type { MetricsRecorder } from "../metrics.js";
import { type DocumentGate, type DocumentParams, trustedBody, trustedSearch } from "./document-gate.js";
import { errorJson, type HttpError, INTERNAL_ERROR } from "./error-body.js";
import { type CookieAccess, CookieJar } from "./refresh-cookie.js";
import { ABORTED, BodyError, parseBody, readBody } from "./request-body.js";
import type { RequestInfo, RequestInfoReader } from "./request-info.js";
import { type BodyAllowance, refuseDeepJsonParameters } from "./request-limits.js";
import type { EdgeHeaders } from "./security-headers.js";

/** The path Apollo serves; the WebSocket subscriptions share it. */
export const GRAPHQL_PATH = "/graphql";

/** The methods of /graphql: Apollo answers GET and POST, and refuses HEAD and OPTIONS (once CORS has had its say). */
const METHODS = new Set(["GET", "HEAD", "POST", "OPTIONS"]);

/** Whether the GraphQL route serves `req`: those methods on /graphql, with or without a query string. */
export function isGraphqlRequest(req: Pick<IncomingMessage, "method" | "url">): boolean {
  const url = req.url ?? "";
  if (!url.startsWith(GRAPHQL_PATH)) return false;
  return (url.length === GRAPHQL_PATH.length || url[GRAPHQL_PATH.length] === "?") && METHODS.has(req.method ?? "");
}

export interface GraphqlRouteDeps {
  apollo: ApolloServer<Context>;
  logger: Logger;
  /** The request id, client address, protocol and host (request-info.ts). */
  readRequest: RequestInfoReader;
  /** The headers of every response, CORS preflights answered (security-headers.ts). */
  edgeHeaders: (request: IncomingMessage, info: RequestInfo) => EdgeHeaders;
  /** Warns of a browser origin CORS refuses, so that the log names it (refused-origins.ts). */
  refusedOrigin: (request: IncomingMessage, info: RequestInfo) => void;
  bodyLimitBytes: number;
  /** Bodies refused before parsing (request-limits.ts) are counted here. */
  metrics: MetricsRecorder;
  /** Each body's share of HTTP_MAX_BODY_BYTES_IN_FLIGHT (request-limits.ts). */
  bodyAllowance: () => BodyAllowance;
  /** The TRUSTED_DOCUMENTS gate, asked before anything parses a document. */
  documentGate: DocumentGate;
  /** QUERY_MAX_TOKENS, which bounds the subscription screening's parse too. */
  maxTokens: number;
  /** Whether every response says Connection: close (shutting down; graceful-close.ts). */
  closesConnections: () => boolean;
  context: (request: BearerRequest, cookies: CookieAccess) => Promise<Context>;
  /** The compiled lane, asked first; when it does not answer, Apollo gets the request unchanged. */
  lane?: CompiledLane;
}

/**
 * All of `/graphql` on node:http, in front of Fastify, as Apollo Server's standalone server serves
 * its path: the request goes straight to Apollo's `executeHTTPGraphQLRequest`, without Fastify's
 * routing, hooks, request and reply objects, content-type parsers, serialisation and per-request
 * child logger, which cost about a quarter of a request (docs/performance.md). On the way: our
 * x-request-id, helmet's headers and HSTS over TLS, CORS (a preflight answered at once, a refused
 * origin named in the log), the 1 MB body limit (413) and the JSON errors for unreadable bodies
 * (400), bodies that are not JSON handed to Apollo as text so its CSRF prevention refuses them,
 * subscriptions refused over HTTP, the refresh cookie, Connection: close while closing, and log
 * lines in Fastify's words ("incoming request", "request completed"). Right before Apollo, the
 * compiled lane (graphql/compiled-lane.ts, GRAPHQL_COMPILED_LANE) may answer a known query itself,
 * exactly as Apollo would; when it does not, Apollo gets the request unchanged, and the context,
 * built at most once, is shared by both. Every other path is Fastify's.
 */
export function createGraphqlRoute(deps: GraphqlRouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { logger } = deps;
  const finish = (res: ServerResponse, status: number, headers: Iterable<[string, string]>, body: string) =>
    writeWhole(res, status, headers, body, deps.closesConnections());
  const refuse = (res: ServerResponse, error: HttpError) =>
    finish(
      res,
      error.status,
      [["content-type", "application/json; charset=utf-8"], ...Object.entries(error.headers ?? {})],
      errorJson(error),
    );
  const serve = createServe(deps, finish, refuse);

  return (req, res) => {
    const started = performance.now();
    const info = deps.readRequest(req);
    const { headers, answer } = deps.edgeHeaders(req, info);
    for (const [name, value] of headers) res.setHeader(name, value);
    deps.refusedOrigin(req, info);
    if (logger.isLevelEnabled("info")) {
      logger.info({ reqId: info.id, req: { method: req.method, url: req.url, ip: info.ip } }, "incoming request");
      res.once("finish", () => {
        logger.info(
          { reqId: info.id, res: { statusCode: res.statusCode }, responseTime: performance.now() - started },
          "request completed",
        );
      });
    }
    if (answer) {
      const contentType: Array<[string, string]> = answer.contentType ? [["content-type", answer.contentType]] : [];
      return finish(res, answer.status, contentType, answer.body);
    }
    serve(req, res, info).catch((error: unknown) => {
      logger.error({ reqId: info.id, err: error }, "request failed");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      refuse(res, INTERNAL_ERROR);
    });
  };
}

/** The request after CORS: its body read and parsed, subscriptions screened, then Apollo. */
function createServe(
  deps: GraphqlRouteDeps,
  finish: (res: ServerResponse, status: number, headers: Iterable<[string, string]>, body: string) => void,
  refuse: (res: ServerResponse, error: HttpError) => void,
) {
  return async (req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void> => {
    const method = req.method!;
    const url = req.url!;
    const queryAt = url.indexOf("?");
    const search = queryAt === -1 ? "" : url.slice(queryAt);
    // Fastify parsed the bodies of POST and OPTIONS (not of GET and HEAD); so does this route.
    const body = method === "POST" || method === "OPTIONS" ? await bodyOf(req, deps, info.id) : undefined;
    if (body === ABORTED) {
      // The client went away mid-body: nobody to answer, and nothing wrong with the server.
      res.destroy();
      return;
    }
    if (body instanceof BodyError) return refuse(res, body.error);
    const admitted = await admit(deps, req, info, { method, search, body });
    if ("status" in admitted) return refuse(res, admitted);
    const { search: searchToRun, body: bodyToRun } = admitted;

    const cookies = new CookieJar(req.headers.cookie, info.protocol, info.host, req.headers.origin);
    // Built once, by the lane or by Apollo: a context is never built twice (its log line, its counters).
    let built: Promise<Context> | undefined;
    const context = () =>
      (built ??= deps.context({ id: info.id, ip: info.ip, headers: req.headers, body: bodyToRun }, cookies));
    const laneAnswer = await deps.lane?.serve({ method, headers: req.headers, body: bodyToRun, context });
    const setCookieNow = () => {
      const setCookie = cookies.headers();
      if (setCookie) res.setHeader("set-cookie", setCookie);
    };
    if (laneAnswer) {
      setCookieNow();
      return finish(res, laneAnswer.status, laneAnswer.headers, laneAnswer.body);
    }
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const httpGraphQLRequest: HTTPGraphQLRequest = { method, headers, search: searchToRun, body: bodyToRun };
    const response = await deps.apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest, context });
    setCookieNow();
    if (response.body.kind === "complete") {
      return finish(res, response.status ?? 200, response.headers, response.body.string);
    }
    res.statusCode = response.status ?? 200;
    for (const [name, value] of response.headers) res.setHeader(name, value);
    if (deps.closesConnections()) res.setHeader("connection", "close");
    Readable.from(response.body.asyncIterator).pipe(res);
  };
}

/** The parsed body (request-body.ts), a BodyError, or ABORTED when the client left mid-body (logged). */
async function bodyOf(req: IncomingMessage, deps: GraphqlRouteDeps, id: string): Promise<unknown> {
  const allowance = deps.bodyAllowance();
  const read = await readBody(req, deps.bodyLimitBytes, deps.metrics, allowance);
  if (read === ABORTED) {
    deps.logger.debug({ reqId: id }, "request aborted by the client");
    return ABORTED;
  }
  if (read !== undefined && !Buffer.isBuffer(read)) return new BodyError(read);
  try {
    return parseBody(req.headers["content-type"], read, deps.metrics);
  } finally {
    // Parsed (or refused): the bytes are no longer held.
    allowance.release();
  }
}

/** What goes to Apollo: the query string and the parsed body. */
interface ApolloInput {
  readonly method: string;
  readonly search: string;
  readonly body: unknown;
}

/**
 * A request's way past the edge's checks of its document, before anything parses it: a GET's JSON
 * parameters scanned for nesting, then the document gate (document-gate.ts: a refusal, or a listed
 * document's text put in place of its id), then the subscriptions screen, which a listed document
 * without a subscription skips. A refusal, or what Apollo gets.
 */
async function admit(
  deps: GraphqlRouteDeps,
  req: IncomingMessage,
  info: RequestInfo,
  input: ApolloInput,
): Promise<HttpError | ApolloInput> {
  const { method } = input;
  let { search, body } = input;
  let params = (method === "GET" ? Object.fromEntries(new URLSearchParams(search)) : body) as DocumentParams;
  if (!params || typeof params !== "object" || Array.isArray(params)) return input;
  // A GET's JSON parameters are parsed by Apollo (and the gate): scanned first, like a POST's body.
  if (method === "GET") {
    const tooDeep = refuseDeepJsonParameters(params, deps.metrics);
    if (tooDeep) return tooDeep;
  }
  const client = { ip: info.ip, userAgent: req.headers["user-agent"], requestId: info.id };
  const verdict = await deps.documentGate.http(params, req.headers.authorization, client);
  if (verdict.kind === "refused") return verdict.error;
  if (verdict.kind === "trusted") {
    const { document } = verdict;
    if (method === "GET") {
      search = trustedSearch(search, document);
      params = Object.fromEntries(new URLSearchParams(search));
    } else body = params = trustedBody(params as Record<string, unknown>, document);
    // Nothing to screen: no parse at all for a listed document (Apollo's document store has it parsed).
    if (!document.hasSubscription) return { method, search, body };
  }
  const screened = screen(method, params, deps);
  if (typeof screened === "object") return screened;
  if (typeof screened === "string") (params as { query: string }).query = screened;
  return { method, search, body };
}

/**
 * Subscriptions are served over WebSocket only; see screenSubscriptions for why this runs before
 * Apollo. A refusal, the query with its subscriptions dropped, or nothing to change.
 */
function screen(
  method: string,
  params: { query?: unknown; operationName?: unknown },
  deps: Pick<GraphqlRouteDeps, "maxTokens">,
): HttpError | string | undefined {
  if (typeof params.query !== "string") return undefined;
  const operationName = typeof params.operationName === "string" ? params.operationName : undefined;
  const screened = screenSubscriptions(params.query, operationName, { maxTokens: deps.maxTokens });
  if (screened === undefined) return undefined;
  if ("refuse" in screened) {
    const error = subscriptionOverHttpError(method);
    return method === "GET"
      ? { status: 405, message: error.message, code: ProtocolErrorCode.BAD_REQUEST, headers: { allow: "POST" } }
      : { status: 400, message: error.message, code: ProtocolErrorCode.BAD_REQUEST };
  }
  // Apollo reads a GET's query from the URL, which stays as sent: only a POST's text is screened.
  return method === "GET" ? undefined : screened.query;
}

/**
 * Bodies up to this many characters are written as the string they are: node:http then sends the
 * head and the body in one write, without copying the body into a Buffer first.
 */
const STRING_BODY_MAX_CHARS = 16 * 1024;

/** Writes a whole response: status, these headers, the body. */
function writeWhole(
  res: ServerResponse,
  status: number,
  headers: Iterable<[string, string]>,
  body: string,
  closesConnection: boolean,
): void {
  res.statusCode = status;
  for (const [name, value] of headers) res.setHeader(name, value);
  if (closesConnection) res.setHeader("connection", "close");
  if (body.length <= STRING_BODY_MAX_CHARS) {
    res.setHeader("content-length", Buffer.byteLength(body, "utf8"));
    res.end(body, "utf8");
    return;
  }
  // A large one as bytes: a string handed to the socket stays on the JS heap until the client has
  // read all of it, so a few large answers to slow readers would hold the heap; a Buffer's bytes
  // live outside it.
  const bytes = Buffer.from(body, "utf8");
  res.setHeader("content-length", bytes.length);
  res.end(bytes);
}
