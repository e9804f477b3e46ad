import type { Server } from "node:http";

import type { Logger } from "pino";

import { type App, createApp } from "./app.js";
import { type Config, ConfigError } from "./config.js";
import { loadConfig } from "./load-config.js";
import { createLogger } from "./logger.js";

/**
 * How long in-flight requests get to finish once the listener closes (after SIGTERM/SIGINT and the
 * SHUTDOWN_DRAIN) before the process exits anyway, with status 1.
 */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config);
  const app = await createApp(config, { logger });
  const metricsServer = await listenForMetrics(app, config);
  await app.server.listen({ host: config.host, port: config.port });
  logger.info(
    {
      url: `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${config.port}/graphql`,
      metrics: metricsServer ? `http://${config.metrics.host}:${config.metrics.port}/metrics` : "off",
      database: app.database.dialect,
      env: config.nodeEnv,
      // The two settings most often wrong behind a proxy or with a browser client.
      corsOrigins: config.corsOrigins,
      trustProxy: config.trustProxy,
    },
    "server ready",
  );
  handleSignals(app, config, logger, metricsServer);
}

/** The configuration, or its problems on stderr, one a line, and exit status 1. */
function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWithProblems(error);
    throw error;
  }
}

/** Each problem on stderr as `config error: <problem>`, then exit status 1: a setting or a file it names (TRUSTED_DOCUMENTS) is wrong. */
function exitWithProblems(error: ConfigError): never {
  for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`);
  process.exit(1);
}

/**
 * Reads TRUSTED_DOCUMENTS again (SIGHUP): the new set is in force for the next request; a manifest
 * with any problem is refused whole, each problem logged, and the set in force stays.
 */
function reloadTrustedDocuments(app: App, logger: Logger): void {
  try {
    const set = app.trustedDocuments.reload();
    if (set) logger.info({ file: set.file, documents: set.size }, "trusted documents reloaded");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const kept = app.trustedDocuments.current()?.size;
    logger.error(
      { problems: error.problems, documents: kept },
      "trusted documents not reloaded: the set in force stays",
    );
  }
}

/** Prometheus on a listener of its own, never the public port; METRICS_PORT=0 switches it off. */
async function listenForMetrics(app: App, config: Config): Promise<Server | undefined> {
  if (config.metrics.port === 0) return undefined;
  const { host, port } = config.metrics;
  const metricsServer = app.metrics.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      metricsServer.once("error", reject);
      metricsServer.listen({ host, port }, () => resolve());
    });
  } catch (error) {
    await app.close();
    throw new Error(`METRICS_PORT: cannot listen on ${host}:${port} (${(error as Error).message})`);
  }
  return metricsServer;
}

/**
 * On SIGTERM/SIGINT: the drain first (SHUTDOWN_DRAIN; /readyz answers 503 while every request is
 * still served, so load balancers stop sending new ones), then the listener closes and in-flight
 * requests get SHUTDOWN_GRACE_MS to finish. A second signal during the drain ends it at once.
 * SIGHUP reloads the signing keys and the trusted documents.
 */
function handleSignals(app: App, config: Config, logger: Logger, metricsServer: Server | undefined): void {
  let drainTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (drainTimer !== undefined) {
        logger.info({ signal }, "second signal: drain ended early");
        clearTimeout(drainTimer);
        drainTimer = undefined;
        close(app, logger, metricsServer, signal);
      }
      return;
    }
    stopping = true;
    const drainMs = config.http.shutdownDrainMs;
    if (drainMs === 0) return close(app, logger, metricsServer, signal);
    app.drain();
    logger.info({ signal, drainMs }, "shutting down: draining (/readyz answers 503, requests are still served)");
    drainTimer = setTimeout(() => {
      drainTimer = undefined;
      close(app, logger, metricsServer, signal);
    }, drainMs);
  };
  process.on("SIGHUP", () => {
    logger.info("SIGHUP: reloading signing keys and trusted documents");
    app.reloadKeys();
    reloadTrustedDocuments(app, logger);
  });
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** Closes the app and the metrics listener, then exits: 0 once both closed, 1 after SHUTDOWN_GRACE_MS or on failure. */
function close(app: App, logger: Logger, metricsServer: Server | undefined, signal: NodeJS.Signals): void {
  logger.info({ signal }, "shutting down: finishing in-flight requests");
  setTimeout(() => {
    logger.error("shutdown grace period over; exiting");
    process.exit(1);
  }, SHUTDOWN_GRACE_MS).unref();
  // The metrics listener closes with the app; an idle scraper connection must not hold it open.
  const metricsClosed = new Promise<void>((resolve) =>
    metricsServer ? metricsServer.close(() => resolve()) : resolve(),
  );
  metricsServer?.closeAllConnections();
  Promise.all([app.close(), metricsClosed]).then(
    () => {
      logger.info("stopped");
      process.exit(0);
    },
    (error: unknown) => {
      logger.error({ err: error }, "shutdown failed");
      process.exit(1);
    },
  );
}

main().catch((error: unknown) => {
  // createApp checks what the settings name (the TRUSTED_DOCUMENTS manifest) as loadConfig checks them.
  if (error instanceof ConfigError) exitWithProblems(error);
  process.stderr.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
