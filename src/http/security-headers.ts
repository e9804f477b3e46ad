import cors, { type FastifyCorsOptions } from "@fastify/cors";
import type { IncomingMessage, ServerResponse } from "node:http";
import { inspect } from "node:util";

import type { FastifyInstance } from "fastify";
import helmet, { type HelmetOptions } from "helmet";

import type { Config } from "../config.js";

/** Where Apollo's hosted Sandbox runs: allowed by CORS outside production so it can reach a local server. */
export const APOLLO_STUDIO_ORIGIN = "https://studio.apollographql.com";

/** Why `value` is not an exact browser origin (`https://host[:port]`), or undefined when it is one. */
export function originProblem(value: string): string | undefined {
  if (value === "*") return "lists exact origins; `*` is not accepted";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `has ${JSON.stringify(value)}, which is not an origin like https://app.example`;
  }
  // Not repeated: whatever follows the scheme may be a password.
  if (url.username !== "" || url.password !== "")
    return "has an entry with credentials in it; an origin is only scheme, host and port";
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `has ${JSON.stringify(value)}, which is not an http or https origin`;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return `has ${JSON.stringify(value)}, which is not an origin: it has a path, query or fragment (write ${url.origin})`;
  }
  if (url.origin !== value) {
    // A trailing slash, upper case or a default port: browsers send an origin in one serialized
    // form and the comparison is exact, so name that form.
    return `has ${JSON.stringify(value)}, which browsers never send; write it as ${url.origin}`;
  }
  return undefined;
}

/**
 * CORS_ORIGINS when unset or empty: outside production the hosted Sandbox may call a local server;
 * production allows no origin unless told, so a browser page elsewhere can never read its answers.
 */
export function defaultCorsOrigins(isProduction: boolean): readonly string[] {
  return isProduction ? [] : [APOLLO_STUDIO_ORIGIN];
}

/** Sent only on requests that arrived over TLS (as Fastify sees them): one year, as helmet would. */
export const HSTS_VALUE = "max-age=31536000; includeSubDomains";

/**
 * Request headers a browser page may send cross-origin: the token, JSON, Apollo's two CSRF-prevention
 * headers, and the client-awareness headers Apollo's clients add when given a name and version.
 */
export const CORS_ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "Apollo-Require-Preflight",
  "X-Apollo-Operation-Name",
  "Apollographql-Client-Name",
  "Apollographql-Client-Version",
];

/** Response headers a cross-origin page may read: the 401 challenge and the id to quote in a report. */
export const CORS_EXPOSED_HEADERS = ["WWW-Authenticate", "X-Request-Id"];

/**
 * Registers the headers every response carries, on every route, errors and 404s included, and
 * returns helmet's set for the GraphQL route on node:http, which Fastify's hooks do not reach:
 *
 * - helmet's set, tuned for a JSON API: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
 *   `Referrer-Policy: no-referrer`, and in production `Content-Security-Policy: default-src 'none';
 *   frame-ancestors 'none'`. Development sends no CSP because Apollo's landing page there runs
 *   inline scripts and loads Sandbox from Apollo's CDN.
 * - `Strict-Transport-Security` ({@link HSTS_VALUE}) only when the request came over TLS: directly,
 *   or as `X-Forwarded-Proto: https` from a proxy that `TRUST_PROXY` trusts. Over plain HTTP the
 *   header is meaningless, and a spoofed X-Forwarded-Proto must not switch it on.
 * - CORS for exactly `config.corsOrigins`, with credentials for those origins only (the refresh-token
 *   cookie of cookie mode; access tokens travel in a header). A request from any other origin is answered as if CORS were not there: no
 *   `Access-Control-*` headers, so the browser withholds the response. With no origins configured
 *   (the production default) the CORS plugin is not installed at all.
 */
export async function registerHttpSecurity(
  server: FastifyInstance,
  config: Pick<Config, "isProduction" | "corsOrigins">,
): Promise<Readonly<Record<string, string>>> {
  const headers = securityHeaders(config);
  server.addHook("onRequest", (request, reply, done) => {
    reply.headers(headers);
    if (request.protocol === "https") reply.header("strict-transport-security", HSTS_VALUE);
    done();
  });

  if (config.corsOrigins.length === 0) return headers;
  const allowed = new Set(config.corsOrigins);
  const forAllowedOrigin: FastifyCorsOptions = {
    origin: true,
    methods: ["GET", "POST", "OPTIONS"],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    credentials: true,
    // Browsers may reuse a preflight for 10 minutes (Chromium caps it at 2 hours anyway).
    maxAge: 600,
  };
  await server.register(cors, {
    delegator: (request, callback) => {
      const origin = request.headers.origin;
      callback(null, origin !== undefined && allowed.has(origin) ? forAllowedOrigin : { origin: false });
    },
  });
  return headers;
}

/** helmet's headers for this API (see registerHttpSecurity), the same on every route and worked out once. */
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
