import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

import proxyAddr from "@fastify/proxy-addr";

import type { Config } from "../config.js";

/** Where a request came from and how, as the GraphQL route on node:http reads it. */
export interface ClientAddress {
  /** The client's IP: the socket's peer, or the nearest untrusted hop of X-Forwarded-For. */
  ip(request: IncomingMessage): string;
  /** `https` over TLS, or what a trusted proxy's X-Forwarded-Proto says; otherwise `http`. */
  protocol(request: IncomingMessage): string;
  /** The Host header, or a trusted proxy's X-Forwarded-Host. */
  host(request: IncomingMessage): string;
}

/**
 * TRUST_PROXY read exactly as Fastify reads its `trustProxy` for the other routes (through the
 * same @fastify/proxy-addr), so that request.ip, request.protocol and request.host mean the same
 * on every route: X-Forwarded-* count only when the socket's peer is a trusted proxy, and of a
 * header given several times (or as a list) the last entry, the one the nearest proxy added.
 */
export function clientAddress(trustProxy: Config["trustProxy"]): ClientAddress {
  const peer = (request: IncomingMessage) => request.socket.remoteAddress ?? "";
  const direct = (request: IncomingMessage) => ((request.socket as TLSSocket).encrypted ? "https" : "http");
  const hostHeader = (request: IncomingMessage) => request.headers.host ?? "";
  if (trustProxy === false) return { ip: peer, protocol: direct, host: hostHeader };

  const trusted: (address: string, hop: number) => boolean =
    trustProxy === true ? () => true : proxyAddr.compile([...trustProxy]);
  const fromTrustedProxy = (request: IncomingMessage, header: "x-forwarded-proto" | "x-forwarded-host") => {
    const value = request.headers[header];
    if (value === undefined || !trusted(peer(request), 0)) return undefined;
    return lastEntry(value);
  };
  return {
    ip: (request) => {
      const addresses = proxyAddr.all(request, trusted);
      return addresses[addresses.length - 1] ?? peer(request);
    },
    protocol: (request) => fromTrustedProxy(request, "x-forwarded-proto") ?? direct(request),
    host: (request) => fromTrustedProxy(request, "x-forwarded-host") ?? hostHeader(request),
  };
}

function lastEntry(value: string | string[]): string {
  const joined = Array.isArray(value) ? value.join(",") : value;
  const comma = joined.lastIndexOf(",");
  return (comma === -1 ? joined : joined.slice(comma + 1)).trim();
}
