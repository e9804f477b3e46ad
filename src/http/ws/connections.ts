import type { IncomingMessage } from "node:http";

import type { Logger } from "pino";
import WebSocket from "ws";

import { type ClientInfo, credentialId, type Principal } from "../../access/principal.js";
import type { EndCause } from "../../access/revocation-list.js";
import type { SubscriptionLimits } from "../../config.js";
import type { MetricsRecorder } from "../../metrics.js";
import type { RequestInfoReader } from "../request-info.js";
import { CloseReason, endedReason, expiredReason, type ForbiddenReason, SubscriptionClose } from "./close-codes.js";

/** How long a connection may take to send `connection_init`; graphql-ws closes it with 4408 after that. */
export const CONNECTION_INIT_TIMEOUT_MS = 5000;
/** The largest message a client may send, the same as the largest HTTP body (ws's own default is 100 MiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** What a refused upgrade or subscription tells a client to wait (`Retry-After`, `retryAfter`), in seconds. */
export const CAPACITY_RETRY_AFTER_SECONDS = 5;
/** How often the server pings each socket; one that has not answered by the next ping is dropped (graphql-ws's default). */
const KEEP_ALIVE_MS = 12_000;
/** How long graceful shutdown (and a socket closed for its backlog) waits for a client to answer the close before dropping its socket. */
export const CLOSE_GRACE_MS = 1000;
/** setTimeout's longest delay; an expiry further off is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Where a connection came from, as sessions and audit events record it; the request id names it in the logs. */
export type Client = ClientInfo & { readonly requestId: string; readonly ip: string };

/** The client of an upgrade request, read once as every way in reads a request (http/request-info.ts). */
export function clientOf(request: IncomingMessage, readRequest: RequestInfoReader): Client {
  const { id, ip, userAgent } = readRequest(request);
  return { requestId: id, ip, userAgent };
}

/** What one connection proved at connect (or at its last renewal), its subscriptions, and the timers that end it. */
export interface Connection {
  readonly socket: WebSocket;
  readonly client: Client;
  /** Replaced only by {@link Connections.renew}, by a token of the same session or API token. */
  principal: Principal | null;
  expiresAt: number | undefined;
  /** The ids of its subscriptions that count against the caps (accepted and not yet completed). */
  readonly active: Set<string>;
  expiryTimer?: NodeJS.Timeout;
  idleTimer?: NodeJS.Timeout;
}

/** The active subscriptions the caps count (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION, …_PER_IP, WS_MAX_ANONYMOUS_SUBSCRIPTIONS, WS_MAX_SUBSCRIPTIONS). */
export interface SubscriptionsHeld {
  readonly onConnection: number;
  readonly fromIp: number;
  readonly anonymous: number;
  readonly all: number;
}

/**
 * What the open sockets hold, counted against `config.subscriptions`' caps, and the timers that end
 * them: sockets in all and per client IP (at the upgrade), anonymous sockets (at
 * `connection_init`, so signed-in users keep a share), subscriptions per connection, per IP,
 * anonymous and in all (at `subscribe`); a token's expiry (moved by each renewal,
 * {@link Connections.renew}) and an anonymous socket's idleness close the socket, and so does the
 * end of its session ({@link Connections.endCredential}), each 4403 with its reason (./close-codes.ts).
 */
export class Connections {
  private readonly bySocket = new WeakMap<WebSocket, Connection>();
  // The credential (session or API token) -> sockets index that ended credentials are looked up in.
  private readonly byCredential = new Map<string, Set<Connection>>();
  // What each client IP holds: open sockets (from the upgrade) and active subscriptions.
  private readonly byIp = new Map<string, { sockets: number; subscriptions: number }>();
  private open = 0;
  private anonymousOpen = 0;
  private active = 0;
  private anonymousActive = 0;

