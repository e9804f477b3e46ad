// POST /oauth/introspect (RFC 7662) and the metadata that names it, GET
// /.well-known/oauth-authorization-server (RFC 8414): how another service asks whether a token is
// live, logouts included, and finds where to ask. The caller is an API token with INTROSPECT; the
// answer comes from access/token-introspection.ts, from memory.
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";

import { type ApiTokenVerifier, isApiTokenShape } from "../access/api-tokens.js";
import { bearerTokenOf } from "../access/bearer.js";
import type { RevocationList } from "../access/revocation-list.js";
import { Scope, scopeInForce } from "../access/scopes.js";
import { introspectToken } from "../access/token-introspection.js";
import type { TokenService } from "../access/tokens.js";
import type { Config } from "../config.js";
import { isDatabaseUnavailable } from "../db/unavailable.js";
import {
  ProtocolErrorCode,
  RateLimitedError,
  SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS,
  ServiceUnavailableError,
} from "../errors.js";
import type { IntrospectionResult, MetricsRecorder } from "../metrics.js";
import { type CounterStore, FLOOD_LIMITS_TABLE, FloodLimit } from "../rate-limits/index.js";
import { EDGE_MESSAGES, errorBody } from "./error-body.js";

/** Where other services ask (RFC 7662), and where they find that out (RFC 8414). */
export const INTROSPECTION_PATH = "/oauth/introspect";
export const DISCOVERY_PATH = "/.well-known/oauth-authorization-server";

/** Largest introspection body: `token=` and the longest token there is (4096 characters), escaped. */
export const INTROSPECTION_BODY_MAX_BYTES = 8 * 1024;

const FORM = "application/x-www-form-urlencoded";

export interface IntrospectionDeps {
  config: Pick<Config, "jwt" | "email" | "surface">;
  tokens: TokenService;
  apiTokenVerifier: ApiTokenVerifier;
  revocations: RevocationList;
  /** Where INTROSPECTION_MAX_PER_TOKEN counts, as every rate limit does. */
  counters: CounterStore;
  metrics: MetricsRecorder;
}

/** An RFC 6749 §5.2 error answer: its status, `error`, a fixed description, and any header. */
interface OAuthError {
  readonly status: number;
  readonly result: IntrospectionResult;
  readonly error: string;
  readonly description: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const NO_TOKEN: OAuthError = {
  status: 401,
  result: "unauthorized",
  error: "invalid_token",
  description: "Only an API token with the scope INTROSPECT may ask: send it as Authorization: Bearer gta_...",
  // RFC 6750 §3.1: a request without credentials is told the scheme, with no error code.
  headers: { "www-authenticate": "Bearer" },
};
const NOT_AN_API_TOKEN: OAuthError = { ...NO_TOKEN, headers: { "www-authenticate": 'Bearer error="invalid_token"' } };
const INVALID_TOKEN: OAuthError = { ...NOT_AN_API_TOKEN, description: "The API token is unknown, expired or revoked." };
const INSUFFICIENT_SCOPE: OAuthError = {
  status: 403,
  result: "forbidden",
  error: "insufficient_scope",
  description: "The API token lacks the scope INTROSPECT, or its owner is no longer an ADMIN.",
  headers: { "www-authenticate": 'Bearer error="insufficient_scope", scope="INTROSPECT"' },
};
const INVALID_REQUEST: OAuthError = {
  status: 400,
  result: "bad_request",
  error: "invalid_request",
  description: "Send the token to introspect once, as the form field token.",
};

function sendOAuthError(reply: FastifyReply, metrics: MetricsRecorder, failure: OAuthError): FastifyReply {
  metrics.introspection(failure.result);
  return reply
    .headers({ "cache-control": "no-store", ...failure.headers })
    .status(failure.status)
    .send({ error: failure.error, error_description: failure.description });
}

/**
 * `POST /oauth/introspect` and `GET /.well-known/oauth-authorization-server`, in a Fastify scope
 * of their own: only a form body of at most {@link INTROSPECTION_BODY_MAX_BYTES} is read there.
 */
export function registerIntrospection(server: FastifyInstance, deps: IntrospectionDeps): void {
  server.get(DISCOVERY_PATH, async (_request, reply) => {
    reply.header("cache-control", "public, max-age=300");
    return discoveryDocument(deps.config);
  });
  void server.register(async (scope) => {
    const perToken = await introspectionLimit(deps);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(FORM, { parseAs: "string" }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string));
    });
    // What Fastify refuses before the handler: a body over the limit, another content type.
    scope.setErrorHandler((error: FastifyError, _request, reply) => {
      if (error.statusCode !== 413 && error.statusCode !== 415) throw error;
      deps.metrics.introspection("bad_request");
      if (error.statusCode === 415)
        return sendEdgeError(reply, 415, EDGE_MESSAGES.notForm, ProtocolErrorCode.BAD_REQUEST);
      deps.metrics.limitReached("INTROSPECTION_BODY_MAX_BYTES");
      const message = EDGE_MESSAGES.bodyTooLarge(INTROSPECTION_BODY_MAX_BYTES);
      return sendEdgeError(reply, 413, message, ProtocolErrorCode.PAYLOAD_TOO_LARGE);
    });
    scope.post(INTROSPECTION_PATH, { bodyLimit: INTROSPECTION_BODY_MAX_BYTES }, async (request, reply) => {
      const { metrics } = deps;
      // Who asks: an API token with INTROSPECT in force. Nothing else is looked at before this.
      const bearer = bearerTokenOf(request.headers.authorization);
      if (bearer === undefined) return sendOAuthError(reply, metrics, NO_TOKEN);
      if (!isApiTokenShape(bearer)) return sendOAuthError(reply, metrics, NOT_AN_API_TOKEN);
      const caller = await deps.apiTokenVerifier.verify(bearer).catch(unavailable);
      if (caller === undefined) return serviceUnavailable(reply, metrics);
      if (!caller.ok) return sendOAuthError(reply, metrics, INVALID_TOKEN);
      const { ownerRoles, scopes, apiTokenId } = caller.principal;
      if (!scopeInForce(ownerRoles, scopes, Scope.INTROSPECT))
        return sendOAuthError(reply, metrics, INSUFFICIENT_SCOPE);
      const refused = await perToken
        .charge(apiTokenId)
        .then(() => 0, rateLimited)
        .catch(unavailable);
      if (refused === undefined) return serviceUnavailable(reply, metrics);
      if (refused > 0) {
        metrics.introspection("rate_limited");
        return reply
          .headers({ "cache-control": "no-store", "retry-after": String(refused) })
          .status(429)
          .send({ error: "rate_limited", error_description: "Too many introspection requests from this API token." });
      }
      // RFC 6749 §3.1: a parameter sent twice is an invalid request, as is none.
      const tokens = request.body instanceof URLSearchParams ? request.body.getAll("token") : [];
      if (tokens.length !== 1) return sendOAuthError(reply, metrics, INVALID_REQUEST);
      const answer = await introspectToken(tokens[0]!, introspectionDeps(deps)).catch(unavailable);
      if (answer === undefined) return serviceUnavailable(reply, metrics);
      metrics.introspection(answer.active ? "active" : "inactive");
      return reply.header("cache-control", "no-store").send(answer);
    });
  });
}

