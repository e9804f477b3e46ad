// The headers every response carries, on every route and every way in, errors and 404s included:
// the request id, helmet's set (worked out once), HSTS over TLS, and CORS (cors.ts).
import type { IncomingMessage, ServerResponse } from "node:http";
import { inspect } from "node:util";

import helmet, { type HelmetOptions } from "helmet";

import type { Config } from "../config.js";
import { corsPolicy, type CorsVerdict, type Header } from "./cors.js";
import type { RequestInfo } from "./request-info.js";

/** Sent only on requests that arrived over TLS (request-info.ts's protocol): one year, as helmet would. */
export const HSTS_VALUE = "max-age=31536000; includeSubDomains";

/** A response's own headers, and the answer that ends it at once (a CORS preflight), if any. */
export interface EdgeHeaders {
  readonly headers: readonly Header[];
  readonly answer?: CorsVerdict["answer"];
}

/**
 * The headers of every response, for each request:
 *
 * - `x-request-id`: the request's id, the one in the logs, for a client to quote in a report.
 * - helmet's set, tuned for a JSON API: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
 *   `Referrer-Policy: no-referrer`, and in production `Content-Security-Policy: default-src 'none';
 *   frame-ancestors 'none'`. Development sends no CSP because Apollo's landing page there runs
 *   inline scripts and loads Sandbox from Apollo's CDN.
 * - `Strict-Transport-Security` ({@link HSTS_VALUE}) only when the request came over TLS: directly,
 *   or as `X-Forwarded-Proto: https` from a proxy that `TRUST_PROXY` trusts. Over plain HTTP the
 *   header is meaningless, and a spoofed X-Forwarded-Proto must not switch it on.
 * - CORS for exactly `config.corsOrigins` (cors.ts), whose preflights are answered here.
 */
export function edgeHeaders(
  config: Pick<Config, "isProduction" | "corsOrigins">,
): (request: IncomingMessage, info: Pick<RequestInfo, "id" | "protocol">) => EdgeHeaders {
  const helmetSet = Object.entries(securityHeaders(config));
  const cors = corsPolicy(config.corsOrigins);
  return (request, { id, protocol }) => {
    const headers: Header[] = [["x-request-id", id], ...helmetSet];
    if (protocol === "https") headers.push(["strict-transport-security", HSTS_VALUE]);
    const verdict = cors?.(request);
    if (verdict === undefined) return { headers };
    headers.push(...verdict.headers);
    return { headers, answer: verdict.answer };
  };
}

/** helmet's headers for this API (see edgeHeaders), the same on every route and worked out once. */
function securityHeaders(config: Pick<Config, "isProduction">): Readonly<Record<string, string>> {
  return helmetHeaders({
    contentSecurityPolicy: config.isProduction
      ? { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } }
      : false,
    xFrameOptions: { action: "deny" },
    referrerPolicy: { policy: "no-referrer" },
    strictTransportSecurity: false,
  });
}

/**
 * The headers helmet sets with `options`, worked out once. With static options they depend on
 * nothing in the request, so every response gets the same object instead of helmet rebuilding its
 * middleware per request (as @fastify/helmet does).
 */
export function helmetHeaders(options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error instanceof Error ? error : new Error(inspect(error));
  });
  return Object.freeze(headers);
}
