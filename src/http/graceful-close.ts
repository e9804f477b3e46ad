import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

import type { FastifyInstance } from "fastify";

/** How often idle connections are looked for while the server is closing. */
const IDLE_SWEEP_MS = 50;

/**
 * While closing, how long a connection must have been idle (nothing read since its last response,
 * or since it was accepted) before it is closed: long enough for a request already on its way to
 * arrive and be answered, short enough not to hold the shutdown.
 */
const IDLE_BEFORE_CLOSE_MS = 500;

/** What the shutdown of the HTTP server looks like to the routes. */
export interface GracefulClose {
  /** True from the moment the drain (or closing) starts: /readyz answers 503. */
  isClosing: () => boolean;
  /**
   * Whether responses now say `Connection: close`: during the drain, and once the listener is
   * closed; not in between, while the listener closes, so that clients do not reconnect right then.
   */
  closesConnections: () => boolean;
  /**
   * Starts the drain of SHUTDOWN_DRAIN (main.ts calls it on SIGTERM): requests are still served on
   * every connection and new connections are still accepted, but /readyz answers 503 so that load
   * balancers stop sending new ones, and every response says `Connection: close` so that clients
   * with keep-alive connections open new ones (to another instance) for their next request.
   */
  drain: () => void;
  /**
   * The last `preClose` hook (register it after every other): lets the event loop accept the
   * connections queued on the listener and read what they sent, just before Fastify closes the
   * listener (which resets whatever is still queued), and from then on responses close their
   * connections.
   */
  beforeListenerCloses: () => Promise<void>;
}

interface Connection {
  /** Requests whose response has not finished. */
  active: number;
  /** When it last turned idle (accepted, or its last response finished). */
  idleSince: number;
  /** `socket.bytesRead` then: more since means a request has begun arriving. */
  bytesReadWhenIdle: number;
}

/**
 * Lets `server.close()` finish while clients keep connections alive, without resetting a request
 * that has already reached the server. During the drain, and from the moment the listener closes,
 * every response says `Connection: close` (Node then ends its socket after it; the client's next
 * request finds the port closed rather than a connection reset), and from the moment closing starts
 * connections that are idle are closed by a sweep every {@link IDLE_SWEEP_MS} ms, so shutdown no longer waits out
 * keep-alive connections (under load it used to wait the whole grace period and exit 1). Requests
 * that arrive on an open connection meanwhile are served as usual (Fastify's `return503OnClosing:
 * false`) instead of getting a 503.
 *
 * Node's own `closeIdleConnections()` (which `server.close()` and Fastify call) is replaced by that
 * sweep, because "idle" there is what Node has parsed: a request the client already sent on a
 * keep-alive or just-accepted connection, still waiting in the kernel's buffer while the event
 * loop was busy, looked idle, and closing a socket with unread data sends a TCP reset (2 to 15
 * requests reset in 5 of 8 runs under load). Here a connection is idle only when nothing has been
 * read on it since its last response (or since it was accepted) for {@link IDLE_BEFORE_CLOSE_MS}
 * ms, after the event loop has polled: what reached the server is read, so answered (with
 * `Connection: close`). WebSockets are left to the subscription server, which closes them first.
 */
