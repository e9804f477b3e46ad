// The compiled lane (issue 28): known query documents run through graphql-jit without Apollo's
// per-request pipeline, answered exactly as Apollo answers them (docs/performance.md, "Compiled lane").
import type { ApolloServerPlugin } from "@apollo/server";
import {
  type DocumentNode,
  type ExecutionResult,
  getVariableValues,
  type GraphQLError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  OperationTypeNode,
} from "graphql";

import { owesSecondFactor } from "../access/auth-checker.js";
import type { Context } from "../access/principal.js";
import type { MetricsRecorder } from "../metrics.js";
import type { GraphqlShared } from "./apollo.js";
import { answerOf, asGraphqlJsError, type LaneAnswer } from "./compiled-lane-answer.js";
import { compiledOf, LaneCache, type LaneEntry, laneKey } from "./compiled-lane-cache.js";
import {
  createMediaTypeChooser,
  type LaneHttpRequest,
  type PlainRequest,
  plainRequest,
} from "./compiled-lane-request.js";
import type { TrustedDocuments, TrustedDocumentSet } from "./trusted-documents.js";

export type { LaneAnswer } from "./compiled-lane-answer.js";

/** A request offered to the lane: as the route has it, and its context, built at most once. */
export interface LaneRequest extends LaneHttpRequest {
  /** The request's context; the route hands Apollo the same promise when the lane does not answer. */
  readonly context: () => Promise<Context>;
}

export interface CompiledLane {
  /**
   * The whole answer, or undefined ("not mine") before anything with a side effect ran but the
   * context (which Apollo then gets as it is): the route then calls Apollo exactly as without the lane.
   */
  serve(request: LaneRequest): Promise<LaneAnswer | undefined>;
  /** For Apollo's plugins: registers each query Apollo parsed, validated, priced and ran. */
  readonly plugin: ApolloServerPlugin<Context>;
  /** The documents held (trusted ones aside), for tests. */
  readonly size: LaneCache["size"];
}

export interface CompiledLaneDeps {
  readonly schema: GraphQLSchema;
  readonly shared: GraphqlShared;
  readonly metrics: MetricsRecorder;
  readonly trusted?: Pick<TrustedDocuments, "current">;
  /** The bounded cache (default: LANE_MAX_DOCUMENTS and LANE_MAX_TEXT_BYTES). */
  readonly cache?: LaneCache;
}

/**
 * The lane: a request takes it only in the plain case (compiled-lane-request.ts) for a document
 * already known, a query that Apollo ran before (registered by {@link CompiledLane.plugin}) or an
 * operation of a trusted document (every one, from the manifest in force); then only when its
 * variables coerce, its cost passes QUERY_MAX_COST and fits QUERY_MAX_COST_IN_FLIGHT at once, its
 * context was built and its caller owes no second factor. Each of those is Apollo's own check,
 * asked without counting anything, so a refusal is Apollo's, in Apollo's words and counters.
 */
export function createCompiledLane(deps: CompiledLaneDeps): CompiledLane {
  const cache = deps.cache ?? new LaneCache();
  const trustedEntries = new WeakMap<TrustedDocumentSet, Map<string, LaneEntry>>();
  const trustedOf = (set: TrustedDocumentSet) => {
    let entries = trustedEntries.get(set);
    if (!entries) trustedEntries.set(set, (entries = entriesOfTrusted(set)));
    return entries;
  };
  // Every trusted document at load; a reload's at the first request that finds the new set.
  const initial = deps.trusted?.current();
  if (initial) trustedOf(initial);

  const find = (query: string, operationName: string | undefined): LaneEntry | undefined => {
    const key = laneKey(query, operationName);
    const set = deps.trusted?.current();
    return (set && trustedOf(set).get(key)) ?? cache.get(key);
  };
  const chooseMediaType = createMediaTypeChooser();
  const handOver = () => {
    deps.metrics.compiledLane("handed_over");
    return undefined;
  };

  return {
    get size() {
      return cache.size;
    },
    plugin: registrationPlugin(cache),
    async serve(request) {
      const plain = plainRequest(request, chooseMediaType);
      const entry = plain && find(plain.query, plain.operationName);
      const compiled = entry && compiledOf(deps.schema, entry);
      if (!plain || !entry || !compiled) return handOver();
      const answer = await run(deps, plain, entry, compiled, request.context);
      if (!answer) return handOver();
      deps.metrics.compiledLane("served");
      return answer;
    },
  };
}

type Compiled = NonNullable<LaneEntry["compiled"]>;