  constructor(
    private readonly budget: SubscriptionLimits,
    private readonly metrics: MetricsRecorder,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** Open sockets. */
  get size(): number {
    return this.open;
  }

  /** Active subscriptions on every socket. */
  get subscriptions(): number {
    return this.active;
  }

  /** At the upgrade, before any WebSocket exists: the HTTP refusal when the sockets in all, or the client's, are at their cap. */
  upgradeRefusal(ip: string): { status: 429 | 503; message: string } | undefined {
    if (this.open >= this.budget.maxConnections) {
      this.metrics.limitReached("WS_MAX_CONNECTIONS");
      return { status: 503, message: "The server holds as many WebSocket connections as it can." };
    }
    if ((this.byIp.get(ip)?.sockets ?? 0) >= this.budget.maxConnectionsPerIp) {
      this.metrics.limitReached("WS_MAX_CONNECTIONS_PER_IP");
      return { status: 429, message: "Too many WebSocket connections from this address." };
    }
    return undefined;
  }

  /** A socket upgraded: it counts against the caps until {@link socketClosed}. */
  socketOpened(ip: string): void {
    this.open += 1;
    this.usageOf(ip).sockets += 1;
    this.metrics.subscriptionOpened();
  }

  /**
   * `connection_init` with an accepted token (`principal` null: anonymous). False when the socket
   * closed while the token was checked, or when it is anonymous and the anonymous sockets are at
   * their cap (closed with 1013 first, so that graphql-ws's own 4403 close then finds it closing and
   * does nothing). Otherwise the connection counts from now, its expiry (or idle timer) armed.
   */
  admit(socket: WebSocket, client: Client, proof: Pick<Connection, "principal" | "expiresAt">): boolean {
    if (socket.readyState !== WebSocket.OPEN) return false;
    if (!proof.principal && this.anonymousOpen >= this.budget.maxAnonymousConnections) {
      this.metrics.limitReached("WS_MAX_ANONYMOUS_CONNECTIONS");
      socket.close(SubscriptionClose.TRY_AGAIN_LATER, CloseReason.TOO_MANY_ANONYMOUS);
      return false;
    }
    const connection: Connection = { socket, client, ...proof, active: new Set() };
    this.bySocket.set(socket, connection);
    if (connection.principal) {
      const id = credentialId(connection.principal);
      const sockets = this.byCredential.get(id) ?? new Set();
      sockets.add(connection);
      this.byCredential.set(id, sockets);
      this.armExpiry(connection);
    } else {
      this.anonymousOpen += 1;
      this.armIdle(connection);
    }
    return true;
  }

  /** The connection of a socket that got past `connection_init`. */
  of(socket: WebSocket): Connection | undefined {
    return this.bySocket.get(socket);
  }

  /** What the caps count for a new subscription of `connection`: its own, its IP's, the anonymous ones and all. */
  held(connection: Connection): SubscriptionsHeld {
    return {
      onConnection: connection.active.size,
      fromIp: this.byIp.get(connection.client.ip)?.subscriptions ?? 0,
      anonymous: this.anonymousActive,
      all: this.active,
    };
  }

  /** A subscription counts against the caps from its acceptance until it completes (or its socket closes). */
  started(connection: Connection, id: string): void {
    connection.active.add(id);
    this.active += 1;
    if (!connection.principal) this.anonymousActive += 1;
    this.usageOf(connection.client.ip).subscriptions += 1;
    this.metrics.subscriptionStarted();
    clearTimeout(connection.idleTimer);
  }

  ended(connection: Connection, id: string): void {
    if (!connection.active.delete(id)) return;
    this.active -= 1;
    if (!connection.principal) this.anonymousActive -= 1;
    this.usageOf(connection.client.ip).subscriptions -= 1;
    this.forgetIpIfUnused(connection.client.ip);
    this.metrics.subscriptionEnded();
    if (connection.socket.readyState === WebSocket.OPEN) this.armIdle(connection);
  }

  /** Closes every socket of an ended session (or revoked API token) with 4403, saying why. */
  endCredential(credential: string, cause: EndCause): void {
    const sockets = this.byCredential.get(credential);
    if (!sockets) return;
    for (const connection of [...sockets]) this.end(connection, endedReason(connection.principal!, cause));
  }

  /**
   * A renewal: the connection's principal becomes that of a new token of the same session (or API
   * token, so the credential index stays as it is), and its expiry moves to that token's.
   */
  renew(connection: Connection, principal: Principal, expiresAt: number | undefined): void {
    clearTimeout(connection.expiryTimer);
    connection.principal = principal;
    connection.expiresAt = expiresAt;
    this.armExpiry(connection);
  }

  /**
   * A socket closed: it no longer counts, and its timers stop. Returns its connection (if it got past
   * `connection_init`), whose subscriptions {@link released} frees once graphql-ws has completed them.
   */
  socketClosed(socket: WebSocket, ip: string): Connection | undefined {
    this.open -= 1;
    this.usageOf(ip).sockets -= 1;
    this.metrics.subscriptionClosed();
    const connection = this.bySocket.get(socket);
    if (connection) {
      this.forget(connection);
      if (!connection.principal) this.anonymousOpen -= 1;
    }
    return connection;
  }

  /** After graphql-ws completed a closed socket's subscriptions: whatever an error left is released here. */
  released(connection: Connection | undefined, ip: string): void {
    if (connection) for (const id of [...connection.active]) this.ended(connection, id);
    this.forgetIpIfUnused(ip);
  }

  private usageOf(ip: string): { sockets: number; subscriptions: number } {
    let usage = this.byIp.get(ip);
    if (!usage) this.byIp.set(ip, (usage = { sockets: 0, subscriptions: 0 }));
    return usage;
  }

  private forgetIpIfUnused(ip: string): void {
    const usage = this.byIp.get(ip);
    if (usage && usage.sockets <= 0 && usage.subscriptions <= 0) this.byIp.delete(ip);
  }

  private forget(connection: Connection): void {
    clearTimeout(connection.expiryTimer);
    clearTimeout(connection.idleTimer);
    if (!connection.principal) return;
    const credential = credentialId(connection.principal);
    const sockets = this.byCredential.get(credential);
    sockets?.delete(connection);
    if (sockets?.size === 0) this.byCredential.delete(credential);
  }

  private end(connection: Connection, reason: ForbiddenReason): void {
    this.forget(connection);
    this.log.debug({ reqId: connection.client.requestId, reason }, "subscription connection closed for its token");
    connection.socket.close(SubscriptionClose.FORBIDDEN, reason);
  }

  private armExpiry(connection: Connection): void {
    if (connection.expiresAt === undefined) return;
    const delay = connection.expiresAt - this.now();
    if (delay <= 0) return this.end(connection, expiredReason(connection.principal!));
    connection.expiryTimer = setTimeout(() => this.armExpiry(connection), Math.min(delay, MAX_TIMER_MS));
    connection.expiryTimer.unref();
  }

  // An anonymous socket is worth holding only while it has a subscription: pings alone do not count.
  private armIdle(connection: Connection): void {
    if (connection.principal || connection.active.size > 0) return;
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      this.metrics.limitReached("WS_ANONYMOUS_IDLE_TIMEOUT");
      this.log.debug({ reqId: connection.client.requestId }, "idle anonymous subscription connection closed");
      connection.socket.close(SubscriptionClose.TIMEOUT, CloseReason.IDLE);
    }, this.budget.anonymousIdleMs);
    connection.idleTimer.unref();
  }
}

