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
import { CloseCode, type ExecutionResult, makeServer } from "graphql-ws";
import { handleProtocols } from "graphql-ws";
import type { Logger } from "pino";
import WebSocket, { type RawData, WebSocketServer } from "ws";

import type { ApiTokenVerifier } from "../access/api-tokens.js";
import { type RejectionReason, type TokenHolder, verifyBearer } from "../access/bearer.js";
import { type ClientInfo, type Context, type Principal, credentialId, withOwnerRoles } from "../access/principal.js";
import type { RevocationList } from "../access/revocation-list.js";
import type { TokenService } from "../access/tokens.js";
import type { Config, SubscriptionLimits } from "../config.js";
import { isDatabaseUnavailable } from "../db/unavailable.js";
import { ProtocolErrorCode, RateLimitedError } from "../errors.js";
import { createErrorFormatter } from "./format-error.js";
import { checkOperationCost, createQueryLimits } from "./query-limits.js";
import { limitEventSize } from "./response-size.js";
import { DeliveryLimiter, subscribeWithLimit } from "./subscription-delivery.js";
import { type LimitName, type MetricsRecorder, NO_METRICS } from "../metrics.js";

/**
 * The budget of the WebSocket transport when its variables are unset, chosen from measurement on
 * npm start's 96 MB heap (after a forced collection): about 8.5 KB of heap per socket and 10 to
 * 15 KB per `postUpdated` subscription (the larger for a selection near SUBSCRIPTION_MAX_COST), so
 * the worst case the caps allow (1,000 sockets and 2,000 subscriptions) holds about 38 MB beside
 * the app's own 27 MB: 65 MB, and the process stayed up with 10 updates delivered to all 2,000
 * subscribers.
 */
export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = Object.freeze({
  maxConnections: 1000,
  maxConnectionsPerIp: 50,
  maxAnonymousConnections: 500,
  anonymousIdleMs: 60_000,
  maxSubscriptions: 2000,
  maxSubscriptionsPerIp: 200,
  maxAnonymousSubscriptions: 1000,
  maxSubscriptionsPerConnection: 20,
  maxCost: 100,
  deliveryConcurrency: 8,
  maxQueuedEvents: 20,
  maxBufferedBytes: 256 * 1024,
});

/** The path WebSocket connections are accepted on: the same as HTTP's GraphQL route. */
export const SUBSCRIPTIONS_PATH = "/graphql";
/** How long a connection may take to send `connection_init`; graphql-ws closes it with 4408 after that. */
export const CONNECTION_INIT_TIMEOUT_MS = 5000;
/** The largest message a client may send, the same as the largest HTTP body (ws's own default is 100 MiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** What a refused upgrade or subscription tells a client to wait (`Retry-After`, `retryAfter`), in seconds. */
export const CAPACITY_RETRY_AFTER_SECONDS = 5;
/** How often the server pings each socket; one that has not answered by the next ping is dropped (graphql-ws's default). */
const KEEP_ALIVE_MS = 12_000;
/** How long graceful shutdown (and a socket closed for its backlog) waits for a client to answer the close before dropping its socket. */
const CLOSE_GRACE_MS = 1000;
/** setTimeout's longest delay; an expiry further off is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The close codes a client sees when the server ends its connection (docs/subscriptions.md). */
export const SubscriptionClose = {
  /** graphql-ws's Forbidden: an invalid token at connect, an expired token, an ended session. */
  FORBIDDEN: CloseCode.Forbidden,
  /** Graceful shutdown (WebSocket's Going Away). */
  GOING_AWAY: 1001,
  /** WebSocket's Try Again Later: the anonymous share is full at connection_init, or the socket's send buffer is. */
  TRY_AGAIN_LATER: 1013,
  /** graphql-ws's BadRequest: a message nested deeper than JSON_MAX_NESTING (or not the protocol's). */
  BAD_REQUEST: CloseCode.BadRequest,
  /** graphql-ws's timeout code: no connection_init in time, or an anonymous socket idle (no subscription) too long. */
  TIMEOUT: CloseCode.ConnectionInitialisationTimeout,
} as const;
export const CloseReason = {
  TOKEN_EXPIRED: "Token expired",
  SESSION_ENDED: "Session ended",
  TOO_MANY_ANONYMOUS: "Too many anonymous connections",
  IDLE: "Idle timeout",
  SEND_BUFFER_FULL: "Send buffer full",
  TOO_DEEP: "Message nested too deeply",
} as const;

