// The service's Prometheus metrics: one prom-client Registry per app (never prom-client's global
// one, so two apps in one process neither share nor clash), process and event-loop metrics, and
// the counters below. Every label has a fixed, small set of values: never a user id, a username, a
// token or an operation name a client chose. Served on a listener of its own (main.ts), never on
// the public port. This module imports nothing of the app, so every layer may record into it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The common prefix of every metric this service defines (process metrics included). */
export const METRICS_PREFIX = "gta_";

/** The path the metrics listener serves; anything else there is a 404. */
export const METRICS_PATH = "/metrics";

export const LOGIN_OUTCOMES = ["succeeded", "failed", "throttled", "disabled"] as const;
export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];

export const REFRESH_OUTCOMES = ["rotated", "reuse_interval", "reuse_detected", "invalid", "missing"] as const;
export type RefreshOutcome = (typeof REFRESH_OUTCOMES)[number];

/** Each rate limit, named by the variable that sets it. */
export const RATE_LIMITS = [
  "LOGIN_MAX_FAILURES_PER_USER_IP",
  "LOGIN_MAX_FAILURES_PER_IP",
  "REGISTER_MAX_PER_IP",
  "CREATE_POST_MAX_PER_USER",
  "UPDATE_POST_MAX_PER_USER",
  "LOGIN_MAX_PER_USER",
  "REFRESH_MAX_PER_USER",
  "WRITES_MAX_PER_USER",
] as const;
export type RateLimitName = (typeof RATE_LIMITS)[number];

/**
 * Every budget a client can run into (docs/limits.md), named by the variable that sets it or, for a
 * fixed limit, by its constant. Counted by `gta_limit_refusals_total{limit}` each time one refuses.
 * A new limit adds its name here and its row to docs/limits.md (test/readme.test.ts checks).
 */
export const LIMITS = [
  "JSON_MAX_NESTING",
  // Issue 22, GraphQL operations: the query limits and the size of an answer.
  "QUERY_MAX_DEPTH",
  "QUERY_MAX_ALIASES",
  "QUERY_MAX_DIRECTIVES",
  "QUERY_MAX_TOKENS",
  "QUERY_MAX_COST",
  "QUERY_MAX_COST_IN_FLIGHT",
  "RESPONSE_MAX_BYTES",
  // Lists (graphql/pagination.ts): a `first` or an `offset` over its cap.
  "FIRST_MAX",
  "OFFSET_MAX",
  // Issue 22, HTTP connections and requests (src/http/connections.ts, src/http/request-limits.ts).
  "BODY_LIMIT_BYTES",
  "HTTP_HEADERS_TIMEOUT",
  "HTTP_REQUEST_TIMEOUT",
  "HTTP_MAX_CONNECTIONS",
  "HTTP_MAX_BODY_BYTES_IN_FLIGHT",
  // WebSocket connections and subscriptions (src/http/ws/, graphql/pub-sub.ts).
  "WS_MAX_CONNECTIONS",
  "WS_MAX_CONNECTIONS_PER_IP",
  "WS_MAX_ANONYMOUS_CONNECTIONS",
  "WS_ANONYMOUS_IDLE_TIMEOUT",
  "WS_MAX_SUBSCRIPTIONS",
  "WS_MAX_SUBSCRIPTIONS_PER_IP",
  "WS_MAX_ANONYMOUS_SUBSCRIPTIONS",
  "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
  "WS_MAX_BUFFERED_BYTES",
  "WS_MAX_RENEWALS_PER_MINUTE",
  "SUBSCRIPTION_MAX_COST",
  "SUBSCRIPTION_MAX_QUEUED_EVENTS",
] as const;
export type LimitName = (typeof LIMITS)[number];

/** `unknown`: a document that does not parse, or names no operation to run. */
export const OPERATION_TYPES = ["query", "mutation", "subscription", "unknown"] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];
export const OPERATION_OUTCOMES = ["ok", "error"] as const;
export type OperationOutcome = (typeof OPERATION_OUTCOMES)[number];

/**
 * What the services record. Each method takes only values of a fixed set; the reasons, causes and
 * scopes typed as strings here are typed by their callers (RejectionReason, SessionEndReason, Scope),
 * which this module cannot import: it sits below them. Their lists come in as {@link MetricsOptions}.
 */
