// The compiled lane's parity check, for tests only (createApp's `laneParity` option, never a
// setting): every request the lane serves is answered by a shadow Apollo Server too, and the two
// answers compared (test/graphql/compiled-lane-parity.test.ts runs the HTTP suites this way).
import { type ApolloServer, HeaderMap } from "@apollo/server";

import type { Context } from "../access/principal.js";
import type { CompiledLane, LaneAnswer, LaneRequest } from "./compiled-lane.js";

/** One comparison: the lane's answer and the shadow's were the same, or how they differ. */
export interface LaneParityRecord {
  readonly result: "compared" | "mismatch";
  readonly operationName: string | null;
  readonly status: number;
  /** With a mismatch: each side's status, headers (sorted) and body. */
  readonly diff?: { readonly lane: ComparedAnswer; readonly apollo: ComparedAnswer };
}

interface ComparedAnswer {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/**
 * The lane, with each answer it serves compared to the `shadow` Apollo's answer to the same request
 * with the same context (the shadow is built with the same schema and options, no metrics, a silent
 * logger and its own cost budget, so nothing it does counts twice); `record` gets each comparison.
 * The route still serves the lane's answer. A stack trace (development only) is compared by its
 * first line, the error's name and message: its frames are the executor's, graphql-jit's or
 * graphql-js's, and differ by nature.
 */
export function withParity(
  lane: CompiledLane,
  shadow: ApolloServer<Context>,
  record: (record: LaneParityRecord) => void,
): CompiledLane {
  return {
    plugin: lane.plugin,
    get size() {
      return lane.size;
    },
    async serve(request) {
      const answer = await lane.serve(request);
      if (!answer) return undefined;
      const apollo = await shadowAnswer(shadow, request);
      const mine = compared(answer);
      const same = JSON.stringify(mine) === JSON.stringify(apollo);
      const body = request.body as { operationName?: unknown };
      record({
        result: same ? "compared" : "mismatch",
        operationName: typeof body.operationName === "string" ? body.operationName : null,
        status: answer.status,
        ...(same ? {} : { diff: { lane: mine, apollo } }),
      });
      return answer;
    },
  };
}

async function shadowAnswer(shadow: ApolloServer<Context>, request: LaneRequest): Promise<ComparedAnswer> {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const response = await shadow.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: request.method, headers, search: "", body: request.body },
    context: request.context,
  });
  const body = response.body.kind === "complete" ? response.body.string : "(chunked)";
  return compared({ status: response.status ?? 200, headers: response.headers, body });
}

function compared(answer: Omit<LaneAnswer, "headers"> & { headers: Iterable<[string, string]> }): ComparedAnswer {
  const headers = [...answer.headers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { status: answer.status, headers, body: withoutStackFrames(answer.body) };
}

/** The body with each `stacktrace` cut to its first line (see {@link withParity}). */
function withoutStackFrames(body: string): string {
  if (!body.includes('"stacktrace"')) return body;
  try {
    return JSON.stringify(JSON.parse(body), (key, value: unknown) =>
      key === "stacktrace" && Array.isArray(value) ? value.slice(0, 1) : value,
    );
  } catch {
    return body;
  }
}
