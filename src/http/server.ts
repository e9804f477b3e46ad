import type { ApolloServer } from "@apollo/server";
import type { FastifyInstance } from "fastify";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";

import type { ApiTokenVerifier } from "../access/api-tokens.js";
import type { KeyRing } from "../access/keys.js";
import type { Context } from "../access/principal.js";
import type { RevocationList } from "../access/revocation-list.js";
import type { TokenService } from "../access/tokens.js";
import type { AuditService } from "../audit/index.js";
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../db/database.js";
import type { CompiledLane } from "../graphql/compiled-lane.js";
import type { TrustedDocuments } from "../graphql/trusted-documents.js";
import type { MetricsRecorder } from "../metrics.js";
import type { CounterStore } from "../rate-limits/index.js";
import { createDocumentGate } from "./document-gate.js";
import { createFastify } from "./fastify.js";
import { closeConnectionsWhenClosing } from "./graceful-close.js";
import { createGraphqlRoute, isGraphqlRequest } from "./graphql-route.js";
import { JSON_MAX_NESTING, jsonNestingExceeds } from "./json-nesting.js";
import { refusedOriginLog } from "./refused-origins.js";
import { createRequestContext } from "./request-context.js";
import { createRequestInfoReader } from "./request-info.js";
import { BODY_LIMIT_BYTES, createBodyBudget } from "./request-limits.js";
import { registerRoutes } from "./routes.js";
import { edgeHeaders } from "./security-headers.js";
import { createSubscriptionServer } from "./ws/server.js";

export { BODY_LIMIT_BYTES };

export interface HttpServerDeps {
  config: Config;
  logger: Logger;
  apollo: ApolloServer<Context>;
  /** The executable schema, for the WebSocket subscriptions server. */
  schema: GraphQLSchema;
  /** The TRUSTED_DOCUMENTS manifest in force, for the document gate of HTTP and WebSocket. */
  trustedDocuments: TrustedDocuments;
  /** The compiled lane (GRAPHQL_COMPILED_LANE), asked before Apollo; none: Apollo answers every request. */
  lane?: CompiledLane;
  now?: () => number;
  tokens: TokenService;
  apiTokenVerifier: ApiTokenVerifier;
  revocations: RevocationList;
  audit: AuditService;
  keys: KeyRing;
  database: DatabaseHandle;
  /** Rejected tokens and open WebSocket connections are counted here. */
  metrics: MetricsRecorder;
  /** Where the rate limits of the routes count (INTROSPECTION_MAX_PER_TOKEN). */
  counters: CounterStore;
}

/** The HTTP server: Fastify with its routes, and the drain main.ts starts on SIGTERM. */
export interface HttpServer {
  readonly fastify: FastifyInstance;
  /** From now on /readyz answers 503 and every response says Connection: close (graceful-close.ts). */
  drain: () => void;
}

/**
 * Every way in, on one node:http server: `/graphql` on node:http (graphql-route.ts, as Apollo's
 * standalone server serves it), WebSocket subscriptions on the same path, and Fastify for the small
 * routes (routes.ts). All of them read a request (request-info.ts), set its headers
 * (security-headers.ts, cors.ts), count its body (request-limits.ts) and word their refusals
 * (error-body.ts) the same way. Listens on nothing; main.ts does. Closing it first closes every
 * WebSocket with 1001.
 */
export async function createHttpServer(deps: HttpServerDeps): Promise<HttpServer> {
  const { config, metrics } = deps;
  const readRequest = createRequestInfoReader(config.trustProxy);
  const headers = edgeHeaders(config);
  // HTTP_MAX_BODY_BYTES_IN_FLIGHT, shared by the GraphQL route and Fastify's parsers.
  const bodies = createBodyBudget(config.http.maxBodyBytesInFlight, metrics);
  const requests = createRequestContext(deps);
  const documentGate = createDocumentGate(deps);
  const graphqlRoute = createGraphqlRoute({
    apollo: deps.apollo,
    logger: deps.logger,
    readRequest,
    edgeHeaders: headers,
    refusedOrigin: refusedOriginLog(config, deps.logger, deps.now),
    bodyLimitBytes: BODY_LIMIT_BYTES,
    metrics,
    bodyAllowance: bodies.open,
    documentGate,
    maxTokens: config.queryLimits.maxTokens,
    // `graceful` is set right below, long before the server listens (graceful-close.ts needs Fastify).
    closesConnections: () => graceful.closesConnections(),
    context: requests.context,
    lane: deps.lane,
  });
  const server = createFastify({
    config,
    logger: deps.logger,
    metrics,
    edgeHeaders: headers,
    bodyAllowance: bodies.open,
    front: { takes: isGraphqlRequest, handle: graphqlRoute },
  });
  const graceful = closeConnectionsWhenClosing(server);

  const subscriptions = createSubscriptionServer({
    httpServer: server.server,
    schema: deps.schema,
    config,
    logger: deps.logger,
    tokens: deps.tokens,
    apiTokens: deps.apiTokenVerifier,
    revocations: deps.revocations,
    now: deps.now,
    metrics,
    // The WebSocket transport reads the client and screens messages as the HTTP routes do.
    readRequest,
    messageTooDeep: (message) => jsonNestingExceeds(message, JSON_MAX_NESTING),
    onRejected: requests.onSocketRejected,
    documentGate,
  });
  // Before the HTTP server closes: open WebSockets would otherwise keep server.close() waiting.
  server.addHook("preClose", () => subscriptions.dispose());

  registerRoutes(server, { ...deps, isClosing: graceful.isClosing });

  // Last of the preClose hooks: Fastify closes the listener right after them.
  server.addHook("preClose", () => graceful.beforeListenerCloses());
  return { fastify: server, drain: graceful.drain };
}