export interface MetricsRecorder {
  login(outcome: LoginOutcome): void;
  /** An access token refused, over HTTP or at a WebSocket's connection_init. */
  tokenRejected(reason: string): void;
  refresh(outcome: RefreshOutcome): void;
  sessionsEnded(cause: string, count: number): void;
  registered(): void;
  rateLimited(limit: RateLimitName): void;
  /** A rate-limit counter counted on this instance because Redis failed or was too slow. */
  rateLimitFallback(): void;
  /** A budget of docs/limits.md refused something (a request, a socket, a subscription, an event). */
  limitReached(limit: LimitName): void;
  /** An operation and its latency; without `seconds` (a WebSocket subscription, which lasts) only counted. */
  operation(type: OperationType, outcome: OperationOutcome, seconds?: number): void;
  /** How long after a session ended elsewhere this instance learned of it. */
  revocationLag(seconds: number): void;
  subscriptionOpened(): void;
  subscriptionClosed(): void;
  /** A subscription started or ended on a WebSocket (the gauge of active subscriptions). */
  subscriptionStarted(): void;
  subscriptionEnded(): void;
  /** Events waiting for a delivery slot (SUBSCRIPTION_DELIVERY_CONCURRENCY), now. */
  deliveriesWaiting(count: number): void;
  /** A field an API token was allowed on, by the scope that allowed it. */
  apiTokenUsed(scope: string): void;
}

/** Records nothing: the default of every service built without metrics. Holds no state. */
export const NO_METRICS: MetricsRecorder = Object.freeze({
  login: () => undefined,
  tokenRejected: () => undefined,
  refresh: () => undefined,
  sessionsEnded: () => undefined,
  registered: () => undefined,
  rateLimited: () => undefined,
  rateLimitFallback: () => undefined,
  limitReached: () => undefined,
  operation: () => undefined,
  revocationLag: () => undefined,
  subscriptionOpened: () => undefined,
  subscriptionClosed: () => undefined,
  subscriptionStarted: () => undefined,
  subscriptionEnded: () => undefined,
  deliveriesWaiting: () => undefined,
  apiTokenUsed: () => undefined,
});

/** An app's metrics: the recorder the services use, its registry, and the listener main.ts starts. */
export interface Metrics extends MetricsRecorder {
  readonly registry: Registry;
  /** The exposition text of every metric, as the listener serves it. */
  text(): Promise<string>;
  /** A node:http server answering GET /metrics (404 elsewhere); not listening, main.ts listens. */
  createServer(): Server;
}

export interface MetricsOptions {
  /** Label values to start at 0, so that `increase()` sees the first event; unknown values still count. */
  tokenRejectionReasons?: readonly string[];
  sessionEndCauses?: readonly string[];
  apiTokenScopes?: readonly string[];
  /** Process and event-loop metrics (prom-client's defaults, with the prefix). Default true. */
  defaultMetrics?: boolean;
}