export const ONLY_SUBSCRIPTIONS_MESSAGE =
  "Only subscriptions are served over WebSocket: send queries and mutations over HTTP to /graphql.";
/** The error of a subscription past WS_MAX_SUBSCRIPTIONS_PER_CONNECTION. */
export function tooManySubscriptionsMessage(max: number): string {
  return `A connection may hold at most ${max} active subscriptions: complete one first, or open another connection.`;
}

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
  /**
   * The client's IP as every HTTP route reads it (http/client-address.ts, with TRUST_PROXY): the
   * per-IP caps count by it and the logs and audit rows record it. Passed in, since http/ is above graphql/.
   */
  clientIp: (request: IncomingMessage) => string;
  /** Whether a message nests deeper than JSON_MAX_NESTING (http/json-nesting.ts's byte scan), asked before graphql-ws parses it. */
  messageTooDeep: (message: Buffer) => boolean;
  now?: () => number;
  /** Open connections and active subscriptions (gauges), subscriptions started or refused, refusals by limit. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

/** What graphql-ws's hooks get with each connection: the socket, its upgrade request and the client's IP. */
interface Extra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  readonly ip: string;
}

/** What one connection proved at connect, its subscriptions, and the timers that end it. */
interface Connection {
  readonly socket: WebSocket;
  readonly client: Required<Pick<ClientInfo, "requestId">> & ClientInfo & { ip: string };
  readonly principal: Principal | null;
  readonly expiresAt: number | undefined;
  /** The ids of its subscriptions that count against the caps (accepted and not yet completed). */
  readonly active: Set<string>;
  expiryTimer?: NodeJS.Timeout;
  idleTimer?: NodeJS.Timeout;
}

export interface SubscriptionServer {
  /** Open connections; for tests and diagnostics. */
  readonly size: number;
  /** Active subscriptions on every connection; for tests and diagnostics. */
  readonly subscriptions: number;
  /** Closes every socket with 1001 (dropping those that do not answer within a second) and stops accepting. */
  dispose(): Promise<void>;
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws's `graphql-transport-ws` protocol, on its
 * `makeServer` with a small ws adapter of our own) on the HTTP server's own port and path, with
 * this API's rules:
 *
 * - Authentication once, at `connection_init`: `connectionParams.authorization` (or `Authorization`)
 *   goes through the HTTP path's own check ({@link verifyBearer}). None: anonymous. Refused: the
 *   socket is closed with 4403 and the refusal is reported like an HTTP 401.
 * - Token lifetime: the socket is closed with 4403 when its token expires (a timer at `exp`) and as
 *   soon as the revocation list learns that its session ended, on whichever instance it ended.
 *   Each operation's context reads the principal again on every access, so a role change applies to
 *   the next event, and an ended session is anonymous until its socket is gone.
 * - Budgets (config.subscriptions, docs/limits.md), each refused at the cheapest point: sockets in
 *   all and per client IP at the upgrade (HTTP 503 or 429 with Retry-After, before any WebSocket
 *   exists); anonymous sockets in all at `connection_init` (close 1013), so signed-in users keep a
 *   share; an anonymous socket without a subscription for WS_ANONYMOUS_IDLE_TIMEOUT is closed with
 *   4408; subscriptions per connection, per IP, anonymous and in all at `subscribe` (an `error`
 *   message); messages nested deeper than JSON_MAX_NESTING before graphql-ws parses them (close
 *   4400); a socket whose unsent bytes pass WS_MAX_BUFFERED_BYTES is closed with 1013 instead of
 *   buffering more.
 * - Only subscriptions; parsed and validated with the HTTP path's limits (tokens, depth, aliases,
 *   directives) and the much lower SUBSCRIPTION_MAX_COST, since a selection runs on every event;
 *   each event's selections run through a {@link DeliveryLimiter} (SUBSCRIPTION_DELIVERY_CONCURRENCY
 *   at once). `connection_init` within {@link CONNECTION_INIT_TIMEOUT_MS}. Errors are formatted (and
 *   unknown ones masked) like Apollo's.
 */
