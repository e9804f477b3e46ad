// The compiled lane's documents (compiled-lane.ts): what a request's exact text and operation name
// find, compiled with graphql-jit on first use, and the bounded cache that holds them.
import { type DocumentNode, type GraphQLSchema, Kind, type OperationDefinitionNode, visit } from "graphql";
import { type CompiledQuery, compileQuery, isCompiledQuery } from "graphql-jit";

/**
 * At most this many documents are held for the lane (trusted documents aside, which their manifest
 * bounds): each holds graphql-jit's generated functions, some kilobytes, so 200 stay well within
 * npm start's heap while covering every operation of a real client several times over.
 */
export const LANE_MAX_DOCUMENTS = 200;

/** At most this many bytes of document text are held for the lane, over all its documents. */
export const LANE_MAX_TEXT_BYTES = 1024 * 1024;

/** A document the lane may serve: one operation of it, and its compiled form once compiled. */
export interface LaneEntry {
  readonly document: DocumentNode;
  readonly operation: OperationDefinitionNode;
  /** The UTF-8 bytes of its text, what it weighs in the cache. */
  readonly bytes: number;
  /** Unset until first served; `null` when graphql-jit cannot compile it or it must not lane. */
  compiled?: CompiledQuery | null;
  /**
   * For an operation without variables, whose cost nothing in a request changes: its cost once
   * priced, `null` when the pricing refused it (over QUERY_MAX_COST); unset until then.
   */
  cost?: number | null;
}

/**
 * The cache key of a request's document: the exact text, and the operation name as sent (none and
 * an empty name are different requests, since Apollo resolves them differently).
 */
export function laneKey(query: string, operationName: string | undefined): string {
  return operationName === undefined ? `-${query}` : `+${operationName}\u0000${query}`;
}

/** Field names the lane leaves to Apollo: introspection, which only tools send (Sandbox, codegen). */
const INTROSPECTION_FIELDS = new Set(["__schema", "__type"]);

/**
 * The compiled query of `entry`, compiling it the first time: `null` (for good) when graphql-jit
 * refuses the document, or when it asks for introspection, which stays Apollo's.
 */
export function compiledOf(schema: GraphQLSchema, entry: LaneEntry): CompiledQuery | null {
  if (entry.compiled !== undefined) return entry.compiled;
  let compiled: CompiledQuery | null = null;
  if (!selectsIntrospection(entry.document)) {
    try {
      const result = compileQuery(schema, entry.document, entry.operation.name?.value);
      if (isCompiledQuery(result)) compiled = result;
    } catch {
      // graphql-jit throws for some documents it does not support: Apollo keeps them.
    }
  }
  entry.compiled = compiled;
  return compiled;
}

function selectsIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    [Kind.FIELD]: (node) => {
      if (INTROSPECTION_FIELDS.has(node.name.value)) found = true;
    },
  });
  return found;
}

/**
 * Documents by {@link laneKey}, least recently used dropped first once there are more than
 * `maxEntries` or their text weighs more than `maxBytes` in all.
 */
export class LaneCache {
  // Each held entry with the tick of its last use: a hit only stamps it (no reordering of the Map,
  // whose deletions would leave holes to compact), and the rare eviction looks for the oldest stamp.
  private readonly entries = new Map<string, { readonly entry: LaneEntry; usedAt: number }>();
  private total = 0;
  private clock = 0;

  constructor(
    private readonly maxEntries = LANE_MAX_DOCUMENTS,
    private readonly maxBytes = LANE_MAX_TEXT_BYTES,
  ) {}

  /** How many documents, and how many bytes of text, are held now. */
  get size(): { readonly documents: number; readonly bytes: number } {
    return { documents: this.entries.size, bytes: this.total };
  }

  get(key: string): LaneEntry | undefined {
    const held = this.entries.get(key);
    if (!held) return undefined;
    held.usedAt = ++this.clock;
    return held.entry;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Adds `entry` as the most recently used; one heavier than the whole bound is not kept. */
  set(key: string, entry: LaneEntry): void {
    this.delete(key);
    if (entry.bytes > this.maxBytes) return;
    this.entries.set(key, { entry, usedAt: ++this.clock });
    this.total += entry.bytes;
    while (this.total > this.maxBytes || this.entries.size > this.maxEntries) this.delete(this.leastRecentlyUsed()!);
  }

  private leastRecentlyUsed(): string | undefined {
    let oldest: string | undefined;
    let oldestAt = Number.POSITIVE_INFINITY;
    for (const [key, held] of this.entries) {
      if (held.usedAt < oldestAt) [oldest, oldestAt] = [key, held.usedAt];
    }
    return oldest;
  }

  private delete(key: string): void {
    const held = this.entries.get(key);
    if (!held) return;
    this.entries.delete(key);
    this.total -= held.entry.bytes;
  }
}
