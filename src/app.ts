import "reflect-metadata";

import type { FastifyInstance } from "fastify";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";

import type { KeyRing } from "./access/keys.js";
import type { RevocationSync } from "./access/revocation-sync.js";
import type { TokenService } from "./access/tokens.js";
import type { AuditService } from "./audit/index.js";
import type { Config } from "./config.js";
import type { DatabaseHandle } from "./db/database.js";
import { createApolloServer, createGraphqlShared } from "./graphql/apollo.js";
import { createCompiledLane } from "./graphql/compiled-lane.js";
import { type LaneParityRecord, withParity } from "./graphql/compiled-lane-parity.js";
import { manifestCheckOf, TrustedDocuments } from "./graphql/trusted-documents.js";
import { EXPLORER_PATH } from "./http/explorer.js";
import { createHttpServer } from "./http/server.js";
import { createLogger } from "./logger.js";
import type { Mailer } from "./mailer.js";
import type { Metrics } from "./metrics.js";
import { buildAppSchema } from "./schema.js";
import { createServices } from "./services.js";
import type { UserService } from "./users/index.js";

export interface AppOptions {
  /** Default: JSON logs to stdout at LOG_LEVEL. */
  logger?: Logger;
  /** Milliseconds since the epoch; tests freeze it. Default `Date.now`. */
  now?: () => number;
  /**
   * Tests only (never a setting): every request the compiled lane serves is answered by a shadow
   * Apollo Server too, and the comparison handed here (graphql/compiled-lane-parity.ts).
   */
  laneParity?: (record: LaneParityRecord) => void;
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
  /** The TRUSTED_DOCUMENTS manifest in force (none without the setting). */
  readonly trustedDocuments: TrustedDocuments;
  /** The executable schema (without Apollo's HTTP layer and validation rules). */
  readonly schema: GraphQLSchema;
  readonly logger: Logger;
  /**
   * This app's Prometheus registry and counters; `metrics.createServer()` is the listener main.ts
   * starts on METRICS_HOST:METRICS_PORT (the app itself never serves them).
   */
  readonly metrics: Metrics;
  /** The outbox: `mailer.enqueue(db, mail)` in a transaction; this app's sender delivers it. */
  readonly mailer: Mailer;
  /**
   * Starts the drain before {@link close} (main.ts, on SIGTERM, for SHUTDOWN_DRAIN): requests are
   * still served, but /readyz answers 503 and every response says Connection: close.
   */
  drain(): void;
  /** Stops accepting requests, lets in-flight ones finish, then stops GraphQL and closes the database. */
  close(): Promise<void>;
}

/** The parity check's shadow: Apollo as the app builds it, counting nothing and logging nothing, with its own cost budget. */
function shadowApollo(config: Config, schema: GraphQLSchema, logger: Logger, trusted: TrustedDocuments) {
  return createApolloServer(schema, config, logger.child({}, { level: "silent" }), undefined, EXPLORER_PATH, trusted);
}

/**
 * Builds everything from a config: the services (services.ts, shared with the CLI), the admin
 * bootstrap, the GraphQL schema, Apollo Server and the HTTP server. Listens on nothing; main.ts
 * does. Closing the server stops, in order: HTTP, Apollo, then the services and the database. Two
 * apps built in one process share no state.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config);
  const services = await createServices(config, { logger, now: options.now, background: true });
  try {
    if (config.admin) {
      const outcome = await services.users.ensureAdmin(config.admin);
      logger.info({ username: config.admin.username, outcome }, "admin bootstrap");
    }
    const schema = await buildAppSchema(services, config.mfa);
    // Every listed document parsed, validated and priced now: a bad manifest stops the start, naming TRUSTED_DOCUMENTS.
    const trustedDocuments = new TrustedDocuments(config.surface.trustedDocuments, manifestCheckOf(config, schema));
    const shared = createGraphqlShared(config, logger, services.metrics, trustedDocuments);
    const lane = config.surface.compiledLane
      ? createCompiledLane({ schema, shared, metrics: services.metrics, trusted: trustedDocuments })
      : undefined;
    const apollo = await createApolloServer(schema, config, logger, services.metrics, EXPLORER_PATH, trustedDocuments, {
      shared,
      plugins: lane ? [lane.plugin] : [],
    });
    const shadow =
      lane && options.laneParity ? await shadowApollo(config, schema, logger, trustedDocuments) : undefined;
    const { fastify: server, drain } = await createHttpServer({
      ...services,
      config,
      logger,
      apollo,
      schema,
      trustedDocuments,
      lane: shadow && options.laneParity ? withParity(lane!, shadow, options.laneParity) : lane,
      now: options.now,
    });
    server.addHook("onClose", async () => {
      await shadow?.stop();
      await apollo.stop();
      await services.close();
    });
    return {
      server,
      database: services.database,
      tokens: services.tokens,
      keys: services.keys,
      reloadKeys: services.reloadKeys,
      users: services.users,
      audit: services.audit,
      revocationSync: services.revocationSync,
      trustedDocuments,
      schema,
      logger,
      metrics: services.metrics,
      mailer: services.mailer,
      drain,
      close: () => server.close(),
    };
  } catch (error) {
    // Nothing half-built stays open: a failed start releases what it opened.
    await services.close();
    throw error;
  }
}
