import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";

import {
  type ExecutionArgs,
  GraphQLError,
  type GraphQLSchema,
  type ValidationRule,
  getOperationAST,
  OperationTypeNode,
  parse,
  specifiedRules,
  validate,
} from "graphql";
import { CloseCode, type ExecutionResult } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import type { Logger } from "pino";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";

import type { ApiTokenVerifier } from "../access/api-tokens.js";
import { type RejectionReason, type TokenHolder, verifyBearer } from "../access/bearer.js";
import { type ClientInfo, type Context, type Principal, credentialId, withOwnerRoles } from "../access/principal.js";
import type { RevocationList } from "../access/revocation-list.js";
import type { TokenService } from "../access/tokens.js";
import type { Config } from "../config.js";
import { isDatabaseUnavailable } from "../db/unavailable.js";
import { ProtocolErrorCode } from "../errors.js";
import { createErrorFormatter } from "./format-error.js";
import { checkOperationCost, createQueryLimits } from "./query-limits.js";
import { limitEventSize } from "./response-size.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";

/** The path WebSocket connections are accepted on: the same as HTTP's GraphQL route. */
export const SUBSCRIPTIONS_PATH = "/graphql";
/** Active subscriptions one connection may hold; one more is refused with an error (docs/subscriptions.md). */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 20;
/** How long a connection may take to send `connection_init`; graphql-ws closes it with 4408 after that. */
export const CONNECTION_INIT_TIMEOUT_MS = 5000;
/** The largest message a client may send, the same as the largest HTTP body (ws's own default is 100 MiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** How long graceful shutdown waits for a client to answer the 1001 close before dropping its socket. */
const CLOSE_GRACE_MS = 1000;
/** setTimeout's longest delay; an expiry further off is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The close code and reasons a client sees when the server ends its connection for its token. */
export const SubscriptionClose = {
  /** graphql-ws's Forbidden: an invalid token at connect, an expired token, an ended session. */
  FORBIDDEN: CloseCode.Forbidden,
  /** Graceful shutdown (WebSocket's Going Away). */
  GOING_AWAY: 1001,
} as const;
export const CloseReason = {
  TOKEN_EXPIRED: "Token expired",
  SESSION_ENDED: "Session ended",
} as const;

export const ONLY_SUBSCRIPTIONS_MESSAGE =
  "Only subscriptions are served over WebSocket: send queries and mutations over HTTP to /graphql.";
export const TOO_MANY_SUBSCRIPTIONS_MESSAGE = `A connection may hold at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} active subscriptions: complete one first, or open another connection.`;