/** The checks that need the variables and the context, then the execution and Apollo's answer. */
async function run(
  deps: CompiledLaneDeps,
  plain: PlainRequest,
  entry: LaneEntry,
  compiled: Compiled,
  contextOf: () => Promise<Context>,
): Promise<LaneAnswer | undefined> {
  const { schema, shared } = deps;
  const { operation } = entry;
  const variables = plain.variables ?? {};
  if (!variablesCoerce(schema, operation, variables)) return undefined;
  const cost = costOf(deps, entry, variables);
  if (cost === undefined) return undefined;
  let context: Context;
  try {
    context = await contextOf();
  } catch {
    // Apollo answers the same rejected promise in its own words.
    return undefined;
  }
  if (owesSecondFactor(context.principal)) return undefined;
  const release = shared.rules.cost.inFlight.tryAcquire(cost, context.ip);
  if (!release) return undefined;
  const started = performance.now();
  const input = { shared, metrics: deps.metrics, context, mediaType: plain.mediaType, started, release };
  let result: ExecutionResult;
  try {
    // Apollo runs every operation on a shallow copy of the context (ApolloServer.js's cloneObject).
    const contextValue = Object.assign(Object.create(Object.getPrototypeOf(context) as object) as object, context);
    result = await compiled.query(undefined, contextValue, variables);
  } catch (error) {
    // requestPipeline.js: an execution that throws is answered with that error alone (500).
    return answerOf({ errors: [error as GraphQLError] }, input);
  }
  if (result.data === undefined) {
    // graphql-jit refused the variables before running anything: Apollo words that refusal.
    release();
    return undefined;
  }
  const errors = result.errors?.map(asGraphqlJsError);
  return answerOf(errors ? { data: result.data, errors } : { data: result.data }, input);
}

/**
 * The operation's cost as Apollo's cost check finds it, undefined when that check refuses it; an
 * operation without variables is priced once, its first time in the lane, since nothing a request
 * sends can change its cost.
 */
function costOf(deps: CompiledLaneDeps, entry: LaneEntry, variables: Record<string, unknown>): number | undefined {
  if (entry.cost !== undefined) return entry.cost ?? undefined;
  const { schema } = deps;
  const { document, operation } = entry;
  let cost: number | undefined;
  try {
    cost = deps.shared.rules.cost.costOf({ schema, document, operation, variables });
  } catch {
    cost = undefined;
  }
  if ((operation.variableDefinitions ?? []).length === 0) entry.cost = cost ?? null;
  return cost;
}

/**
 * Whether the variables coerce as graphql-js coerces them (pure), and none is an explicit null at
 * the top: graphql-js refuses a null given to a nullable variable used where an argument must not be
 * null only when it reads the argument, in its own words, which are Apollo's to give.
 */
function variablesCoerce(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): boolean {
  const definitions = operation.variableDefinitions ?? [];
  if (definitions.length === 0) return true;
  for (const definition of definitions) if (variables[definition.variable.name.value] === null) return false;
  const coerced = getVariableValues(schema, definitions, variables, { maxErrors: 1 });
  return coerced.errors === undefined;
}

/**
 * The Apollo plugin that registers a query once Apollo has run it: it parsed, validated, passed
 * the gate, the cost check and the in-flight budget (execution started), and it is a query.
 * Mutations and subscriptions are never registered: the lane is for reads.
 */
function registrationPlugin(cache: LaneCache): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      let executed = false;
      return {
        async executionDidStart() {
          executed = true;
        },
        async willSendResponse({ source, request, document, operation }) {
          if (!executed || source === undefined || !document || operation?.operation !== OperationTypeNode.QUERY)
            return;
          const key = laneKey(source, request.operationName ?? undefined);
          if (cache.has(key)) return;
          cache.set(key, { document, operation, bytes: Buffer.byteLength(source) });
        },
      };
    },
  };
}

/** Every query operation of a trusted set's documents without a subscription, by the keys a request finds it with. */
function entriesOfTrusted(set: TrustedDocumentSet): Map<string, LaneEntry> {
  const entries = new Map<string, LaneEntry>();
  for (const trusted of set.documents()) {
    if (trusted.hasSubscription) continue;
    const operations = operationsOf(trusted.document);
    for (const operation of operations) {
      if (operation.operation !== OperationTypeNode.QUERY) continue;
      const entry: LaneEntry = { document: trusted.document, operation, bytes: Buffer.byteLength(trusted.body) };
      if (operation.name) entries.set(laneKey(trusted.body, operation.name.value), entry);
      if (operations.length === 1) entries.set(laneKey(trusted.body, undefined), entry);
    }
  }
  return entries;
}

function operationsOf(document: DocumentNode): OperationDefinitionNode[] {
  return document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
}
