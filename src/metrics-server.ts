import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

import type { Registry } from "prom-client";

import { METRICS_PATH } from "./metric-names.js";

/** A node:http server answering GET and HEAD /metrics with the registry's text, 404 elsewhere. */
export function createMetricsServer(registry: Registry): Server {
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