export interface SubscriptionServerDeps {
  httpServer: Server;
  schema: GraphQLSchema;
  config: Config;
  logger: Logger;
  tokens: TokenService;
  apiTokens: ApiTokenVerifier;
  revocations: RevocationList;
  /** Told of every refused token, like the HTTP path's; must not wait for anything. */
  onRejected: (client: ClientInfo, reason: RejectionReason, holder?: TokenHolder) => void;
  now?: () => number;
  /** Open connections (a gauge) and subscriptions started or refused. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

/** What one connection proved at connect, and the timer that ends it when its token expires. */
interface Connection {
  readonly socket: WebSocket;
  readonly client: Required<Pick<ClientInfo, "requestId">> & ClientInfo;
  readonly principal: Principal | null;
  readonly expiresAt: number | undefined;
  expiryTimer?: NodeJS.Timeout;
}

export interface SubscriptionServer {
  /** Open connections; for tests and diagnostics. */
  readonly size: number;
  /** Closes every socket with 1001 (dropping those that do not answer within a second) and stops accepting. */
  dispose(): Promise<void>;
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws's `graphql-transport-ws` protocol) on the HTTP
 * server's own port and path, as Apollo Server's documentation sets it up, with this API's rules:
 *
 * - Authentication once, at `connection_init`: `connectionParams.authorization` (or `Authorization`)
 *   goes through the HTTP path's own check ({@link verifyBearer}). None: anonymous. Refused: the
 *   socket is closed with 4403 and the refusal is reported like an HTTP 401.
 * - Token lifetime: the socket is closed with 4403 when its token expires (a timer at `exp`) and as
 *   soon as the revocation list learns that its session ended, on whichever instance it ended.
 *   Each operation's context reads the principal again on every access, so a role change applies to
 *   the next event, and an ended session is anonymous until its socket is gone.
 * - Only subscriptions; parsed and validated with the HTTP path's limits (tokens, depth, aliases,
 *   directives, cost), at most {@link MAX_SUBSCRIPTIONS_PER_CONNECTION} at once per connection, and
 *   `connection_init` within {@link CONNECTION_INIT_TIMEOUT_MS}. Errors are formatted (and unknown
 *   ones masked) like Apollo's.
 */
export function createSubscriptionServer(deps: SubscriptionServerDeps): SubscriptionServer {
  const { config, logger, schema, revocations } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? NO_METRICS;
  const log = logger.child({ component: "subscriptions" });
  const exposeLimits = !config.isProduction;
  const limits = createQueryLimits(config.queryLimits, { exposeLimits, metrics });
  const rules: ValidationRule[] = [...specifiedRules, ...limits.validationRules];
  const formatError = createErrorFormatter({
    revealInternals: !config.isProduction,
    report: (error) => log.error({ err: error }, "unexpected error"),
    isUnavailable: isDatabaseUnavailable,
  });
  const format = (errors: readonly GraphQLError[]) => errors.map((error) => formatError(error.toJSON(), error));

  const connections = new WeakMap<WebSocket, Connection>();
  // The credential (session or API token) -> sockets index that ended credentials are looked up in.
  const bySession = new Map<string, Set<Connection>>();
  let open = 0;

  const forget = (connection: Connection) => {
    clearTimeout(connection.expiryTimer);
    if (!connection.principal) return;
    const sessionId = credentialId(connection.principal);
    const sockets = bySession.get(sessionId);
    sockets?.delete(connection);
    if (sockets?.size === 0) bySession.delete(sessionId);
  };
  const end = (connection: Connection, reason: string) => {
    forget(connection);
    log.debug({ reqId: connection.client.requestId, reason }, "subscription connection closed for its token");
    connection.socket.close(SubscriptionClose.FORBIDDEN, reason);
  };
  const armExpiry = (connection: Connection) => {
    if (connection.expiresAt === undefined) return;
    const delay = connection.expiresAt - now();
    if (delay <= 0) return end(connection, CloseReason.TOKEN_EXPIRED);
    connection.expiryTimer = setTimeout(() => armExpiry(connection), Math.min(delay, MAX_TIMER_MS));
    connection.expiryTimer.unref();
  };
  const stopListening = revocations.onSessionEnded((sessionId) => {
    const sockets = bySession.get(sessionId);
    if (!sockets) return;
    for (const connection of [...sockets]) end(connection, CloseReason.SESSION_ENDED);
  });

  const contextOf = (connection: Connection) =>
    liveContext(
      { ...connection.client, principal: connection.principal, expiresAt: connection.expiresAt },
      revocations,
      now,
    );

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const server = useServer(
    {
      schema,
      connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const client = clientOf(request);
        const params = ctx.connectionParams ?? {};
        const header = params.authorization ?? params.Authorization;
        const verdict =
          header === undefined || typeof header === "string"
            ? await verifyBearer(header, deps)
            : ({ ok: false, reason: "MALFORMED" } as const);
        if (!verdict.ok) {
          deps.onRejected(client, verdict.reason, verdict.holder);
          // graphql-ws closes the socket with 4403 Forbidden.
          return false;
        }
        const connection: Connection = {
          socket,
          client,
          principal: verdict.principal,
          expiresAt: verdict.expiresAt,
        };
        connections.set(socket, connection);
        if (connection.principal) {
          const id = credentialId(connection.principal);
          const sockets = bySession.get(id) ?? new Set();
          sockets.add(connection);
          bySession.set(id, sockets);
          armExpiry(connection);
        }
        return true;
      },
      onClose(ctx) {
        const connection = connections.get(ctx.extra.socket);
        if (connection) forget(connection);
      },
      onSubscribe(ctx, _id, payload): ExecutionArgs | readonly GraphQLError[] {
        const started = subscribe(connections.get(ctx.extra.socket)!, Object.keys(ctx.subscriptions).length, payload);
        metrics.operation("subscription", Array.isArray(started) ? "error" : "ok");
        return started;
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
      onNext: (_ctx, _id, _payload, _args, result: ExecutionResult) =>
        limitEventSize(
          result.errors ? { ...result, errors: format(result.errors) } : result,
          config.responseMaxBytes,
          metrics,
        ),
    },
    wss,
  );

  // Parses, validates and checks one subscription of `connection`, which holds `active` of them.
  function subscribe(
    connection: Connection,
    active: number,
    payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
  ): ExecutionArgs | readonly GraphQLError[] {
    // graphql-ws has already entered this one.
    if (active > MAX_SUBSCRIPTIONS_PER_CONNECTION)
      return [
        new GraphQLError(TOO_MANY_SUBSCRIPTIONS_MESSAGE, { extensions: { code: ProtocolErrorCode.BAD_REQUEST } }),
      ];
    let document;
    try {
      document = parse(payload.query, limits.parseOptions);
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      return [
        new GraphQLError(error.message, {
          nodes: error.nodes,
          source: error.source,
          positions: error.positions,
          extensions: { code: ProtocolErrorCode.GRAPHQL_PARSE_FAILED },
        }),
      ];
    }
    const invalid = validate(schema, document, rules);
    if (invalid.length > 0)
      return invalid.map(
        (error) =>
          new GraphQLError(error.message, {
            nodes: error.nodes,
            extensions: { ...error.extensions, code: ProtocolErrorCode.GRAPHQL_VALIDATION_FAILED },
          }),
      );
    const operation = getOperationAST(document, payload.operationName);
    if (!operation)
      return [
        new GraphQLError("The document has no operation of that name, or several and no operationName.", {
          extensions: { code: ProtocolErrorCode.OPERATION_RESOLUTION_FAILURE },
        }),
      ];
    if (operation.operation !== OperationTypeNode.SUBSCRIPTION)
      return [new GraphQLError(ONLY_SUBSCRIPTIONS_MESSAGE, { extensions: { code: ProtocolErrorCode.BAD_REQUEST } })];
    try {
      checkOperationCost(
        { schema, document, operation, variables: payload.variables ?? undefined },
        config.queryLimits.maxCost,
        {
          exposeLimits,
        },
      );
    } catch (error) {
      if (error instanceof GraphQLError) return [error];
      throw error;
    }
    return {
      schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue: contextOf(connection),
    };
  }

  wss.on("connection", (socket) => {
    open += 1;
    metrics.subscriptionOpened();
    socket.once("close", () => {
      open -= 1;
      metrics.subscriptionClosed();
    });
  });
  let closing = false;
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (closing || path !== SUBSCRIPTIONS_PATH) {
      socket.end(`HTTP/1.1 ${closing ? "503 Service Unavailable" : "404 Not Found"}\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  };
  deps.httpServer.on("upgrade", onUpgrade);

  let disposed: Promise<void> | undefined;
  return {
    get size() {
      return open;
    },
    dispose() {
      disposed ??= (async () => {
        closing = true;
        stopListening();
        deps.httpServer.off("upgrade", onUpgrade);
        // graphql-ws closes every socket with 1001 and waits for each to finish closing; a client
        // that never answers is dropped after CLOSE_GRACE_MS rather than holding shutdown up.
        const drop = setTimeout(() => {
          for (const socket of wss.clients) socket.terminate();
        }, CLOSE_GRACE_MS);
        drop.unref();
        try {
          await server.dispose();
        } finally {
          clearTimeout(drop);
        }
      })();
      return disposed;
    },
  };
}

/**
 * The context of one subscription: its `principal` is worked out again at every access, so each
 * event sees the session and roles as they are now: null once the session has ended or the token
 * has expired (the socket is being closed then), and roles changed since the token was minted
 * replace the token's, as on the HTTP path.
 */
export function liveContext(
  connection: ClientInfo & { requestId: string; principal: Principal | null; expiresAt: number | undefined },
  revocations: Pick<RevocationList, "isSessionEnded" | "currentRoles">,
  now: () => number,
): Context {
  const { principal, expiresAt } = connection;
  return {
    get principal(): Principal | null {
      if (principal === null) return null;
      if (revocations.isSessionEnded(credentialId(principal))) return null;
      if (expiresAt !== undefined && expiresAt <= now()) return null;
      const roles = revocations.currentRoles(principal.userId);
      return roles === undefined ? principal : withOwnerRoles(principal, roles);
    },
    requestId: connection.requestId,
    ip: connection.ip ?? "",
    userAgent: connection.userAgent,
  };
}

/** Where a connection came from, as sessions and audit events record it; the id names it in the logs. */
function clientOf(request: IncomingMessage): Connection["client"] {
  return {
    requestId: randomUUID(),
    ip: request.socket.remoteAddress,
    userAgent: request.headers["user-agent"],
  };
}
