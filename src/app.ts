import "reflect-metadata";

import { randomUUID } from "node:crypto";

import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { fastifyApolloHandler } from "@as-integrations/fastify";
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";

import { AuditResolver } from "./audit/audit.resolver.js";
import { AuditService } from "./audit/audit.service.js";
import { AuditStore } from "./audit/audit.store.js";
import { AuditEventType } from "./audit/audit.type.js";
import { AuthResolver } from "./auth/auth.resolver.js";
import { AuthService } from "./auth/auth.service.js";
import { type KeyRing, keepKeysCurrent, loadKeyRing } from "./auth/keys.js";
import { createLoginThrottle } from "./auth/login-throttle.js";
import { PasswordHasher } from "./auth/passwords.js";
import { singleAuthFieldRule } from "./auth/single-auth-field.rule.js";
import { IAT_LEEWAY_SECONDS, type TokenService, createTokenService } from "./auth/tokens.js";
import type { Config } from "./config.js";
import { type Context, createContextFunction } from "./context.js";
import { type DatabaseHandle, migrateToLatest, openDatabase, postgresConnectionOptions } from "./db/database.js";
import {
  ErrorCode,
  ProtocolErrorCode,
  SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS,
  createErrorFormatter,
  createErrorReporter,
  serviceUnavailableStatus,
} from "./errors.js";
import { closeConnectionsWhenClosing } from "./graceful-close.js";
import { registerHttpSecurity } from "./http-security.js";
import { isDatabaseUnavailable } from "./db/unavailable.js";
import { createLogger } from "./logger.js";
import { PostResolver } from "./posts/post.resolver.js";
import { PostService } from "./posts/post.service.js";
import { PostStore } from "./posts/post.store.js";
import { createQueryLimits } from "./query-limits.js";
import { createCounterStore } from "./rate-limits/counter-store.js";
import { createFloodLimit } from "./rate-limits/flood-limit.js";
import { buildAppSchema } from "./schema.js";
import { subscriptionsOverHttpRefused } from "./subscriptions-over-http.js";
import { RevocationList } from "./sessions/revocation-list.js";
import { RevocationSync } from "./sessions/revocation-sync.js";
import { SessionResolver } from "./sessions/session.resolver.js";
import { SessionService } from "./sessions/session.service.js";
import { SessionStore } from "./sessions/session.store.js";
import { UserResolver } from "./users/user.resolver.js";
import { UserService } from "./users/user.service.js";
import { UserStore } from "./users/user.store.js";

/** Largest request body accepted; larger ones get 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** How often old audit events and expired rate-limit counters are deleted (also once at start). */
export const HOUSEKEEPING_INTERVAL_MS = 60 * 60 * 1000;

export interface AppOptions {
  /** Default: JSON logs to stdout at LOG_LEVEL. */
  logger?: Logger;
  /** Milliseconds since the epoch; tests freeze it. Default `Date.now`. */
  now?: () => number;
}

/** A built application: an HTTP server that is not listening yet, and what it was built from. */
export interface App {
  readonly server: FastifyInstance;
  readonly database: DatabaseHandle;
  readonly tokens: TokenService;
  readonly keys: KeyRing;
  /** Re-reads the signing keys (after `keys rotate`); main.ts calls it on SIGHUP. */
  reloadKeys(): void;
  readonly users: UserService;
  /** The audit log; `audit.prune()` deletes events older than AUDIT_RETENTION now. */
  readonly audit: AuditService;
  /** Keeps the in-memory revocation list in step with other instances; `listening` for diagnostics. */
  readonly revocationSync: RevocationSync;
  /** The executable schema (without Apollo's HTTP layer and validation rules). */
  readonly schema: GraphQLSchema;
  readonly logger: Logger;
  /** Stops accepting requests, lets in-flight ones finish, then stops GraphQL and closes the database. */
  close(): Promise<void>;
}