export function closeConnectionsWhenClosing(server: FastifyInstance): GracefulClose {
  // open → draining (SIGTERM with SHUTDOWN_DRAIN) → closing (preClose: the listener is still open)
  // → closed (the listener closed; in-flight requests finish).
  let state: "open" | "draining" | "closing" | "closed" = "open";
  const closesConnections = () => state === "draining" || state === "closed";
  let sweep: NodeJS.Timeout | undefined;
  const tracked = trackConnections(server.server);
  let closingSince = Infinity;
  const closeIdle = idleCloser(tracked.connections, () => closingSince);
  // An own property shadows node:http's method: server.close() and Fastify call it on closing.
  server.server.closeIdleConnections = closeIdle;

  server.addHook("preClose", (done) => {
    state = "closing";
    closingSince = performance.now();
    sweep = setInterval(closeIdle, IDLE_SWEEP_MS);
    sweep.unref();
    done();
  });
  server.addHook("onSend", (_request, reply, payload, done) => {
    if (closesConnections()) reply.header("connection", "close");
    done(null, payload);
  });
  server.addHook("onClose", (_instance, done) => {
    clearInterval(sweep);
    done();
  });
  // The GraphQL route on node:http (graphql-route.ts) sets Connection: close from the same flag.
  return {
    isClosing: () => state !== "open",
    closesConnections,
    drain: () => {
      if (state === "open") state = "draining";
    },
    beforeListenerCloses: async () => {
      // libuv accepts one queued connection per turn of the event loop: turn until a turn accepts
      // none, then once more so that what those sent is read.
      for (let turns = 0, before = -1; turns < MAX_ACCEPT_TURNS && tracked.accepted() !== before; turns++) {
        before = tracked.accepted();
        await nextTurn();
      }
      await afterPendingReads();
      // Fastify closes the listener right after this hook, with no I/O in between: a client told
      // to close from now on finds the port closed (ECONNREFUSED, before it sends anything).
      state = "closed";
    },
  };
}

/** Every HTTP connection of `http` with its requests in flight, and how many were ever accepted. */
function trackConnections(http: Server): { connections: Map<Socket, Connection>; accepted: () => number } {
  const connections = new Map<Socket, Connection>();
  let accepted = 0;
  http.on("connection", (socket: Socket) => {
    accepted++;
    connections.set(socket, { active: 0, idleSince: performance.now(), bytesReadWhenIdle: 0 });
    socket.once("close", () => connections.delete(socket));
  });
  http.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const connection = connections.get(request.socket);
    if (connection === undefined) return;
    connection.active++;
    response.once("close", () => {
      connection.active--;
      connection.idleSince = performance.now();
      connection.bytesReadWhenIdle = request.socket.bytesRead;
    });
  });
  // An upgraded socket belongs to the WebSocket server from then on.
  http.on("upgrade", (request: IncomingMessage) => connections.delete(request.socket));
  return { connections, accepted: () => accepted };
}

/** The sweep that closes the connections idle for {@link IDLE_BEFORE_CLOSE_MS}, once reads have caught up. */
function idleCloser(connections: Map<Socket, Connection>, closingSince: () => number): () => void {
  let sweeping = false;
  return () => {
    if (sweeping) return;
    sweeping = true;
    void afterPendingReads().then(async () => {
      // Only right after a quick turn of the event loop: a request that arrived while the last
      // turn ran callbacks is still unread, and closing its socket would reset it. Under load the
      // sweep waits for a quiet turn; past CLOSE_IDLE_ANYWAY_MS of closing it no longer waits.
      const quiet = await quietTurn();
      sweeping = false;
      const now = performance.now();
      if (!quiet && now - closingSince() < CLOSE_IDLE_ANYWAY_MS) return;
      for (const [socket, connection] of connections) {
        if (connection.active > 0) continue;
        if (socket.bytesRead !== connection.bytesReadWhenIdle) continue;
        if (now - connection.idleSince < IDLE_BEFORE_CLOSE_MS) continue;
        socket.destroy();
      }
    });
  };
}

/** After closing for this long, idle connections are closed even when the event loop stays busy. */
const CLOSE_IDLE_ANYWAY_MS = 2000;

/** A turn of the event loop shorter than this ran no callback worth the name. */
const QUIET_TURN_MS = 1;

/** Whether the next turn of the event loop took less than {@link QUIET_TURN_MS}. */
async function quietTurn(): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  const started = performance.now();
  await new Promise((resolve) => setImmediate(resolve));
  return performance.now() - started < QUIET_TURN_MS;
}

/** At most this many turns of the event loop are spent accepting queued connections before the listener closes. */
const MAX_ACCEPT_TURNS = 1000;

/** Resolves in the next turn of the event loop, after its poll phase. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * Resolves after the event loop has run at least two whole poll phases: one to accept connections
 * queued on the listener (and read what is ready), one more to read what arrived with those. Each
 * `setImmediate` queued from an immediate runs in the next turn, after that turn's poll; three
 * hops make two whole polls whichever phase this is called from.
 */
function afterPendingReads(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(() => setImmediate(resolve))));
}