function sendEdgeError(reply: FastifyReply, status: number, message: string, code: string): FastifyReply {
  return reply.status(status).send(errorBody({ message, code }));
}

function introspectionDeps(deps: IntrospectionDeps) {
  const { tokens, apiTokenVerifier: apiTokens, revocations, config } = deps;
  return { tokens, apiTokens, revocations, issuer: config.jwt.issuer, audience: config.jwt.audience };
}

/** INTROSPECTION_MAX_PER_TOKEN calls per caller token per minute; `0` switches it off. */
async function introspectionLimit({ config, counters, metrics }: IntrospectionDeps): Promise<FloodLimit> {
  const perMinute = config.surface.introspectionPerTokenPerMinute;
  const message = "Too many introspection requests from this API token";
  if (perMinute === 0) return new FloodLimit(undefined, message);
  const limiter = await counters.counter({
    keyPrefix: "introspect:token",
    points: perMinute,
    duration: 60,
    tableName: FLOOD_LIMITS_TABLE,
  });
  return new FloodLimit(limiter, message, () => metrics.rateLimited("INTROSPECTION_MAX_PER_TOKEN"));
}

/** The seconds to wait of a rate-limit refusal (at least 1); anything else is rethrown. */
function rateLimited(error: unknown): number {
  if (error instanceof RateLimitedError) return error.extensions.retryAfter as number;
  throw error;
}

/** Undefined for a database (or counter store) that did not answer in time, answered 503; anything else is rethrown. */
function unavailable(error: unknown): undefined {
  if (error instanceof ServiceUnavailableError || isDatabaseUnavailable(error)) return undefined;
  throw error;
}

function serviceUnavailable(reply: FastifyReply, metrics: MetricsRecorder): FastifyReply {
  metrics.introspection("unavailable");
  return reply
    .headers({ "cache-control": "no-store", "retry-after": String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS) })
    .status(503)
    .send({ error: "temporarily_unavailable", error_description: "The database did not answer in time; retry." });
}

/**
 * RFC 8414's metadata, limited to what is true of this server: it issues tokens through GraphQL
 * mutations, not OAuth endpoints, so there is no authorization or token endpoint, and the
 * REQUIRED `response_types_supported` is empty (no response type is supported), as are the grant
 * types, whose RFC default (authorization_code, implicit) would otherwise be claimed.
 */
export function discoveryDocument(config: Pick<Config, "jwt" | "email">) {
  const publicUrl = config.email.publicUrl;
  return {
    issuer: config.jwt.issuer,
    jwks_uri: `${publicUrl}/.well-known/jwks.json`,
    introspection_endpoint: `${publicUrl}${INTROSPECTION_PATH}`,
    scopes_supported: Object.values(Scope),
    response_types_supported: [],
    response_modes_supported: [],
    grant_types_supported: [],
  };
}
