import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform } from "node:stream";

import type { ApolloServer } from "@apollo/server";
import fastifyCookie from "@fastify/cookie";
import { fastifyApolloHandler } from "@as-integrations/fastify";
import type { GraphQLSchema } from "graphql";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "pino";

import type { ApiTokenVerifier } from "../access/api-tokens.js";
import { type BearerRequest, type RejectionReason, type TokenHolder, createContextFunction } from "../access/bearer.js";
import { credentialFieldsOf } from "../access/credential-operations.js";
import type { KeyRing } from "../access/keys.js";
import type { ClientInfo, Context } from "../access/principal.js";
import type { RevocationList } from "../access/revocation-list.js";
import type { TokenService } from "../access/tokens.js";
import { type AuditService, AuditEventType } from "../audit/index.js";
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../db/database.js";
import type { MetricsRecorder } from "../metrics.js";
import { createSubscriptionServer } from "../graphql/subscription-server.js";
import { screenSubscriptions, subscriptionOverHttpError } from "../graphql/subscriptions-over-http.js";
import { ErrorCode, ProtocolErrorCode, SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS } from "../errors.js";
import { clientAddress } from "./client-address.js";
import { connectionEdges } from "./connections.js";
import { registerExplorer } from "./explorer.js";
import { closeConnectionsWhenClosing } from "./graceful-close.js";
import { JSON_MAX_NESTING, jsonNestingExceeds } from "./json-nesting.js";
import { GRAPHQL_PATH, type HttpError, createGraphqlRoute } from "./graphql-route.js";
import { type CookieAccess, fastifyCookies, refreshCookieOf } from "./refresh-cookie.js";
import {
  BODY_LIMIT_BYTES,
  type BodyAllowance,
  type Refusal,
  bodyTooLarge,
  createBodyBudget,
  refuseDeepJson,
  refuseDeepJsonParameters,
} from "./request-limits.js";
import { HSTS_VALUE, registerHttpSecurity } from "./security-headers.js";

export { BODY_LIMIT_BYTES };

export interface HttpServerDeps {
  config: Config;
  logger: Logger;
  apollo: ApolloServer<Context>;
  /** The executable schema, for the WebSocket subscriptions server. */
  schema: GraphQLSchema;
  now?: () => number;
  tokens: TokenService;
  apiTokenVerifier: ApiTokenVerifier;
  revocations: RevocationList;
  audit: AuditService;
  keys: KeyRing;
  database: DatabaseHandle;
  /** Rejected tokens and open WebSocket connections are counted here. */
  metrics: MetricsRecorder;
}

