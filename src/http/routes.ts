// Fastify's small routes: the public keys, token introspection and its discovery, the health and
// readiness probes, the pages behind the mailed links, and the explorer.
import type { FastifyInstance } from "fastify";

import type { KeyRing } from "../access/keys.js";
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../db/database.js";
import { SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS } from "../errors.js";
import { registerExplorer } from "./explorer.js";
import { type IntrospectionDeps, registerIntrospection } from "./introspection.js";
import { registerLinkPages } from "./link-pages.js";
import { registerPasskeyPage } from "./passkey-page.js";

export interface RoutesDeps extends IntrospectionDeps {
  config: Config;
  keys: KeyRing;
  database: DatabaseHandle;
  /** Whether the server is draining or closing (graceful-close.ts): /readyz then answers 503. */
  isClosing: () => boolean;
}

/**
 * `/.well-known/jwks.json`, `POST /oauth/introspect` and `/.well-known/oauth-authorization-server`,
 * `/healthz`, `/readyz`, `/reset-password` and `/verify-email`, and `/graphiql` and `/passkeys` in
 * development.
 */
export function registerRoutes(server: FastifyInstance, deps: RoutesDeps): void {
  // Public keys for other services and gateways to verify access tokens without calling us.
  // Empty with HS256, whose key is a shared secret. Short cache: a rotated key must appear quickly.
  server.get("/.well-known/jwks.json", async (_request, reply) => {
    reply.header("cache-control", "public, max-age=60");
    return deps.keys.jwks();
  });
  // Whether a token is live, logouts included, for other services (RFC 7662), and where to ask (RFC 8414).
  registerIntrospection(server, deps);

  // The pages the default links of reset and verification mails open, in every environment.
  registerLinkPages(server);

  // GraphiQL from node_modules at /graphiql, in development only.
  registerExplorer(server, deps.config);
  // A page to try passkeys with at /passkeys, in development only.
  registerPasskeyPage(server, deps.config);

  server.get("/healthz", async () => ({ status: "ok" }));
  // Ready means the database answers within DATABASE_TIMEOUT; the failure itself is logged by the
  // database module once per outage, not once per probe.
  server.get("/readyz", async (_request, reply) => {
    // Draining before shutdown (SHUTDOWN_DRAIN): still serving, but no longer to be sent new requests.
    if (deps.isClosing()) return reply.status(503).send({ status: "draining" });
    try {
      await deps.database.ping();
      return { status: "ready" };
    } catch {
      reply.header("retry-after", String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
      return reply.status(503).send({ status: "unavailable" });
    }
  });
}
