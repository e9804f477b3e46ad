import type { ApolloServerPlugin } from "@apollo/server";

import type { Context } from "../access/principal.js";
import type { MetricsRecorder, OperationType } from "../metrics.js";

/**
 * An Apollo plugin counting every operation over HTTP by type and outcome, with its latency: from
 * Apollo receiving the request to the response being ready. The type is the operation's kind,
 * never its name (a client chooses names); a document that does not parse or names no operation
 * is `unknown`. The outcome is `error` when the response carries any error, else `ok`.
 */
export function operationMetricsPlugin(metrics: MetricsRecorder): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      const started = performance.now();
      let type: OperationType = "unknown";
      return {
        async didResolveOperation({ operation }) {
          if (operation) type = operation.operation;
        },
        async willSendResponse({ errors, response }) {
          const failed =
            (errors?.length ?? 0) > 0 ||
            (response.body.kind === "single" && (response.body.singleResult.errors?.length ?? 0) > 0);
          metrics.operation(type, failed ? "error" : "ok", (performance.now() - started) / 1000);
        },
      };
    },
  };
}
