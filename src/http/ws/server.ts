import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";

import type { GraphQLSchema } from "graphql";
import { CloseCode, handleProtocols, makeServer, type Server as ProtocolServer } from "graphql-ws";
import type { Logger } from "pino";
import WebSocket, { type RawData, WebSocketServer } from "ws";

import type { ApiTokenVerifier } from "../../access/api-tokens.js";
import type { RejectionReason, TokenHolder } from "../../access/bearer.js";
import type { ClientInfo } from "../../access/principal.js";
import type { RevocationList } from "../../access/revocation-list.js";
import type { TokenService } from "../../access/tokens.js";
import type { Config, SubscriptionLimits } from "../../config.js";
import { createOperationRules } from "../../graphql/operation-rules.js";
import { type MetricsRecorder, NO_METRICS } from "../../metrics.js";
import type { RequestInfoReader } from "../request-info.js";
import { CloseReason, SubscriptionClose } from "./close-codes.js";
import {
  CAPACITY_RETRY_AFTER_SECONDS,
  type Client,
  clientOf,
  CLOSE_GRACE_MS,
  CONNECTION_INIT_TIMEOUT_MS,
  Connections,
  keepAlive,
  MAX_MESSAGE_BYTES,
  sendWithin,
} from "./connections.js";
import { callerOf, createOperations, type Operations, type OperationsDeps } from "./operation.js";
import { createSocketTokens, type SocketTokens } from "./token.js";

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

export interface SubscriptionServerDeps {
  httpServer: HttpServer;
  schema: GraphQLSchema;
  config: Config;
  logger: Logger;
  tokens: TokenService;
  apiTokens: ApiTokenVerifier;
  revocations: RevocationList;
  /** Told of every refused token, like the HTTP path's; must not wait for anything. */
  onRejected: (client: ClientInfo, reason: RejectionReason, holder?: TokenHolder) => void;
  /**
   * Reads an upgrade request as every HTTP route reads one (http/request-info.ts: our request id, the
   * IP with TRUST_PROXY, the user agent): the per-IP caps count by that IP, logs and audit rows record it.
   */
  readRequest: RequestInfoReader;
  /** Whether a message nests deeper than JSON_MAX_NESTING (http/json-nesting.ts's byte scan), asked before graphql-ws parses it. */
  messageTooDeep: (message: Buffer) => boolean;
  /** HTTP's TRUSTED_DOCUMENTS gate (../document-gate.ts), asked at each `subscribe` before the document is read. */
  documentGate: OperationsDeps["gate"];
  now?: () => number;
  /** Open connections and active subscriptions (gauges), subscriptions started or refused, refusals by limit. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

export interface SubscriptionServer {
  /** Open connections; for tests and diagnostics. */
  readonly size: number;
  /** Active subscriptions on every connection; for tests and diagnostics. */
  readonly subscriptions: number;
  /** Closes every socket with 1001 (dropping those that do not answer within a second) and stops accepting. */
  dispose(): Promise<void>;
}

/** What graphql-ws's hooks get with each connection: the socket and its client, read at the upgrade. */
interface Extra {
  readonly socket: WebSocket;
  readonly client: Client;
}

