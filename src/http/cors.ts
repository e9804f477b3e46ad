// CORS for the origins of CORS_ORIGINS, on every route: which pages elsewhere may read this API's
// answers. The `cors` package (as Apollo Server's standalone server uses it) works out the headers,
// once per allowed origin at start, as helmet's are (security-headers.ts); each way in adds them.
import type { IncomingMessage } from "node:http";

import cors, { type CorsOptions, type CorsRequest } from "cors";

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

/** One response header, its name in lower case. */
export type Header = readonly [name: string, value: string];

/** What CORS does to one request: headers for its response, and for a preflight the whole answer. */
export interface CorsVerdict {
  readonly headers: readonly Header[];
  /** Answered at once, before any route: a preflight (204), or an OPTIONS with an Origin that is not one (400). */
  readonly answer?: { readonly status: number; readonly contentType?: string; readonly body: string };
}

/**
 * For an allowed origin: the origin reflected, credentials (the refresh-token cookie of cookie
 * mode; access tokens travel in a header), the methods and headers above, and preflights reused for
 * 10 minutes (Chromium caps it at 2 hours anyway). Lists are joined with ", " as before.
 */
const FOR_ALLOWED_ORIGIN: CorsOptions = {
  origin: true,
  methods: "GET, POST, OPTIONS",
  allowedHeaders: CORS_ALLOWED_HEADERS.join(", "),
  exposedHeaders: CORS_EXPOSED_HEADERS.join(", "),
  credentials: true,
  maxAge: 600,
};

/** The verdicts for one allowed origin, worked out at start. */
interface OriginVerdicts {
  actual: CorsVerdict;
  preflight: CorsVerdict;
  notPreflight: CorsVerdict;
}

/**
 * CORS for exactly `origins`, or undefined when there are none (the production default: no CORS
 * at all). A request from any other origin, or with none, gets no `Access-Control-*` header, so a
 * browser withholds the response from a page elsewhere; every response says `Vary: Origin`, since
 * whether those headers come depends on it. A preflight (OPTIONS with Access-Control-Request-Method)
 * from an allowed origin is answered 204 at once; an OPTIONS from one without that header is no
 * preflight and gets 400 "Invalid Preflight Request", as @fastify/cors's strict preflight answered.
 */
export function corsPolicy(origins: readonly string[]): ((request: IncomingMessage) => CorsVerdict) | undefined {
  if (origins.length === 0) return undefined;
  const middleware = cors(FOR_ALLOWED_ORIGIN);
  const elsewhere: CorsVerdict = { headers: [["vary", "Origin"]] };
  const verdicts = new Map<string, OriginVerdicts>();
  for (const origin of origins) {
    const actual = recorded(middleware, { method: "POST", headers: { origin } });
    const preflight = recorded(middleware, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST" },
    });
    verdicts.set(origin, {
      actual: { headers: actual.headers },
      preflight: { headers: preflight.headers, answer: { status: preflight.status, body: "" } },
      notPreflight: {
        headers: actual.headers,
        answer: { status: 400, contentType: "text/plain", body: "Invalid Preflight Request" },
      },
    });
  }
  return (request) => {
    const origin = request.headers.origin;
    const verdict = origin === undefined ? undefined : verdicts.get(origin);
    if (verdict === undefined) return elsewhere;
    if (request.method !== "OPTIONS") return verdict.actual;
    return request.headers["access-control-request-method"] === undefined ? verdict.notPreflight : verdict.preflight;
  };
}

type CorsMiddleware = ReturnType<typeof cors>;

/**
 * What `middleware` writes for `request`: its headers (Vary: Origin among them; not Content-Length,
 * which the way in that writes the answer sets), and its status.
 */
function recorded(middleware: CorsMiddleware, request: CorsRequest): { status: number; headers: Header[] } {
  const headers = new Map<string, string>([["vary", "Origin"]]);
  const response = {
    statusCode: 200,
    getHeader: (name: string) => headers.get(name.toLowerCase()),
    setHeader: (name: string, value: string | number) => headers.set(name.toLowerCase(), String(value)),
    end: () => undefined,
  };
  middleware(request, response, () => undefined);
  headers.delete("content-length");
  return { status: response.statusCode, headers: [...headers] };
}
