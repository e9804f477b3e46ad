// Who sent a request and how, read once for every way in: the request id (ours, echoed in
// x-request-id), the client's address and protocol and host as TRUST_PROXY lets a proxy say them,
// and the user agent. The node:http GraphQL route reads a request through createRequestInfoReader,
// Fastify takes newRequestId as its genReqId and proxyTrust's function as its trustProxy (so its
// request.ip, request.protocol and request.host agree), and the WebSocket server reads its upgrade
// requests the same way.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import type { TLSSocket } from "node:tls";

import proxyAddr from "@fastify/proxy-addr";

import type { Config } from "../config.js";

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

/** What every way in knows of a request before serving it. */
export interface RequestInfo {
  /** Ours, never the client's (a client-sent id could inject text into the logs); sent back in x-request-id. */
  readonly id: string;
  /** The socket's peer, or the nearest untrusted hop of X-Forwarded-For. */
  readonly ip: string;
  /** `https` over TLS, or what a trusted proxy's X-Forwarded-Proto says; otherwise `http`. */
  readonly protocol: string;
  /** The Host header, or a trusted proxy's X-Forwarded-Host. */
  readonly host: string;
  readonly userAgent: string | undefined;
}

/** Reads a request's {@link RequestInfo}, with a new id each time. */
export type RequestInfoReader = (request: IncomingMessage) => RequestInfo;

/** A new request id; Fastify's `genReqId` too. */
export const newRequestId = (): string => randomUUID();

/**
 * Which peers may speak for the client in X-Forwarded-*: false for none, else whether the peer at
 * `address` (hop 0 is the socket's) is a trusted proxy. Fastify takes the same value as its
 * `trustProxy`, so that request.ip there is this module's ip.
 */
export type ProxyTrust = false | ((address: string, hop: number) => boolean);

/** TRUST_PROXY as a {@link ProxyTrust}: `true` trusts every peer, a list those in it (proxy-addr's rules). */
export function proxyTrust(trustProxy: Config["trustProxy"]): ProxyTrust {
  if (trustProxy === false) return false;
  return trustProxy === true ? () => true : proxyAddr.compile([...trustProxy]);
}

/**
 * TRUST_PROXY read exactly as Fastify reads its `trustProxy` (through the same @fastify/proxy-addr
 * and the same {@link proxyTrust} function), so that the client means the same on every route:
 * X-Forwarded-* count only when the socket's peer is a trusted proxy, and of a header given several
 * times (or as a list) the last entry, the one the nearest proxy added.
 */
export function createRequestInfoReader(trustProxy: Config["trustProxy"]): RequestInfoReader {
  const trusted = proxyTrust(trustProxy);
  const peer = (request: IncomingMessage) => request.socket.remoteAddress ?? "";
  const fromTrustedProxy = (request: IncomingMessage, header: "x-forwarded-proto" | "x-forwarded-host") => {
    const value = request.headers[header];
    if (value === undefined || trusted === false || !trusted(peer(request), 0)) return undefined;
    return lastEntry(value);
  };
  const ip = (request: IncomingMessage) => {
    if (trusted === false) return peer(request);
    const addresses = proxyAddr.all(request, trusted);
    return addresses[addresses.length - 1] ?? peer(request);
  };
  return (request) => ({
    id: newRequestId(),
    ip: ip(request),
    protocol:
      fromTrustedProxy(request, "x-forwarded-proto") ?? ((request.socket as TLSSocket).encrypted ? "https" : "http"),
    host: fromTrustedProxy(request, "x-forwarded-host") ?? request.headers.host ?? "",
    userAgent: request.headers["user-agent"],
  });
}

function lastEntry(value: string | string[]): string {
  const joined = Array.isArray(value) ? value.join(",") : value;
  const comma = joined.lastIndexOf(",");
  return (comma === -1 ? joined : joined.slice(comma + 1)).trim();
}