export function createSubscriptionServer(deps: SubscriptionServerDeps): SubscriptionServer {
  const { config, logger, schema, revocations } = deps;
  const budget = config.subscriptions;
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
  const limiter = new DeliveryLimiter(budget.deliveryConcurrency, (waiting) => metrics.deliveriesWaiting(waiting));

  const connections = new WeakMap<WebSocket, Connection>();
  // The credential (session or API token) -> sockets index that ended credentials are looked up in.
  const bySession = new Map<string, Set<Connection>>();
  // What each client IP holds: open sockets (from the upgrade) and active subscriptions.
  const byIp = new Map<string, { sockets: number; subscriptions: number }>();
  const usageOf = (ip: string) => {
    let usage = byIp.get(ip);
    if (!usage) byIp.set(ip, (usage = { sockets: 0, subscriptions: 0 }));
    return usage;
  };
  const forgetIpIfUnused = (ip: string) => {
    const usage = byIp.get(ip);
    if (usage && usage.sockets <= 0 && usage.subscriptions <= 0) byIp.delete(ip);
  };
  let open = 0;
  let anonymousOpen = 0;
  let active = 0;
  let anonymousActive = 0;
  const refused = (limit: LimitName) => metrics.limitReached(limit);

  const forget = (connection: Connection) => {
    clearTimeout(connection.expiryTimer);
    clearTimeout(connection.idleTimer);
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
  // An anonymous socket is worth holding only while it has a subscription: pings alone do not count.
  const armIdle = (connection: Connection) => {
    if (connection.principal || connection.active.size > 0) return;
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      refused("WS_ANONYMOUS_IDLE_TIMEOUT");
      log.debug({ reqId: connection.client.requestId }, "idle anonymous subscription connection closed");
      connection.socket.close(SubscriptionClose.TIMEOUT, CloseReason.IDLE);
    }, budget.anonymousIdleMs);
    connection.idleTimer.unref();
  };
  const stopListening = revocations.onSessionEnded((sessionId) => {
    const sockets = bySession.get(sessionId);
    if (!sockets) return;
    for (const connection of [...sockets]) end(connection, CloseReason.SESSION_ENDED);
  });

  // A subscription counted against the caps from its acceptance until it completes (or its socket closes).
  const started = (connection: Connection, id: string) => {
    connection.active.add(id);
    active += 1;
    if (!connection.principal) anonymousActive += 1;
    usageOf(connection.client.ip).subscriptions += 1;
    metrics.subscriptionStarted();
    clearTimeout(connection.idleTimer);
  };
  const ended = (connection: Connection, id: string) => {
    if (!connection.active.delete(id)) return;
    active -= 1;
    if (!connection.principal) anonymousActive -= 1;
    usageOf(connection.client.ip).subscriptions -= 1;
    forgetIpIfUnused(connection.client.ip);
    metrics.subscriptionEnded();
    if (connection.socket.readyState === WebSocket.OPEN) armIdle(connection);
  };

  // A subscription's context -> how to make a fresh one for each of its events.
  const eventContexts = new WeakMap<Context, () => Context>();
  const contextOf = (connection: Connection) =>
    liveContext(
      { ...connection.client, principal: connection.principal, expiresAt: connection.expiresAt },
      revocations,
      now,
    );

  const server = makeServer<Record<string, unknown> | undefined, Extra>({
    schema,
    connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
    subscribe: (args) =>
      subscribeWithLimit(args, limiter, (context) => eventContexts.get(context as Context)?.() ?? context),
    async onConnect(ctx) {
      const { socket, request, ip } = ctx.extra;
      const client = { ...clientOf(request), ip };
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
      // Gone while the token was checked: nothing to count.
      if (socket.readyState !== WebSocket.OPEN) return false;
      if (!verdict.principal && anonymousOpen >= budget.maxAnonymousConnections) {
        refused("WS_MAX_ANONYMOUS_CONNECTIONS");
        // Closed first with our code: graphql-ws's own 4403 close then finds the socket closing and does nothing.
        socket.close(SubscriptionClose.TRY_AGAIN_LATER, CloseReason.TOO_MANY_ANONYMOUS);
        return false;
      }
      const connection: Connection = {
        socket,
        client,
        principal: verdict.principal,
        expiresAt: verdict.expiresAt,
        active: new Set(),
      };
      connections.set(socket, connection);
      if (connection.principal) {
        const id = credentialId(connection.principal);
        const sockets = bySession.get(id) ?? new Set();
        sockets.add(connection);
        bySession.set(id, sockets);
        armExpiry(connection);
      } else {
        anonymousOpen += 1;
        armIdle(connection);
      }
      return true;
    },
    onSubscribe(ctx, id, payload): ExecutionArgs | readonly GraphQLError[] {
      const connection = connections.get(ctx.extra.socket)!;
      const result = subscribe(connection, payload);
      if (Array.isArray(result)) metrics.operation("subscription", "error");
      else {
        metrics.operation("subscription", "ok");
        started(connection, id);
      }
      return result;
    },
    onComplete(ctx, id) {
      const connection = connections.get(ctx.extra.socket);
      if (connection) ended(connection, id);
    },
    onError: (_ctx, _id, _payload, errors) => format(errors),
    onNext: (_ctx, _id, _payload, _args, result: ExecutionResult) =>
      limitEventSize(
        result.errors ? { ...result, errors: format(result.errors) } : result,
        config.responseMaxBytes,
        metrics,
      ),
  });

  // Refusals before any document is read: the caps, cheapest first. Undefined: room for one more.
  function overCaps(connection: Connection): GraphQLError | undefined {
    if (connection.active.size >= budget.maxSubscriptionsPerConnection) {
      refused("WS_MAX_SUBSCRIPTIONS_PER_CONNECTION");
      return new GraphQLError(tooManySubscriptionsMessage(budget.maxSubscriptionsPerConnection), {
        extensions: { code: ProtocolErrorCode.BAD_REQUEST },
      });
    }
    if ((byIp.get(connection.client.ip)?.subscriptions ?? 0) >= budget.maxSubscriptionsPerIp) {
      refused("WS_MAX_SUBSCRIPTIONS_PER_IP");
      return new RateLimitedError(CAPACITY_RETRY_AFTER_SECONDS, "Too many subscriptions from this address");
    }
    if (!connection.principal && anonymousActive >= budget.maxAnonymousSubscriptions) {
      refused("WS_MAX_ANONYMOUS_SUBSCRIPTIONS");
      return new RateLimitedError(CAPACITY_RETRY_AFTER_SECONDS, "Too many anonymous subscriptions: sign in");
    }
    if (active >= budget.maxSubscriptions) {
      refused("WS_MAX_SUBSCRIPTIONS");
      return new RateLimitedError(CAPACITY_RETRY_AFTER_SECONDS, "The server holds as many subscriptions as it can");
    }
    return undefined;
  }

  // Checks the caps, then parses, validates and prices one subscription of `connection`.
  function subscribe(
    connection: Connection,
    payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
  ): ExecutionArgs | readonly GraphQLError[] {
    const full = overCaps(connection);
    if (full) return [full];
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
      checkOperationCost({ schema, document, operation, variables: payload.variables ?? undefined }, budget.maxCost, {
        exposeLimits,
      });
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      refused("SUBSCRIPTION_MAX_COST");
      return [error];
    }
    const contextValue = contextOf(connection);
    eventContexts.set(contextValue, () => contextOf(connection));
    return {
      schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue,
    };
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols });

  // The ws adapter (in place of graphql-ws's useServer): the same protocol handling, plus the
  // nesting scan before parsing, sends that never wait for a slow reader, and its bookkeeping.
  const opened = (socket: WebSocket, request: IncomingMessage, ip: string) => {
    open += 1;
    usageOf(ip).sockets += 1;
    metrics.subscriptionOpened();
    const closeForInternalError = (error: unknown) => {
      log.error({ err: error }, "subscription connection failed");
      socket.close(CloseCode.InternalServerError, "Internal server error");
    };
    // ws reports what the client did wrong (a bad frame, a message over 1 MB) and closes the socket
    // itself (1002, 1009): at debug, since anyone can cause it.
    socket.on("error", (error) => log.debug({ err: error }, "subscription socket error"));
    // A peer that stops answering pings is dropped (as graphql-ws's useServer does).
    let alive = true;
    socket.on("pong", () => (alive = true));
    const keepAlive = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, KEEP_ALIVE_MS);
    keepAlive.unref();
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) => {
          if (socket.readyState !== WebSocket.OPEN) return;
          // A reader that does not keep up is closed rather than buffered for without bound; the
          // send does not wait for the bytes to leave, so it never holds a delivery slot.
          if (socket.bufferedAmount > budget.maxBufferedBytes) {
            refused("WS_MAX_BUFFERED_BYTES");
            socket.close(SubscriptionClose.TRY_AGAIN_LATER, CloseReason.SEND_BUFFER_FULL);
            setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
            return;
          }
          // As bytes: ws would keep a string as it is, and the socket's unsent strings would sit in
          // the JavaScript heap, where a thousand slow readers' buffers end the process.
          socket.send(Buffer.from(data, "utf8"), { binary: false });
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on("message", (data: RawData) => {
            const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
            if (deps.messageTooDeep(bytes)) {
              refused("JSON_MAX_NESTING");
              socket.close(SubscriptionClose.BAD_REQUEST, CloseReason.TOO_DEEP);
              return;
            }
            handle(bytes.toString("utf8")).catch(closeForInternalError);
          }),
      },
      { socket, request, ip },
    );
    socket.once("close", (code, reason) => {
      clearInterval(keepAlive);
      open -= 1;
      usageOf(ip).sockets -= 1;
      metrics.subscriptionClosed();
      const connection = connections.get(socket);
      if (connection) {
        forget(connection);
        if (!connection.principal) anonymousOpen -= 1;
      }
      closed(code, String(reason))
        .catch((error: unknown) => log.error({ err: error }, "closing a subscription connection failed"))
        .finally(() => {
          // graphql-ws completes every subscription as it closes; whatever an error left is released here.
          if (connection) for (const id of [...connection.active]) ended(connection, id);
          forgetIpIfUnused(ip);
        });
    });
  };

  let closing = false;
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== SUBSCRIPTIONS_PATH) return refuseUpgrade(socket, 404);
    if (closing) return refuseUpgrade(socket, 503);
    const ip = deps.clientIp(request);
    if (open >= budget.maxConnections) {
      refused("WS_MAX_CONNECTIONS");
      return refuseUpgrade(socket, 503, "The server holds as many WebSocket connections as it can.");
    }
    if ((byIp.get(ip)?.sockets ?? 0) >= budget.maxConnectionsPerIp) {
      refused("WS_MAX_CONNECTIONS_PER_IP");
      return refuseUpgrade(socket, 429, "Too many WebSocket connections from this address.");
    }
    wss.handleUpgrade(request, socket, head, (ws) => opened(ws, request, ip));
  };
  deps.httpServer.on("upgrade", onUpgrade);

  let disposed: Promise<void> | undefined;
  return {
    get size() {
      return open;
    },
    get subscriptions() {
      return active;
    },
    dispose() {
      disposed ??= (async () => {
        closing = true;
        stopListening();
        deps.httpServer.off("upgrade", onUpgrade);
        for (const socket of wss.clients) socket.close(SubscriptionClose.GOING_AWAY, "Going away");
        // Each socket finishes closing when its client answers; one that never does is dropped
        // after CLOSE_GRACE_MS rather than holding shutdown up.
        const drop = setTimeout(() => {
          for (const socket of wss.clients) socket.terminate();
        }, CLOSE_GRACE_MS);
        drop.unref();
        try {
          await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
        } finally {
          clearTimeout(drop);
        }
      })();
      return disposed;
    },
  };
}

