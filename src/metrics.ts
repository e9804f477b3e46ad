// The service's Prometheus metrics: one prom-client Registry per app (never prom-client's global
// one, so two apps in one process neither share nor clash), process and event-loop metrics, and
// the counters below. Every label has a fixed, small set of values: never a user id, a username, a
// token or an operation name a client chose. Served on a listener of its own (main.ts), never on
// the public port. This module imports nothing of the app, so every layer may record into it.
import type { Server } from "node:http";

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

import {
  DOCUMENT_KINDS,
  type DocumentKind,
  EMAIL_STEPS,
  type EmailStep,
  INTROSPECTION_RESULTS,
  type IntrospectionResult,
  LANE_RESULTS,
  type LimitName,
  LIMITS,
  LOGIN_OUTCOMES,
  type LoginOutcome,
  MAIL_OUTCOMES,
  type MailOutcome,
  METRICS_PREFIX,
  MFA_METHODS,
  MFA_OUTCOMES,
  type MfaMethod,
  type MfaOutcome,
  OPERATION_OUTCOMES,
  OPERATION_TYPES,
  type OperationOutcome,
  type OperationType,
  RATE_LIMITS,
  type RateLimitName,
  REFRESH_OUTCOMES,
  type RefreshOutcome,
} from "./metric-names.js";
import { type CounterMaker, defineFlowCounters } from "./metrics-flows.js";
import { createMetricsServer } from "./metrics-server.js";

export * from "./metric-names.js";

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
  /** A mail of the outbox: written, suppressed, sent, retried or given up. */
  mail(outcome: MailOutcome): void;
  /** Seconds from a mail's row being written to the transport taking it. */
  mailDelivered(seconds: number): void;
  /** Mails waiting in the outbox (queued, not yet sent or given up), as the sender last counted. */
  mailWaiting(count: number): void;
  /** A step of the e-mail flows. */
  emailStep(step: EmailStep): void;
  /** A multi-factor step: a factor enrolled or removed, a proof verified, failed or throttled. */
  mfa(method: MfaMethod, outcome: MfaOutcome): void;
  /** With TRUSTED_DOCUMENTS: a request's document trusted, arbitrary (OPERATIONS_ANY) or refused. */
  document(kind: DocumentKind): void;
  /** A POST /oauth/introspect call, by result. */
  introspection(result: IntrospectionResult): void;
  compiledLane(result: (typeof LANE_RESULTS)[number]): void;
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
  mail: () => undefined,
  mailDelivered: () => undefined,
  mailWaiting: () => undefined,
  emailStep: () => undefined,
  mfa: () => undefined,
  document: () => undefined,
  introspection: () => undefined,
  compiledLane: () => undefined,
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
  const { limitRefusals, operations, apiTokenUses, mails, emailSteps, mfaSteps, documents, introspections } = counted;
  const { latency, lag, subscriptions, activeSubscriptions, waitingDeliveries } = defineGauges([registry]);
  const { mailDelay, mailWaiting } = defineMailGauges([registry]);

  for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0);
  for (const scope of options.apiTokenScopes ?? []) apiTokenUses.inc({ scope }, 0);
  for (const outcome of REFRESH_OUTCOMES) refreshes.inc({ outcome }, 0);
  for (const limit of RATE_LIMITS) rateLimited.inc({ limit }, 0);
  for (const limit of LIMITS) limitRefusals.inc({ limit }, 0);
  for (const reason of options.tokenRejectionReasons ?? []) rejections.inc({ reason }, 0);
  for (const cause of options.sessionEndCauses ?? []) sessionsEnded.inc({ cause }, 0);
  for (const type of OPERATION_TYPES) for (const outcome of OPERATION_OUTCOMES) operations.inc({ type, outcome }, 0);
  for (const outcome of MAIL_OUTCOMES) mails.inc({ outcome }, 0);
  for (const step of EMAIL_STEPS) emailSteps.inc({ step }, 0);
  for (const method of MFA_METHODS) for (const outcome of MFA_OUTCOMES) mfaSteps.inc({ method, outcome }, 0);
  for (const kind of DOCUMENT_KINDS) documents.inc({ kind }, 0);
  for (const result of INTROSPECTION_RESULTS) introspections.inc({ result }, 0);
  for (const result of LANE_RESULTS) counted.laneRequests.inc({ result }, 0);

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
    mail: (outcome) => mails.inc({ outcome }),
    mailDelivered: (seconds) => mailDelay.observe(Math.max(0, seconds)),
    mailWaiting: (count) => mailWaiting.set(count),
    emailStep: (step) => emailSteps.inc({ step }),
    mfa: (method, outcome) => mfaSteps.inc({ method, outcome }),
    document: (kind) => documents.inc({ kind }),
    introspection: (result) => introspections.inc({ result }),
    compiledLane: (result) => counted.laneRequests.inc({ result }),
    createServer: () => createMetricsServer(registry),
  };
}

/** The counters, each named with the prefix and registered on `registers`. */
function defineCounters(registers: Registry[]) {
  const counter: CounterMaker = (name, labelNames, help) =>
    new Counter({ name: `${METRICS_PREFIX}${name}`, help, labelNames, registers });
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
    ...defineFlowCounters(counter),
  };
}

/** Seconds; a mail goes out within a second when SMTP answers, and later after an outage. */
const MAIL_DELAY_BUCKETS = [0.1, 0.5, 1, 2, 5, 15, 60, 300, 1800, 3600, 86400];

/** The outbox's histogram and gauge, registered on `registers`. */
function defineMailGauges(registers: Registry[]) {
  return {
    mailDelay: new Histogram({
      name: `${METRICS_PREFIX}mail_delivery_delay_seconds`,
      help: "Time from a mail's outbox row being written to the SMTP server accepting it.",
      buckets: MAIL_DELAY_BUCKETS,
      registers,
    }),
    mailWaiting: new Gauge({
      name: `${METRICS_PREFIX}mail_outbox_waiting`,
      help: "Mails waiting in the outbox to be sent, as this instance's sender last counted.",
      registers,
    }),
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
