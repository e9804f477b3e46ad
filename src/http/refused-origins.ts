// The warning that names a browser origin CORS refuses on /graphql: the browser withholds the answer
// from that page and says only "blocked by CORS policy" in its console, so the server's log says
// which origin it was and that CORS_ORIGINS is where it goes. Bounded, since any client can send
// any Origin: each origin at most once a minute, and at most 20 origins a minute.
import type { IncomingMessage } from "node:http";

import type { Logger } from "pino";

import type { Config } from "../config.js";
import { originProblem } from "./cors.js";
import type { RequestInfo } from "./request-info.js";

/** How long an origin, once named, is not named again. */
export const REFUSED_ORIGIN_LOG_INTERVAL_MS = 60_000;

/** Distinct origins named within that interval; further ones are not logged until it passes for one. */
export const REFUSED_ORIGIN_LOG_MAX_ORIGINS = 20;

/**
 * What the GraphQL route calls for each request: a warn line when its `Origin` is a browser origin
 * that is neither in CORS_ORIGINS nor the server's own (by host, so a TLS proxy that TRUST_PROXY
 * does not trust, which makes the scheme look like http, raises no false alarm). An Origin no
 * entry of CORS_ORIGINS could be (`null` from a sandboxed frame or a file, or anything malformed)
 * is not named: adding it is impossible, and it names nothing a reader could act on.
 */
export function refusedOriginLog(
  config: Pick<Config, "corsOrigins">,
  logger: Logger,
  now: () => number = Date.now,
): (request: IncomingMessage, info: Pick<RequestInfo, "id" | "host">) => void {
  const allowed = new Set(config.corsOrigins);
  const named = new Map<string, number>();
  const mayName = (origin: string): boolean => {
    const time = now();
    const last = named.get(origin);
    if (last !== undefined && time - last < REFUSED_ORIGIN_LOG_INTERVAL_MS) return false;
    if (last === undefined && named.size >= REFUSED_ORIGIN_LOG_MAX_ORIGINS) {
      for (const [other, at] of named) if (time - at >= REFUSED_ORIGIN_LOG_INTERVAL_MS) named.delete(other);
      if (named.size >= REFUSED_ORIGIN_LOG_MAX_ORIGINS) return false;
    }
    named.set(origin, time);
    return true;
  };
  return (request, info) => {
    const origin = request.headers.origin;
    if (origin === undefined || allowed.has(origin)) return;
    if (originProblem(origin) !== undefined || new URL(origin).host === info.host) return;
    if (!mayName(origin)) return;
    logger.warn(
      { reqId: info.id, origin },
      `a page on ${origin} called /graphql, but ${origin} is not in CORS_ORIGINS, so the browser withholds the answer from it: add it to CORS_ORIGINS if that page should use this API`,
    );
  };
}