/** Pings `socket` every KEEP_ALIVE_MS and drops it when the last ping went unanswered (as graphql-ws's useServer does); returns the stop. */
export function keepAlive(socket: WebSocket): () => void {
  let alive = true;
  socket.on("pong", () => (alive = true));
  const timer = setInterval(() => {
    if (!alive) return socket.terminate();
    alive = false;
    socket.ping();
  }, KEEP_ALIVE_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Sends `data` on `socket` without waiting for the bytes to leave, so a send never holds a delivery
 * slot. A reader that does not keep up (its unsent bytes past `maxBufferedBytes`) is closed with
 * 1013 rather than buffered for without bound, and dropped if it does not answer the close;
 * `onFull` hears of it.
 */
export function sendWithin(socket: WebSocket, data: string, maxBufferedBytes: number, onFull: () => void): void {
  if (socket.readyState !== WebSocket.OPEN) return;
  if (socket.bufferedAmount > maxBufferedBytes) {
    onFull();
    socket.close(SubscriptionClose.TRY_AGAIN_LATER, CloseReason.SEND_BUFFER_FULL);
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
    return;
  }
  // As bytes: ws would keep a string as it is, and the socket's unsent strings would sit in the
  // JavaScript heap, where a thousand slow readers' buffers end the process.
  socket.send(Buffer.from(data, "utf8"), { binary: false });
}
