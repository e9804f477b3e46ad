// The edges of the one HTTP server every way in shares (the node:http GraphQL route, Fastify's
// routes and the WebSocket upgrades): how long a client may take to send a request, how long an idle
// keep-alive connection is kept, how many connections are open at once, and what a client whose
// request broke one of these is answered. Set once here, for every route.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

import type { CrossRule, HttpLimits } from "../config.js";
import { ProtocolErrorCode } from "../errors.js";
import type { MetricsRecorder } from "../metrics.js";
import { EDGE_MESSAGES, errorJson } from "./error-body.js";

/** HTTP_HEADERS_TIMEOUT and HTTP_REQUEST_TIMEOUT: the headers are part of the request. */
export const headersTimeoutProblem: CrossRule = (config) =>
  config && config.http.headersTimeoutMs > config.http.requestTimeoutMs
    ? "HTTP_HEADERS_TIMEOUT must not be longer than HTTP_REQUEST_TIMEOUT (the headers are part of the request)"
    : undefined;

/** The HTTP limits when their variables are unset (SHUTDOWN_DRAIN's only in production). */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1500,
  maxBodyBytesInFlight: 64 * 1024 * 1024,
  /** Production's drain; development and tests stop at once unless SHUTDOWN_DRAIN says otherwise. */
  shutdownDrainMs: 5_000,
});

/** The server and the handler of its client errors, which Fastify takes as its `clientErrorHandler`. */
export interface ConnectionEdges {
  /** A node:http server with the limits set, serving `handler`; not listening. */
  createServer: (handler: RequestListener) => Server;
  /** Answers a request that broke the protocol or a timeout: a JSON error body, then the connection closes. */
  clientErrorHandler: (error: NodeJS.ErrnoException, socket: Socket) => void;
}

/**
 * The limits of {@link HttpLimits} on a node:http server:
 * - `headersTimeout` and `requestTimeout`: a client that has not sent a request's headers, or the
 *   whole request with its body, in time gets 408 and its connection is closed. Node checks them
 *   every `connectionsCheckingInterval` (30 s by default, which is how slow headers were held for
 *   90 s): here a quarter of the headers timeout, at most a second, so a timeout holds to within
 *   about a second.
 * - `keepAliveTimeout`: an idle keep-alive connection is closed after it (Node also tells the
 *   client in `Keep-Alive: timeout=…`, so well-behaved clients stop reusing it first).
 * - `maxConnections`: a connection past the cap is closed as soon as it is accepted, before any
 *   byte is read, and counted. WebSockets are connections too: the cap is the sum of both.
 */
export function connectionEdges(limits: HttpLimits, metrics: MetricsRecorder): ConnectionEdges {
  // The last request whose headers arrived on each socket: whether its body was still arriving
  // tells a request timeout (body too slow) from a headers timeout, and a response already begun
  // must not be followed by an error response.
  const lastRequest = new WeakMap<Socket, { request: IncomingMessage; response: ServerResponse }>();
  return {
    createServer(handler) {
      const server = createServer(
        {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          connectionsCheckingInterval: Math.min(1000, Math.max(100, limits.headersTimeoutMs / 4)),
        },
        handler,
      );
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
      server.maxConnections = limits.maxConnections;
      server.on("drop", () => metrics.limitReached("HTTP_MAX_CONNECTIONS"));
      server.on("request", (request: IncomingMessage, response: ServerResponse) =>
        lastRequest.set(request.socket, { request, response }),
      );
      return server;
    },

    clientErrorHandler(error, socket) {
      // A reset connection has nobody to answer.
      if (error.code === "ECONNRESET" || socket.destroyed) return;
      let status = 400;
      let message: string = EDGE_MESSAGES.unreadable;
      if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
        status = 408;
        const request = lastRequest.get(socket)?.request;
        if (request !== undefined && !request.complete) {
          metrics.limitReached("HTTP_REQUEST_TIMEOUT");
          message = EDGE_MESSAGES.requestTimeout(limits.requestTimeoutMs / 1000);
        } else {
          metrics.limitReached("HTTP_HEADERS_TIMEOUT");
          message = EDGE_MESSAGES.headersTimeout(limits.headersTimeoutMs / 1000);
        }
      } else if (error.code === "HPE_HEADER_OVERFLOW") {
        status = 431;
        message = EDGE_MESSAGES.headersTooLarge;
      }
      // Nothing may be written into a response that has begun and not ended on this socket.
      const response = lastRequest.get(socket)?.response;
      if (socket.writable && !(response?.headersSent && !response.writableEnded)) {
        const body = errorJson({ message, code: ProtocolErrorCode.BAD_REQUEST });
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
            `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      }
      socket.destroy(error);
    },
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};
