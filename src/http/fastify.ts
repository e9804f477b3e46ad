// Fastify, for every path but /graphql: its request ids, client and headers as the GraphQL route
// has them (request-info.ts, security-headers.ts), its body parsing within the same limits
// (request-limits.ts), and its errors in the edge's words (error-body.ts).
import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform } from "node:stream";

import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "pino";

import type { Config } from "../config.js";
import type { MetricsRecorder } from "../metrics.js";
import { connectionEdges } from "./connections.js";
import { errorBody, type HttpError, INTERNAL_ERROR, NOT_JSON, UNREADABLE } from "./error-body.js";
import { newRequestId, proxyTrust } from "./request-info.js";
import { BODY_LIMIT_BYTES, type BodyAllowance, bodyTooLarge, type Refusal, refuseDeepJson } from "./request-limits.js";
import type { EdgeHeaders } from "./security-headers.js";

export interface FastifyDeps {
  config: Pick<Config, "http" | "trustProxy">;
  logger: Logger;
  metrics: MetricsRecorder;
  /** The headers of every response, CORS preflights answered (security-headers.ts). */
  edgeHeaders: (request: IncomingMessage, info: { id: string; protocol: string }) => EdgeHeaders;
  /** Each body's share of HTTP_MAX_BODY_BYTES_IN_FLIGHT (request-limits.ts). */
  bodyAllowance: () => BodyAllowance;
  /** Requests served before Fastify sees them (graphql-route.ts): the handler, and which requests it takes. */
  front: { takes: (req: IncomingMessage) => boolean; handle: (req: IncomingMessage, res: ServerResponse) => void };
}

/** A request refused before parsing, as the error Fastify's JSON parser hands its error handler. */
class RefusedRequest extends Error {
  readonly statusCode: number;
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
    this.statusCode = refusal.status;
  }
}

/**
 * The Fastify instance on the one node:http server (connections.ts), which hands the requests
 * `front` takes to it before Fastify sees them. Listens on nothing; main.ts does.
 */
export function createFastify(deps: FastifyDeps): FastifyInstance {
  const { config, front } = deps;
  const edges = connectionEdges(config.http, deps.metrics);
  const server = Fastify({
    serverFactory: (fastifyHandler) =>
      edges.createServer((req, res) => (front.takes(req) ? front.handle(req, res) : fastifyHandler(req, res))),
    clientErrorHandler: edges.clientErrorHandler,
    // Typed as Fastify's logger so the instance is a plain FastifyInstance (pino's Logger would
    // become its type parameter); the rule cannot see that the type argument changes.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: newRequestId,
    // The same decision the GraphQL route's client address takes: request.ip (logs) and
    // request.protocol (HSTS) believe X-Forwarded-* only from these.
    trustProxy: proxyTrust(config.trustProxy),
    // Requests that reach an open connection while closing are served, not answered 503.
    return503OnClosing: false,
  });
  server.addHook("onRequest", (request, reply, done) => {
    const { headers, answer } = deps.edgeHeaders(request.raw, request);
    for (const [name, value] of headers) reply.header(name, value);
    if (answer === undefined) return done();
    // A CORS preflight, answered before any route (and any body).
    reply.code(answer.status).header("content-length", String(Buffer.byteLength(answer.body)));
    if (answer.contentType !== undefined) reply.type(answer.contentType);
    void reply.send(answer.body === "" ? undefined : answer.body);
  });
  parseBodies(server, deps);
  server.setErrorHandler((error: FastifyError | RefusedRequest, request, reply) => {
    if (error instanceof RefusedRequest) return send(reply, error.refusal);
    const status = error.statusCode ?? 500;
    if (status === 413) return send(reply, bodyTooLarge(deps.metrics));
    if (status >= 400 && status < 500) {
      return send(
        reply,
        error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError ? NOT_JSON : UNREADABLE,
      );
    }
    request.log.error({ err: error }, "request failed");
    return send(reply, INTERNAL_ERROR);
  });
  return server;
}

function send(reply: FastifyReply, error: HttpError): FastifyReply {
  return reply
    .headers(error.headers ?? {})
    .status(error.status)
    .send(errorBody(error));
}

/**
 * Bodies for Fastify's routes: JSON with the nesting scan of request-limits.ts before Fastify's own
 * parser (secure-json-parse, refusing `__proto__` and `constructor` keys), anything else as text
 * (a route reads it as its content type says; none is refused with 415 before routing), each read
 * through its share of HTTP_MAX_BODY_BYTES_IN_FLIGHT, given back once parsed, or with the response
 * when it never is.
 */
function parseBodies(server: FastifyInstance, deps: Pick<FastifyDeps, "bodyAllowance" | "metrics">): void {
  server.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
  const parseJson = server.getDefaultJsonParser("error", "error");
  server.removeContentTypeParser("application/json");
  server.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const refusal = refuseDeepJson(body, deps.metrics);
    if (refusal) return done(new RefusedRequest(refusal), undefined);
    void parseJson(request, body as string, done);
  });

  const allowances = new WeakMap<FastifyRequest, BodyAllowance>();
  const release = (request: FastifyRequest) => allowances.get(request)?.release();
  server.addHook("preParsing", (request, _reply, payload, done) => {
    const allowance = deps.bodyAllowance();
    allowances.set(request, allowance);
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const refusal = allowance.add(chunk.length);
        if (refusal === undefined) return callback(null, chunk);
        // The rest of the body is read and dropped, never kept.
        payload.unpipe(counted);
        payload.resume();
        callback(new RefusedRequest(refusal));
      },
    });
    payload.on("error", (error) => counted.destroy(error));
    done(null, payload.pipe(counted));
  });
  server.addHook("preValidation", (request, _reply, done) => {
    release(request);
    done();
  });
  server.addHook("onResponse", (request, _reply, done) => {
    release(request);
    done();
  });
  server.addHook("onRequestAbort", (request, done) => {
    release(request);
    done();
  });
}
