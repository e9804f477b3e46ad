// The trusted documents of TRUSTED_DOCUMENTS: the manifest read in either format, every document
// checked against the schema once, and the set the edge looks requests up in (docs/trusted-documents.md).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  NoSchemaIntrospectionCustomRule,
  type OperationDefinitionNode,
  OperationTypeNode,
  validate,
} from "graphql";

import { type Config, ConfigError } from "../config.js";
import { createOperationRules, type OperationRules } from "./operation-rules.js";
import { FIRST_MAX } from "./pagination.js";
import { operationCost } from "./query-cost.js";

/** The variable that names the manifest; every problem with it names the variable. */
export const TRUSTED_DOCUMENTS = "TRUSTED_DOCUMENTS";

/** One listed document, checked at load: its id (the SHA-256 of its text, hex), its text and its parsed form. */
export interface TrustedDocument {
  readonly id: string;
  readonly body: string;
  /** Parsed with the request limits and validated against the schema with every rule a request meets. */
  readonly document: DocumentNode;
  /** Whether one of its operations is a subscription (HTTP refuses those; a WebSocket serves only those). */
  readonly hasSubscription: boolean;
  /**
   * The cost of each operation (by name; null for an anonymous one) whose cost no variable can
   * change, priced once at load: a request for it is not priced again ({@link documentCosts}).
   */
  readonly fixedCosts: ReadonlyMap<string | null, number>;
}

/** An entry of a manifest before it is checked: what the file says. */
export interface ManifestEntry {
  readonly id: string;
  readonly body: string;
}

/** The SHA-256 of a document's text, hex: Apollo's persisted-query hash and the manifests' id. */
export function documentHash(body: string): string {
  return createHash("sha256").update(body).digest("hex");
}

/**
 * The documents of one manifest, looked up by id (a hash or `documentId`, with or without the
 * `sha256:` prefix) or by exact text. Immutable: a reload builds a new set.
 */
export class TrustedDocumentSet {
  private readonly ids = new Map<string, TrustedDocument>();
  private readonly texts = new Map<string, TrustedDocument>();
  private readonly parsed = new Map<DocumentNode, TrustedDocument>();

  constructor(
    /** The manifest file, for log lines. */
    readonly file: string,
    documents: readonly TrustedDocument[],
  ) {
    for (const document of documents) {
      this.ids.set(document.id, document);
      this.texts.set(document.body, document);
      this.parsed.set(document.document, document);
    }
  }

  get size(): number {
    return this.ids.size;
  }

  /** The document with this id: 64 hex digits, optionally after `sha256:`; any other string finds nothing. */
  byId(id: string): TrustedDocument | undefined {
    const hex = id.startsWith("sha256:") ? id.slice(7) : id;
    return this.ids.get(hex.toLowerCase());
  }

  /** The document whose text is exactly `text`. */
  byText(text: string): TrustedDocument | undefined {
    return this.texts.get(text);
  }

  /** The listed document whose parsed form is this very object (what the document store answered), if any. */
  byDocument(document: DocumentNode): TrustedDocument | undefined {
    return this.parsed.get(document);
  }

  /** Every listed document, in manifest order. */
  documents(): IterableIterator<TrustedDocument> {
    return this.ids.values();
  }
}

/**
 * The entries of a manifest's text, in either format: Apollo's persisted query manifest
 * (`{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id","body",…}]}`) or
 * graphql-codegen's client preset `persisted-documents.json` (`{"<hash>":"<document>"}`). Throws a
 * {@link ConfigError} naming TRUSTED_DOCUMENTS for anything else.
 */