/** The HTTP server: Fastify with its routes, and the drain main.ts starts on SIGTERM. */
export interface HttpServer {
  readonly fastify: FastifyInstance;
  /** From now on /readyz answers 503 and every response says Connection: close (graceful-close.ts). */
  drain: () => void;
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
 * The Fastify instance: request ids, security headers, body parsing and its errors, and the routes
 * `/graphql` (with WebSocket subscriptions on the same path), `/.well-known/jwks.json`, `/healthz`
 * and `/readyz`. Its node:http server hands GET and POST /graphql to the GraphQL route of
 * graphql-route.ts before Fastify sees them, which does the same as Fastify's /graphql route at a
 * fraction of the cost; Fastify keeps that route for what needs its plugins (CORS). Listens on
 * nothing; main.ts does. Closing it first closes every WebSocket with 1001.
 */
export async function createHttpServer(deps: HttpServerDeps): Promise<HttpServer> {
  const { config, apollo, keys, database, audit, metrics } = deps;
  const cors = config.corsOrigins.length > 0;
  // Set below, before the server listens: the factory runs while Fastify is constructed.
  const dispatch: { graphqlRoute?: ReturnType<typeof createGraphqlRoute> } = {};
  // Timeouts, keep-alive and the connection cap, on the one server both /graphql routes, Fastify's
  // routes and the WebSocket upgrades share (connections.ts).
  const edges = connectionEdges(config.http, metrics);
  const server = Fastify({
    serverFactory: (fastifyHandler) =>
      edges.createServer((req: IncomingMessage, res: ServerResponse) => {
        if (dispatch.graphqlRoute?.takes(req, cors)) dispatch.graphqlRoute.handle(req, res);
        else fastifyHandler(req, res);
      }),
    clientErrorHandler: edges.clientErrorHandler,
    // Typed as Fastify's logger so the instance is a plain FastifyInstance (pino's Logger would
    // become its type parameter); the rule cannot see that the type argument changes.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Our own ids, so a client-sent header cannot inject text into the logs; echoed in x-request-id.
    genReqId: () => randomUUID(),
    // request.ip (sessions, logs) and request.protocol (HSTS) believe X-Forwarded-* only from these.
    trustProxy: typeof config.trustProxy === "object" ? [...config.trustProxy] : config.trustProxy,
    // Requests that reach an open connection while closing are served, not answered 503.
    return503OnClosing: false,
  });
  const closing = closeConnectionsWhenClosing(server);
  // HTTP_MAX_BODY_BYTES_IN_FLIGHT, shared by the node:http route and Fastify's parsers.
  const bodies = createBodyBudget(config.http.maxBodyBytesInFlight, metrics);
  server.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  const helmetHeaders = await registerHttpSecurity(server, config);
  // Parses the Cookie header for the refresh-token cookie of cookie mode; sets it through the reply.
  await server.register(fastifyCookie);

  // Bodies that are neither JSON nor text reach Apollo unparsed, so its CSRF prevention answers them
  // with 400 instead of Fastify's 415: a form post is exactly the shape CSRF uses.
  server.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
  // Fastify's own JSON parser (secure-json-parse, refusing __proto__ and constructor keys), after
  // the nesting scan of request-limits.ts, as the node:http route does.
  const parseJson = server.getDefaultJsonParser("error", "error");
  server.removeContentTypeParser("application/json");
  server.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const refusal = refuseDeepJson(body, metrics);
    if (refusal) return done(new RefusedRequest(refusal), undefined);
    void parseJson(request, body as string, done);
  });

  // Fastify's parsers read the body through this count of HTTP_MAX_BODY_BYTES_IN_FLIGHT, given
  // back once the body is parsed, or with the response when it never is.
  const allowances = new WeakMap<FastifyRequest, BodyAllowance>();
  const release = (request: FastifyRequest) => allowances.get(request)?.release();
  server.addHook("preParsing", (request, _reply, payload, done) => {
    const allowance = bodies.open();
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

  server.setErrorHandler((error: FastifyError | RefusedRequest, request, reply) => {
    if (error instanceof RefusedRequest) {
      const { status, message, code, headers, extensions } = error.refusal;
      return reply
        .headers(headers ?? {})
        .status(status)
        .send(errorBody(message, code, extensions));
    }
    const status = error.statusCode ?? 500;
    if (status === 413) {
      const refusal = bodyTooLarge(metrics);
      return reply.status(413).send(errorBody(refusal.message, refusal.code));
    }
    if (status >= 400 && status < 500) {
      const message =
        error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError
          ? "The request body is not valid JSON."
          : "The request could not be read.";
      return reply.status(400).send(errorBody(message, ProtocolErrorCode.BAD_REQUEST));
    }
    request.log.error({ err: error }, "request failed");
    return reply.status(500).send(errorBody("Internal server error.", ErrorCode.INTERNAL_SERVER_ERROR));
  });

  // A refused token, over HTTP or at a WebSocket's connection_init: the reason class only, never the
  // token, not even a part of it. Coalesced per IP, reason and user, and not awaited: a flood costs
  // one row a minute, and the refusal never waits for the database.
  const recordRejection = (client: ClientInfo, reason: RejectionReason, holder?: TokenHolder): void => {
    deps.metrics.tokenRejected(reason);
    audit.recordCoalesced(
      { type: AuditEventType.TOKEN_REJECTED, userId: holder?.userId, sessionId: holder?.sessionId, client },
      holder?.apiTokenId ? { reason, apiToken: holder.apiTokenId } : { reason },
    );
  };
  const bearer = createContextFunction({
    tokens: deps.tokens,
    apiTokens: deps.apiTokenVerifier,
    revocations: deps.revocations,
    maxTokens: config.queryLimits.maxTokens,
    ignoringAuthorization: credentialFieldsOf(deps.schema).ignoringAuthorization,
    onRejected: (request, reason, holder) => {
      // Debug, not info: a client retrying a junk token makes hundreds a second, and the coalesced
      // audit row already counts them.
      deps.logger.debug({ reqId: request.id, reason }, "access token rejected");
      recordRejection(
        { ip: request.ip, userAgent: request.headers["user-agent"], requestId: request.id },
        reason,
        holder,
      );
    },
  });
  const webSocketAddress = clientAddress(config.trustProxy);
  const subscriptions = createSubscriptionServer({
    httpServer: server.server,
    schema: deps.schema,
    config,
    logger: deps.logger,
    tokens: deps.tokens,
    apiTokens: deps.apiTokenVerifier,
    revocations: deps.revocations,
    now: deps.now,
    metrics: deps.metrics,
    // The WebSocket transport reads the client and screens messages as the HTTP routes do.
    clientIp: (request) => webSocketAddress.ip(request),
    messageTooDeep: (message) => jsonNestingExceeds(message, JSON_MAX_NESTING),
    onRejected: (client, reason, holder) => {
      deps.logger.debug({ reqId: client.requestId, reason }, "access token rejected");
      recordRejection(client, reason, holder);
    },
  });
  // Before the HTTP server closes: open WebSockets would otherwise keep server.close() waiting.
  server.addHook("preClose", async () => {
    await subscriptions.dispose();
  });
  const corsOrigins = new Set(config.corsOrigins);
  const context = async (request: BearerRequest, cookies: CookieAccess): Promise<Context> => ({
    ...(await bearer(request)),
    refreshCookie: refreshCookieOf(cookies, corsOrigins),
  });
  // Subscriptions are served over WebSocket only; see screenSubscriptions for why this runs before
  // Apollo. A refusal, the query with its subscriptions dropped, or nothing to change.
  const screen = (
    method: string,
    params: { query?: unknown; operationName?: unknown },
  ): HttpError | string | undefined => {
    // A GET's JSON parameters are parsed by Apollo: scanned first, like a POST's body.
    if (method === "GET") {
      const tooDeep = refuseDeepJsonParameters(params, metrics);
      if (tooDeep) return tooDeep;
    }
    if (typeof params.query !== "string") return undefined;
    const operationName = typeof params.operationName === "string" ? params.operationName : undefined;
    const screened = screenSubscriptions(params.query, operationName, { maxTokens: config.queryLimits.maxTokens });
    if (screened === undefined) return undefined;
    if ("refuse" in screened) {
      const error = subscriptionOverHttpError(method);
      return method === "GET"
        ? { status: 405, message: error.message, code: ProtocolErrorCode.BAD_REQUEST, headers: { allow: "POST" } }
        : { status: 400, message: error.message, code: ProtocolErrorCode.BAD_REQUEST };
    }
    // Apollo reads a GET's query from the URL, which stays as sent: only a POST's text is screened.
    return method === "GET" ? undefined : screened.query;
  };
  dispatch.graphqlRoute = createGraphqlRoute({
    apollo,
    logger: deps.logger,
    address: clientAddress(config.trustProxy),
    bodyLimitBytes: BODY_LIMIT_BYTES,
    metrics,
    bodyAllowance: bodies.open,
    securityHeaders: helmetHeaders,
    hstsValue: HSTS_VALUE,
    closesConnections: closing.closesConnections,
    screen,
    context,
  });
  // What the route above does not take: OPTIONS (CORS preflights), and with CORS_ORIGINS set the
  // requests that carry an Origin, which the CORS plugin answers.
  server.route({
    url: GRAPHQL_PATH,
    method: ["GET", "POST", "OPTIONS"],
    preHandler: async (request, reply) => {
      const params = (request.method === "GET" ? request.query : request.body) as
        { query?: unknown; operationName?: unknown } | undefined;
      if (!params || typeof params !== "object") return;
      const screened = screen(request.method, params);
      if (typeof screened === "string") params.query = screened;
      if (typeof screened !== "object") return;
      return reply
        .headers(screened.headers ?? {})
        .status(screened.status)
        .send(errorBody(screened.message, screened.code));
    },
    handler: fastifyApolloHandler(apollo, {
      context: (request: FastifyRequest, reply: FastifyReply) => context(request, fastifyCookies(request, reply)),
    }),
  });

  // Public keys for other services and gateways to verify access tokens without calling us.
  // Empty with HS256, whose key is a shared secret. Short cache: a rotated key must appear quickly.
  server.get("/.well-known/jwks.json", async (_request, reply) => {
    reply.header("cache-control", "public, max-age=60");
    return keys.jwks();
  });

  // GraphiQL from node_modules at /graphiql, in development only.
  registerExplorer(server, config);

  server.get("/healthz", async () => ({ status: "ok" }));
  // Ready means the database answers within DATABASE_TIMEOUT; the failure itself is logged by the
  // database module once per outage, not once per probe.
  server.get("/readyz", async (_request, reply) => {
    // Draining before shutdown (SHUTDOWN_DRAIN): still serving, but no longer to be sent new requests.
    if (closing.isClosing()) return reply.status(503).send({ status: "draining" });
    try {
      await database.ping();
      return { status: "ready" };
    } catch {
      reply.header("retry-after", String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
      return reply.status(503).send({ status: "unavailable" });
    }
  });

  // Last of the preClose hooks: Fastify closes the listener right after them.
  server.addHook("preClose", async () => {
    await closing.beforeListenerCloses();
  });

  return { fastify: server, drain: closing.drain };
}

function errorBody(message: string, code: string, extensions?: Readonly<Record<string, unknown>>) {
  return { errors: [{ message, extensions: { code, ...extensions } }] };
}