const STATUS_TEXT: Record<number, string> = {
  404: "Not Found",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

/**
 * Answers an upgrade request without upgrading: 404 off the GraphQL path; 429 and 503 (with
 * Retry-After and a JSON error naming the limit's code) when a cap is full or the server is closing.
 */
function refuseUpgrade(socket: Duplex, status: 404 | 429 | 503, message?: string): void {
  const head = [`HTTP/1.1 ${status} ${STATUS_TEXT[status]}`, "Connection: close"];
  let body = "";
  if (status !== 404) {
    head.push(`Retry-After: ${CAPACITY_RETRY_AFTER_SECONDS}`);
    if (message) {
      const code = status === 429 ? "RATE_LIMITED" : "SERVICE_UNAVAILABLE";
      body = JSON.stringify({
        errors: [
          {
            message: `${message} Try again in ${CAPACITY_RETRY_AFTER_SECONDS} seconds.`,
            extensions: { code, retryAfter: CAPACITY_RETRY_AFTER_SECONDS },
          },
        ],
      });
      head.push("Content-Type: application/json; charset=utf-8");
    }
  }
  head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
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

/** Where a connection came from, as sessions and audit events record it (with the IP the caller read); the id names it in the logs. */
function clientOf(request: IncomingMessage): Omit<Connection["client"], "ip"> {
  return { requestId: randomUUID(), userAgent: request.headers["user-agent"] };
}