export function readManifest(text: string, file: string): ManifestEntry[] {
  const fail = (why: string) => new ConfigError([`${TRUSTED_DOCUMENTS} (${file}) ${why}`]);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw fail("is not JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw fail("is not a JSON object");
  const record = json as Record<string, unknown>;
  if ("format" in record) {
    if (record.format !== "apollo-persisted-query-manifest" || record.version !== 1)
      throw fail('has a "format" other than apollo-persisted-query-manifest version 1');
    if (!Array.isArray(record.operations)) throw fail('has no "operations" list');
    return record.operations.map((operation: unknown, index) => {
      const { id, body } = (operation ?? {}) as { id?: unknown; body?: unknown };
      if (typeof id !== "string" || typeof body !== "string")
        throw fail(`has an operation (number ${index + 1}) without a string "id" and "body"`);
      return { id, body };
    });
  }
  return Object.entries(record).map(([id, body]) => {
    if (typeof body !== "string") throw fail(`maps "${id.slice(0, 80)}" to something other than a document's text`);
    return { id, body };
  });
}

/** What checking a manifest against the schema needs: the request limits and validation of every transport. */
export interface ManifestCheck {
  readonly schema: GraphQLSchema;
  readonly rules: Pick<OperationRules, "parse" | "validate">;
  /** Production refuses introspection, as Apollo does with `introspection: false`. */
  readonly isProduction: boolean;
  /** QUERY_MAX_COST, and SUBSCRIPTION_MAX_COST for a subscription: a document that can never run within them is refused. */
  readonly maxCost: { readonly query: number; readonly subscription: number };
}

/** The check of a manifest under `config`: its limits, its validation, production's refusal of introspection. */
export function manifestCheckOf(config: Config, schema: GraphQLSchema): ManifestCheck {
  return {
    schema,
    rules: createOperationRules(config),
    isProduction: config.isProduction,
    maxCost: { query: config.queryLimits.maxCost, subscription: config.subscriptions.maxCost },
  };
}

/**
 * Checks each entry (its id is the SHA-256 of its text, it parses within the limits, validates
 * against the schema and can run within the cost limits: {@link documentCosts}) and builds the
 * set. Throws one {@link ConfigError} listing every problem, each naming TRUSTED_DOCUMENTS, the
 * file and the entry.
 */
export function checkManifest(
  entries: readonly ManifestEntry[],
  file: string,
  check: ManifestCheck,
): TrustedDocumentSet {
  const problems: string[] = [];
  const documents: TrustedDocument[] = [];
  for (const [index, entry] of entries.entries()) {
    const where = `${TRUSTED_DOCUMENTS} (${file}): document ${index + 1} (id ${entry.id.slice(0, 80)})`;
    const id = entry.id.startsWith("sha256:") ? entry.id.slice(7) : entry.id;
    if (id.toLowerCase() !== documentHash(entry.body)) {
      problems.push(`${where} has an id that is not the SHA-256 of its text (generate ids with sha256)`);
      continue;
    }
    const document = check.rules.parse(entry.body);
    if (document instanceof GraphQLError) {
      problems.push(`${where} does not parse: ${document.message}`);
      continue;
    }
    const errors = [
      ...check.rules.validate(check.schema, document),
      ...(check.isProduction ? validate(check.schema, document, [NoSchemaIntrospectionCustomRule]) : []),
    ];
    if (errors.length > 0) {
      problems.push(`${where} does not validate: ${errors.map((e) => e.message).join(" ")}`);
      continue;
    }
    const costs = documentCosts(document, check);
    if (typeof costs === "string") {
      problems.push(`${where} ${costs}`);
      continue;
    }
    documents.push({
      id: id.toLowerCase(),
      body: entry.body,
      document,
      hasSubscription: hasSubscription(document),
      fixedCosts: costs,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return new TrustedDocumentSet(file, documents);
}

/** Reads, checks and builds the set of the manifest `file` (see {@link readManifest}, {@link checkManifest}). */
export function loadTrustedDocuments(file: string, check: ManifestCheck): TrustedDocumentSet {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError([`${TRUSTED_DOCUMENTS} (${file}) cannot be read: ${(error as Error).message}`]);
  }
  return checkManifest(readManifest(text, file), file, check);
}

/**
 * Each operation priced ({@link operationCost}) with every variable at 1 and at {@link FIRST_MAX}:
 * the least and the most any request can make a `first` ask for (the lists refuse anything outside
 * 1 to FIRST_MAX before running). An operation whose least cost is over its limit (QUERY_MAX_COST,
 * SUBSCRIPTION_MAX_COST for a subscription) could never run, so the manifest is refused: why, as a
 * string. Where the two costs are equal no variable changes the cost, and it is recorded.
 */
export function documentCosts(
  document: DocumentNode,
  check: Pick<ManifestCheck, "schema" | "maxCost">,
): Map<string | null, number> | string {
  const fixed = new Map<string | null, number>();
  for (const operation of document.definitions) {
    if (operation.kind !== Kind.OPERATION_DEFINITION) continue;
    const price = (value: number) =>
      operationCost({ schema: check.schema, document, operation, variables: everyVariable(operation, value) });
    const least = price(1);
    const most = price(FIRST_MAX);
    const subscription = operation.operation === OperationTypeNode.SUBSCRIPTION;
    const limit = subscription ? check.maxCost.subscription : check.maxCost.query;
    if (least > limit) {
      const name = operation.name ? `operation ${operation.name.value}` : "its operation";
      const variable = subscription ? "SUBSCRIPTION_MAX_COST" : "QUERY_MAX_COST";
      return `can never run: ${name} costs at least ${least}, over ${variable} (${limit})`;
    }
    if (least === most) fixed.set(operation.name?.value ?? null, least);
  }
  return fixed;
}

function everyVariable(operation: OperationDefinitionNode, value: number): Record<string, number> {
  return Object.fromEntries((operation.variableDefinitions ?? []).map((d) => [d.variable.name.value, value]));
}

function hasSubscription(document: DocumentNode): boolean {
  return document.definitions.some(
    (d) => d.kind === Kind.OPERATION_DEFINITION && d.operation === OperationTypeNode.SUBSCRIPTION,
  );
}

/**
 * The manifest in force: none (any document runs), or the set loaded at start and replaced by each
 * successful {@link reload} (SIGHUP). The edge reads {@link current} once per request.
 */
export class TrustedDocuments {
  private set: TrustedDocumentSet | undefined;

  constructor(
    private readonly file: string | undefined,
    private readonly check: ManifestCheck,
  ) {
    this.set = file === undefined ? undefined : loadTrustedDocuments(file, check);
  }

  /** The set in force; undefined without TRUSTED_DOCUMENTS. */
  current(): TrustedDocumentSet | undefined {
    return this.set;
  }

  /** Reads the manifest again; on any problem throws and keeps the set in force. Nothing to do without one. */
  reload(): TrustedDocumentSet | undefined {
    if (this.file === undefined) return undefined;
    this.set = loadTrustedDocuments(this.file, this.check);
    return this.set;
  }
}
