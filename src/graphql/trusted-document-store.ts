// Apollo's document cache, answering the listed documents of TRUSTED_DOCUMENTS from the set checked
// at load, so that a trusted request is neither parsed nor validated again (docs/trusted-documents.md).
import type { DocumentStore } from "@apollo/server";
import type { DocumentNode, OperationDefinitionNode } from "graphql";

import type { TrustedDocuments } from "./trusted-documents.js";

/**
 * Apollo's own default for its document cache: 30 MiB, an entry weighing the length of its JSON
 * (what `InMemoryLRUCache` of @apollo/utils.keyvaluecache counts).
 */
export const VALIDATED_DOCUMENTS_MAX_SIZE = 30 * 2 ** 20;

/**
 * Apollo's `documentStore`: for a key whose hash names a listed document of the set in force, that
 * document as checked at load (Apollo then skips its parse and validation); for any other, the
 * documents Apollo parsed and validated itself, least recently used dropped first past `maxSize`
 * (default {@link VALIDATED_DOCUMENTS_MAX_SIZE}), as Apollo's default store keeps them. Apollo
 * never stores a listed document (its `get` found it), and a reload is seen at the next request.
 */
export function createTrustedDocumentStore(
  trusted: Pick<TrustedDocuments, "current">,
  maxSize = VALIDATED_DOCUMENTS_MAX_SIZE,
): DocumentStore {
  const validated = new SizedLru<DocumentNode>(maxSize, (document) => JSON.stringify(document).length);
  return {
    async get(key) {
      // Apollo's key is `<schema hash>:<SHA-256 of the query>`, the listed documents' id.
      const listed = trusted.current()?.byId(key.slice(key.lastIndexOf(":") + 1));
      return listed ? listed.document : validated.get(key);
    },
    async set(key, document) {
      validated.set(key, document);
    },
    async delete(key) {
      return validated.delete(key);
    },
  };
}

/**
 * The cost of `operation` recorded at load when `document` is a listed document as the store
 * answered it and no variable changes that operation's cost; undefined otherwise (price it).
 */
export function fixedCostOf(
  trusted: Pick<TrustedDocuments, "current">,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): number | undefined {
  return trusted
    .current()
    ?.byDocument(document)
    ?.fixedCosts.get(operation.name?.value ?? null);
}

/** A least-recently-used map bounded by the total `weigh` of its values; one value over the bound is not kept. */
class SizedLru<V> {
  // A Map iterates in insertion order: the first key is the least recently used.
  private readonly entries = new Map<string, { value: V; weight: number }>();
  private total = 0;

  constructor(
    private readonly maxSize: number,
    private readonly weigh: (value: V) => number,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V): void {
    this.delete(key);
    const weight = this.weigh(value);
    if (weight > this.maxSize) return;
    this.entries.set(key, { value, weight });
    this.total += weight;
    for (const [oldest, entry] of this.entries) {
      if (this.total <= this.maxSize) break;
      this.entries.delete(oldest);
      this.total -= entry.weight;
    }
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.total -= entry.weight;
    return true;
  }
}