/** Seconds; from 1 ms to 10 s, around what this API's operations take (argon2 logins near 50 ms). */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds; polls run every 0.5 s (SQLite) or 5 s (PostgreSQL's safety net behind LISTEN). */
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

/** Builds an app's metrics on a registry of its own. Two calls share nothing. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX });
  const counted = defineCounters([registry]);
  const { logins, rejections, refreshes, sessionsEnded, registrations, rateLimited, fallbacks } = counted;
  const { limitRefusals, operations, apiTokenUses } = counted;
  const { latency, lag, subscriptions, activeSubscriptions, waitingDeliveries } = defineGauges([registry]);

  for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0);
  for (const scope of options.apiTokenScopes ?? []) apiTokenUses.inc({ scope }, 0);
  for (const outcome of REFRESH_OUTCOMES) refreshes.inc({ outcome }, 0);
  for (const limit of RATE_LIMITS) rateLimited.inc({ limit }, 0);
  for (const limit of LIMITS) limitRefusals.inc({ limit }, 0);
  for (const reason of options.tokenRejectionReasons ?? []) rejections.inc({ reason }, 0);
  for (const cause of options.sessionEndCauses ?? []) sessionsEnded.inc({ cause }, 0);
  for (const type of OPERATION_TYPES) for (const outcome of OPERATION_OUTCOMES) operations.inc({ type, outcome }, 0);

  return {
    registry,
    text: () => registry.metrics(),
    login: (outcome) => logins.inc({ outcome }),
    tokenRejected: (reason) => rejections.inc({ reason }),
    refresh: (outcome) => refreshes.inc({ outcome }),
    sessionsEnded: (cause, count) => {
      if (count > 0) sessionsEnded.inc({ cause }, count);
    },
    registered: () => registrations.inc(),
    rateLimited: (limit) => rateLimited.inc({ limit }),
    rateLimitFallback: () => fallbacks.inc(),
    limitReached: (limit) => limitRefusals.inc({ limit }),
    operation: (type, outcome, seconds) => {
      operations.inc({ type, outcome });
      if (seconds !== undefined) latency.observe({ type }, seconds);
    },
    revocationLag: (seconds) => lag.observe(Math.max(0, seconds)),
    subscriptionOpened: () => subscriptions.inc(),
    subscriptionClosed: () => subscriptions.dec(),
    subscriptionStarted: () => activeSubscriptions.inc(),
    subscriptionEnded: () => activeSubscriptions.dec(),
    deliveriesWaiting: (count) => waitingDeliveries.set(count),
    apiTokenUsed: (scope) => apiTokenUses.inc({ scope }),
    createServer: () => createMetricsServer(registry),
  };
}

/** The counters, each named with the prefix and registered on `registers`. */
function defineCounters(registers: Registry[]) {
  const counter = <L extends string = never>(name: string, labelNames: readonly L[], help: string) =>
    new Counter<L>({ name: `${METRICS_PREFIX}${name}`, help, labelNames, registers });
  return {
    logins: counter(
      "logins_total",
      ["outcome"],
      "Login attempts by outcome: succeeded, failed (bad credentials), throttled (refused before any password check).",
    ),
    rejections: counter(
      "token_rejections_total",
      ["reason"],
      "Access tokens refused (HTTP 401 or WebSocket 4403) by reason.",
    ),
    refreshes: counter(
      "refreshes_total",
      ["outcome"],
      "refreshToken calls by outcome: rotated, reuse_interval (successor handed out again), reuse_detected (session ended), invalid, missing (no argument and no cookie).",
    ),
    sessionsEnded: counter("sessions_ended_total", ["cause"], "Sessions ended on this instance, by cause."),
    registrations: counter("registrations_total", [], "Accounts created through the register mutation."),
    rateLimited: counter(
      "rate_limit_hits_total",
      ["limit"],
      "Requests refused by a rate limit, by the variable that sets the limit.",
    ),
    fallbacks: counter(
      "rate_limit_fallbacks_total",
      [],
      "Rate-limit counts taken on this instance alone because Redis failed or exceeded REDIS_TIMEOUT.",
    ),
    limitRefusals: counter(
      "limit_refusals_total",
      ["limit"],
      "Requests, sockets, subscriptions or events refused by a budget of docs/limits.md, by the limit's name.",
    ),
    operations: counter(
      "graphql_operations_total",
      ["type", "outcome"],
      "GraphQL operations by type (query, mutation, subscription, unknown) and outcome (ok, error); subscriptions over WebSocket count when they start.",
    ),
    apiTokenUses: counter(
      "api_token_uses_total",
      ["scope"],
      "Guarded fields an API token was allowed on, by the scope that allowed it.",
    ),
  };
}

/** The histograms and gauges, each named with the prefix and registered on `registers`. */
function defineGauges(registers: Registry[]) {
  const gauge = (name: string, help: string) => new Gauge({ name: `${METRICS_PREFIX}${name}`, help, registers });
  return {
    latency: new Histogram({
      name: `${METRICS_PREFIX}graphql_operation_duration_seconds`,
      help: "Time from Apollo receiving a GraphQL operation over HTTP to its response, by type.",
      labelNames: ["type"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    lag: new Histogram({
      name: `${METRICS_PREFIX}revocation_sync_lag_seconds`,
      help: "How long after a session ended on another instance this instance learned of it.",
      buckets: LAG_BUCKETS,
      registers,
    }),
    subscriptions: gauge("subscription_connections", "Open graphql-ws (WebSocket) connections."),
    activeSubscriptions: gauge(
      "subscriptions_active",
      "Active GraphQL subscriptions over WebSocket, on all connections.",
    ),
    waitingDeliveries: gauge(
      "subscription_deliveries_waiting",
      "Events waiting for one of the SUBSCRIPTION_DELIVERY_CONCURRENCY slots that execute subscribers' selections.",
    ),
  };
}

/** A node:http server answering GET and HEAD /metrics with the registry's text, 404 elsewhere. */
function createMetricsServer(registry: Registry): Server {
  return createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== METRICS_PATH || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found\n");
      return;
    }
    registry.metrics().then(
      (body) => {
        response.writeHead(200, { "content-type": registry.contentType });
        response.end(request.method === "HEAD" ? undefined : body);
      },
      () => {
        response.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("metrics failed\n");
      },
    );
  });
}
