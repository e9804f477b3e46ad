import type { FastifyInstance } from "fastify";

/** How often idle keep-alive connections are closed while the server is closing. */
const IDLE_SWEEP_MS = 50;

/**
 * Lets `server.close()` finish while clients keep connections alive. Node's `server.close()`
 * closes only the connections idle at that moment and then waits for the others to end; a
 * connection that finishes its request afterwards stays open (keep-alive, 72 s in Fastify), so
 * under load shutdown waited out main.ts's whole grace period and exited 1. From the moment
 * closing starts, every response says `Connection: close` (Node then ends its socket), and
 * connections that still turn idle are closed every {@link IDLE_SWEEP_MS} ms. Requests that
 * arrive on an open connection meanwhile are served as usual (Fastify's `return503OnClosing:
 * false`) instead of getting a 503.
 */
export function closeConnectionsWhenClosing(server: FastifyInstance): { isClosing: () => boolean } {
  let closing = false;
  let sweep: NodeJS.Timeout | undefined;
  server.addHook("preClose", (done) => {
    closing = true;
    sweep = setInterval(() => server.server.closeIdleConnections(), IDLE_SWEEP_MS);
    sweep.unref();
    done();
  });
  server.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });
  server.addHook("onClose", (_instance, done) => {
    clearInterval(sweep);
    done();
  });
  // The GraphQL route on node:http (graphql-route.ts) sets Connection: close from the same flag.
  return { isClosing: () => closing };
}