/** What the parts below share: the deps, the sockets' book and the operations' way through. */
interface Parts {
  readonly deps: SubscriptionServerDeps;
  readonly log: Logger;
  readonly metrics: MetricsRecorder;
  readonly connections: Connections;
  readonly operations: Operations;
  readonly tokens: SocketTokens;
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws's `graphql-transport-ws` protocol on its
 * `makeServer`, with a small ws adapter of our own) on the HTTP server's port and path. Its rules:
 *
 * - Authentication at `connection_init`: `connectionParams.authorization` (or `Authorization`)
 *   goes through the HTTP path's own check (access/bearer.ts's verifyBearer). None: anonymous.
 *   Refused: the socket is closed with 4403 and HTTP's reason, and the refusal is reported like an
 *   HTTP 401. A `ping` with `authorization` renews the token in-band (./token.ts).
 * - Token lifetime: the socket is closed with 4403 when its token expires (a timer at `exp`, moved
 *   by each renewal) and as soon as the revocation list learns its session ended, on any instance
 *   (./close-codes.ts). Each operation's context reads the connection's principal at every access,
 *   so a renewal or a role change applies to the next event; an ended session is anonymous.
 * - Budgets (config.subscriptions, docs/limits.md), each refused at the cheapest point: sockets in
 *   all and per client IP at the upgrade (HTTP 503 or 429 with Retry-After, before any WebSocket
 *   exists); anonymous sockets at `connection_init` (close 1013), so signed-in users keep a share,
 *   and without a subscription for WS_ANONYMOUS_IDLE_TIMEOUT (4408); subscriptions per connection,
 *   per IP, anonymous and in all at `subscribe` (an `error` message); messages nested deeper than
 *   JSON_MAX_NESTING before graphql-ws parses them (4400); a socket whose unsent bytes pass
 *   WS_MAX_BUFFERED_BYTES (1013). `connection_init` within {@link CONNECTION_INIT_TIMEOUT_MS}.
 * - Only subscriptions, past HTTP's document gate, through its parse, validation, limits and error
 *   formatting, with the much lower SUBSCRIPTION_MAX_COST (./operation.ts).
 */
export function createSubscriptionServer(deps: SubscriptionServerDeps): SubscriptionServer {
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? NO_METRICS;
  const log = deps.logger.child({ component: "subscriptions" });
  const connections = new Connections(deps.config.subscriptions, metrics, log, now);
  const operations = createOperations({
    schema: deps.schema,
    config: deps.config,
    rules: createOperationRules(deps.config, metrics),
    gate: deps.documentGate,
    revocations: deps.revocations,
    now,
    metrics,
    report: (error) => log.error({ err: error }, "unexpected error"),
  });
  const tokens = createSocketTokens({ ...deps, connections, metrics, log, now });
  const parts: Parts = { deps, log, metrics, connections, operations, tokens };
  const protocol = protocolServer(parts);
  const stopListening = deps.revocations.onSessionEnded((id, cause) => connections.endCredential(id, cause));
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols });

  let closing = false;
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== SUBSCRIPTIONS_PATH) return refuseUpgrade(socket, 404);
    if (closing) return refuseUpgrade(socket, 503);
    const client = clientOf(request, deps.readRequest);
    const refusal = connections.upgradeRefusal(client.ip);
    if (refusal) return refuseUpgrade(socket, refusal.status, refusal.message);
    wss.handleUpgrade(request, socket, head, (ws) => attach(parts, protocol, ws, client));
  };
  deps.httpServer.on("upgrade", onUpgrade);

  let disposed: Promise<void> | undefined;
  return {
    get size() {
      return connections.size;
    },
    get subscriptions() {
      return connections.subscriptions;
    },
    dispose() {
      disposed ??= (async () => {
        closing = true;
        stopListening();
        deps.httpServer.off("upgrade", onUpgrade);
        await closeAll(wss);
      })();
      return disposed;
    },
  };
}

// graphql-ws's protocol with this API's hooks: the token at connect, caps and HTTP's rules at subscribe.
function protocolServer({ deps, metrics, connections, operations, tokens }: Parts): ProtocolServer<Extra> {
  return makeServer<Record<string, unknown> | undefined, Extra>({
    schema: deps.schema,
    connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
    subscribe: (args) => operations.subscribe(args),
    async onConnect(ctx) {
      const { socket, client } = ctx.extra;
      const proof = await tokens.atConnect(socket, client, ctx.connectionParams);
      return proof !== undefined && connections.admit(socket, client, proof);
    },
    onSubscribe(ctx, id, payload) {
      const connection = connections.of(ctx.extra.socket)!;
      const result = operations.prepare(callerOf(connection), connections.held(connection), payload);
      if (Array.isArray(result)) metrics.operation("subscription", "error");
      else {
        metrics.operation("subscription", "ok");
        connections.started(connection, id);
      }
      return result;
    },
    onComplete(ctx, id) {
      const connection = connections.of(ctx.extra.socket);
      if (connection) connections.ended(connection, id);
    },
    onError: (_ctx, _id, _payload, errors) => operations.formatErrors(errors),
    onNext: (_ctx, _id, _payload, _args, result) => operations.formatEvent(result),
  });
}

