import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

import proxyAddr from "@fastify/proxy-addr";

import type { Config } from "../config.js";
import { isIP } from "node:net";

// proxy-addr's names for the loopback, link-local and private ranges (IPv4 and IPv6).
const PROXY_RANGE_NAMES = ["loopback", "linklocal", "uniquelocal"];

/** Whether `value` is an IP address, a CIDR range (`10.0.0.0/8`, `fd00::/8`) or one of proxy-addr's range names. */
function isProxyAddress(value: string): boolean {
  if (PROXY_RANGE_NAMES.includes(value) || isIP(value) !== 0) return true;
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(value);
  if (!cidr) return false;
  const version = isIP(cidr[1]!);
  return version !== 0 && Number(cidr[2]) <= (version === 4 ? 32 : 128);
}

/**
 * TRUST_PROXY read: unset or `false` trusts no peer, `true` every peer, otherwise a comma-separated
 * list of addresses, CIDR ranges and proxy-addr's names; `problems` says why it is refused.
 */
export function readTrustProxy(text: string | undefined): { value: boolean | string[]; problems: string[] } {
  const value = text?.trim().toLowerCase();
  if (value === undefined || value === "false") return { value: false, problems: [] };
  if (value === "true") return { value: true, problems: [] };
  if (/^\d+$/.test(value)) {
    // Fastify 5.12.1 dropped hop counts (they cannot tell a proxy from a client that connects
    // directly and writes its own X-Forwarded-For) and quietly trusts nobody instead: say so.
    const problem =
      "cannot be a hop count; list the proxies' addresses or CIDR ranges instead (e.g. 10.0.0.0/8 or uniquelocal)";
    return { value: false, problems: [problem] };
  }
  const entries = value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  const problems = entries
    .filter((entry) => !isProxyAddress(entry))
    .map(
      (entry) =>
        `has ${JSON.stringify(entry)}: expected true, false, or IP addresses and CIDR ranges (e.g. 10.0.0.0/8) separated by commas`,
    );
  return { value: entries, problems };
}

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