/**
 * Builds everything from a config: database (migrated), keys, services, GraphQL schema, Apollo
 * Server and the Fastify instance with `/graphql`, `/healthz` and `/readyz`. Listens on nothing;
 * `main.ts` does. Two apps built in one process share no state.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config);
  const now = options.now ?? Date.now;

  const database = openDatabase(config, logger);
  const cleanups: Array<() => Promise<void>> = [];
  try {
    return await assemble(config, database, logger, now, cleanups);
  } catch (error) {
    // Nothing half-built stays open: a failed start releases what it opened.
    for (const cleanup of cleanups.reverse()) await cleanup();
    await database.close();
    throw error;
  }
}

async function assemble(
  config: Config,
  database: DatabaseHandle,
  logger: Logger,
  now: () => number,
  cleanups: Array<() => Promise<void>>,
): Promise<App> {
  await migrateToLatest(database, config.databaseSchema);

  const keys = loadKeyRing(config, (message) => logger.warn(message), now);
  const keyRefresher = keepKeysCurrent(keys, config, {
    now,
    onError: (error) => logger.error({ err: error }, "reloading signing keys failed; keeping the current ones"),
  });
  cleanups.push(async () => keyRefresher.stop());
  const tokens = createTokenService(config, keys, { now, onUnknownKid: keyRefresher.reloadOnUnknownKid });
  const passwords = new PasswordHasher();
  cleanups.push(() => passwords.close());
  const userStore = new UserStore(database.db, database.dialect);

  const audit = new AuditService({ store: new AuditStore(database.db), retentionSeconds: config.audit.retentionSeconds, now, logger });
  // Coalesced counts still in memory reach their rows before the database closes.
  cleanups.push(() => audit.stop());
  // One store (one Redis connection, or the app's database) for every rate limit.
  const counters = await createCounterStore(config, database, logger);
  cleanups.push(() => counters.close());
  const throttle = await createLoginThrottle(config, counters, logger);
  const registrations = await createFloodLimit(
    counters,
    "register:ip",
    config.floodLimits.registrationsPerIpPerHour,
    "Too many accounts were registered from this address",
  );
  const postCreations = await createFloodLimit(counters, "post:user", config.floodLimits.postsPerUserPerHour, "Too many posts were created by this account");
  const housekeeping = async () => {
    await audit.prune();
    await counters.clearExpired();
  };
  await housekeeping();
  const housekeepingTimer = setInterval(() => void housekeeping(), HOUSEKEEPING_INTERVAL_MS);
  housekeepingTimer.unref();
  cleanups.push(async () => clearInterval(housekeepingTimer));

  // A revocation entry matters while a token minted before it can still be unexpired.
  const retentionMs = (config.jwt.accessTokenTtlSeconds + IAT_LEEWAY_SECONDS + 60) * 1000;
  const revocations = new RevocationList(retentionMs, now);
  const revocationSync = new RevocationSync({
    database,
    postgres: config.databaseUrl ? { connection: postgresConnectionOptions(config), schema: config.databaseSchema } : undefined,
    sessions: new SessionStore(database.db),
    users: userStore,
    list: revocations,
    retentionMs,
    pollIntervalMs: config.databaseUrl ? 5000 : 500,
    now,
    logger,
  });
  await revocationSync.start();
  cleanups.push(() => revocationSync.stop());
  const announce = () => revocationSync.announce();

  const sessions = new SessionService({
    db: database.db,
    users: userStore,
    tokens,
    revocations,
    announce,
    sessionTtlSeconds: config.jwt.refreshTokenTtlSeconds,
    audit,
    now,
    logger,
  });
  const users = new UserService({
    users: userStore,
    passwords,
    onRolesChanged: async ({ userId, roles, at }) => {
      revocations.addRoleChange(userId, roles, at);
      await announce();
    },
    audit,
    now,
    logger,
  });
  const posts = new PostService({ posts: new PostStore(database.db), creations: postCreations, now, logger });
  const auth = new AuthService({ users: userStore, sessions, passwords, throttle, registrations, audit, now, logger });

  if (config.admin) {
    const outcome = await users.ensureAdmin(config.admin);
    logger.info({ username: config.admin.username, outcome }, "admin bootstrap");
  }

  const schema = await buildAppSchema(
    new Map<Function, object>([
      [AuthResolver, new AuthResolver(auth, sessions)],
      [SessionResolver, new SessionResolver(sessions)],
      [UserResolver, new UserResolver(users, posts)],
      [PostResolver, new PostResolver(posts, users)],
      [AuditResolver, new AuditResolver(audit)],
    ]),
  );

  const errorReporter = createErrorReporter(logger);
  const limits = createQueryLimits(config.queryLimits, { exposeLimits: !config.isProduction });
  const apollo = new ApolloServer<Context>({
    schema,
    introspection: !config.isProduction,
    includeStacktraceInErrorResponses: !config.isProduction,
    hideSchemaDetailsFromClientErrors: config.isProduction,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    // Depth, aliases, directives and tokens (and cost, in limits.plugin): refused with 400 before anything runs.
    parseOptions: limits.parseOptions,
    validationRules: [...limits.validationRules, singleAuthFieldRule],
    // main.ts owns SIGTERM/SIGINT. Apollo's own handler would call stop() concurrently with the
    // onClose hook's, and Apollo 5 never resolves a second concurrent stop(): shutdown would hang.
    stopOnTerminationSignals: false,
    logger: logger.child({ component: "apollo" }),
    formatError: createErrorFormatter({
      revealInternals: !config.isProduction,
      report: errorReporter.report,
      isUnavailable: isDatabaseUnavailable,
    }),
    plugins: [
      // No cache hints are used; the plugin would otherwise wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      limits.plugin,
      errorReporter.plugin,
      serviceUnavailableStatus,
      subscriptionsOverHttpRefused(),
      config.isProduction
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }),
    ],
  });
  await apollo.start();

  const server = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Our own ids, so a client-sent header cannot inject text into the logs; echoed in x-request-id.
    genReqId: () => randomUUID(),
    // request.ip (sessions, logs) and request.protocol (HSTS) believe X-Forwarded-* only from these.
    trustProxy: typeof config.trustProxy === "object" ? [...config.trustProxy] : config.trustProxy,
    // Requests that reach an open connection while closing are served, not answered 503.
    return503OnClosing: false,
  });
  closeConnectionsWhenClosing(server);
  server.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  await registerHttpSecurity(server, config);

  // Bodies that are neither JSON nor text reach Apollo unparsed, so its CSRF prevention answers them
  // with 400 instead of Fastify's 415: a form post is exactly the shape CSRF uses.
  server.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));

  server.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) {
      return reply.status(413).send(errorBody(`Request body is larger than ${BODY_LIMIT_BYTES} bytes.`, ProtocolErrorCode.PAYLOAD_TOO_LARGE));
    }
    if (status >= 400 && status < 500) {
      const message = error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError
        ? "The request body is not valid JSON."
        : "The request could not be read.";
      return reply.status(400).send(errorBody(message, ProtocolErrorCode.BAD_REQUEST));
    }
    request.log.error({ err: error }, "request failed");
    return reply.status(500).send(errorBody("Internal server error.", ErrorCode.INTERNAL_SERVER_ERROR));
  });

  const context = createContextFunction({
    tokens,
    revocations,
    onRejected: (request, reason, holder) => {
      // Debug, not info: a client retrying a junk token makes hundreds a second, and the coalesced
      // audit row below already counts them.
      request.log.debug({ reason }, "access token rejected");
      // The reason class only: never the token, not even a part of it. Coalesced per IP, reason
      // and user, and not awaited: a flood costs one row a minute, and the 401 never waits for
      // the database.
      audit.recordCoalesced(
        {
          type: AuditEventType.TOKEN_REJECTED,
          userId: holder?.userId,
          sessionId: holder?.sessionId,
          client: { ip: request.ip, userAgent: request.headers["user-agent"], requestId: request.id },
        },
        { reason },
      );
    },
  });
  server.route({
    url: "/graphql",
    method: ["GET", "POST", "OPTIONS"],
    handler: fastifyApolloHandler(apollo, { context }),
  });

  // Public keys for other services and gateways to verify access tokens without calling us.
  // Empty with HS256, whose key is a shared secret. Short cache: a rotated key must appear quickly.
  server.get("/.well-known/jwks.json", async (_request, reply) => {
    reply.header("cache-control", "public, max-age=60");
    return keys.jwks();
  });

  server.get("/healthz", async () => ({ status: "ok" }));
  // Ready means the database answers within DATABASE_TIMEOUT; the failure itself is logged by the
  // database module once per outage, not once per probe.
  server.get("/readyz", async (_request, reply) => {
    try {
      await database.ping();
      return { status: "ready" };
    } catch {
      reply.header("retry-after", String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
      return reply.status(503).send({ status: "unavailable" });
    }
  });

  server.addHook("onClose", async () => {
    await apollo.stop();
    for (const cleanup of cleanups.reverse()) await cleanup();
    await database.close();
  });

  return {
    server,
    database,
    tokens,
    keys,
    reloadKeys: keyRefresher.reload,
    users,
    audit,
    revocationSync,
    schema,
    logger,
    close: () => server.close(),
  };
}

function errorBody(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}