// The ws adapter (in place of graphql-ws's useServer): the same protocol handling, plus the
// nesting scan before parsing, sends that never wait for a slow reader, the caps' bookkeeping, and
// pings answered by ./token.ts (a renewal, or a keep-alive).
function attach(parts: Parts, protocol: ProtocolServer<Extra>, socket: WebSocket, client: Client): void {
  const { deps, log, metrics, connections, tokens } = parts;
  connections.socketOpened(client.ip);
  // ws reports what the client did wrong (a bad frame, a message over 1 MB) and closes the socket
  // itself (1002, 1009): at debug, since anyone can cause it.
  socket.on("error", (error) => log.debug({ err: error }, "subscription socket error"));
  const stopKeepAlive = keepAlive(socket);
  const maxBufferedBytes = deps.config.subscriptions.maxBufferedBytes;
  const send = (data: string) =>
    sendWithin(socket, data, maxBufferedBytes, () => metrics.limitReached("WS_MAX_BUFFERED_BYTES"));
  const closed = protocol.opened(
    {
      protocol: socket.protocol,
      send,
      close: (code, reason) => socket.close(code, reason),
      onPing: (payload) => tokens.ping(socket, client, payload, send),
      onMessage: (handle) => socket.on("message", (data: RawData) => received(parts, socket, data, handle)),
    },
    { socket, client },
  );
  socket.once("close", (code, reason) => {
    stopKeepAlive();
    const connection = connections.socketClosed(socket, client.ip);
    closed(code, String(reason))
      .catch((error: unknown) => log.error({ err: error }, "closing a subscription connection failed"))
      // graphql-ws completes every subscription as it closes; whatever an error left is released here.
      .finally(() => connections.released(connection, client.ip));
  });
}

// One message from the client: refused (close 4400) when it nests too deeply, else graphql-ws's.
function received(parts: Parts, socket: WebSocket, data: RawData, handle: (data: string) => Promise<void>): void {
  const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  if (parts.deps.messageTooDeep(bytes)) {
    parts.metrics.limitReached("JSON_MAX_NESTING");
    socket.close(SubscriptionClose.BAD_REQUEST, CloseReason.TOO_DEEP);
    return;
  }
  handle(bytes.toString("utf8")).catch((error: unknown) => {
    parts.log.error({ err: error }, "subscription connection failed");
    socket.close(CloseCode.InternalServerError, "Internal server error");
  });
}

// Closes every socket with 1001; each finishes closing when its client answers, and one that never
// does is dropped after CLOSE_GRACE_MS rather than holding shutdown up.
async function closeAll(wss: WebSocketServer): Promise<void> {
  for (const socket of wss.clients) socket.close(SubscriptionClose.GOING_AWAY, "Going away");
  const drop = setTimeout(() => {
    for (const socket of wss.clients) socket.terminate();
  }, CLOSE_GRACE_MS);
  drop.unref();
  try {
    await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
  } finally {
    clearTimeout(drop);
  }
}

/**
 * Answers an upgrade request without upgrading: 404 off the GraphQL path; 503 with Retry-After while
 * closing; 429 and 503 with Retry-After and a JSON error naming the limit's code when a cap is full.
 */
export function refuseUpgrade(socket: Duplex, status: 404 | 429 | 503, message?: string): void {
  const text = status === 404 ? "Not Found" : status === 429 ? "Too Many Requests" : "Service Unavailable";
  const head = [`HTTP/1.1 ${status} ${text}`, "Connection: close"];
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
