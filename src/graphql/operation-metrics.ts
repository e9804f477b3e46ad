import type { ApolloServerPlugin } from "@apollo/server";

import type { Context } from "../access/principal.js";
import type { LimitName, MetricsRecorder, OperationType } from "../metrics.js";

/**
 * An Apollo plugin counting every operation over HTTP by type and outcome, with its latency: from
 * Apollo receiving the request to the response being ready. The type is the operation's kind,
 * never its name (a client chooses names); a document that does not parse or names no operation
 * is `unknown`. The outcome is `error` when the response carries any error, else `ok`. A list's
 * `first` or `offset` refused for being over its cap counts as FIRST_MAX or OFFSET_MAX (once per
 * field refused).
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
        async didEncounterErrors({ errors }) {
          countPageLimits(metrics, errors);
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

/**
 * Counts the FIRST_MAX and OFFSET_MAX refusals among an operation's errors (before formatting):
 * the plugin's step, and the compiled lane's (compiled-lane-answer.ts).
 */
export function countPageLimits(
  metrics: Pick<MetricsRecorder, "limitReached">,
  errors: ReadonlyArray<{ readonly extensions?: Readonly<Record<string, unknown>> }>,
): void {
  for (const error of errors) {
    const limit = pageLimitOf(error.extensions?.fields);
    if (limit) metrics.limitReached(limit);
  }
}

/** FIRST_MAX or OFFSET_MAX when a BAD_USER_INPUT's problems include `first` or `offset` over its cap. */
function pageLimitOf(fields: unknown): LimitName | undefined {
  if (!Array.isArray(fields)) return undefined;
  for (const { field, rule } of fields as Array<{ field?: unknown; rule?: unknown }>) {
    if (rule !== "max") continue;
    if (field === "first") return "FIRST_MAX";
    if (field === "offset") return "OFFSET_MAX";
  }
  return undefined;
}
