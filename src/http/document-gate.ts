// The gate of TRUSTED_DOCUMENTS, before anything parses a document (docs/trusted-documents.md): which
// document a request names (by id or by exact text), whether its caller may run any document, and
// the one refusal every probe gets. HTTP (graphql-route.ts) and WebSocket (ws/operation.ts) ask it
// alike; each rewrites a trusted request for its own transport.
import { GraphQLError } from "graphql";

import { type ApiTokenVerifier, isApiTokenShape } from "../access/api-tokens.js";
import type { ClientInfo, Principal } from "../access/principal.js";
import { Scope, scopeInForce } from "../access/scopes.js";
import { AuditEventType, type AuditService } from "../audit/index.js";
import {
  ErrorCode,
  ProtocolErrorCode,
  SERVICE_UNAVAILABLE_MESSAGE,
  SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS,
  ServiceUnavailableError,
} from "../errors.js";
import type { TrustedDocument, TrustedDocuments, TrustedDocumentSet } from "../graphql/trusted-documents.js";
import type { MetricsRecorder } from "../metrics.js";
import type { HttpError } from "./error-body.js";

/**
 * The one message of a refused document, whatever was sent: nothing of the input is echoed, so a
 * refusal tells a prober nothing about the schema, the manifest or its own document.
 */
export const DOCUMENT_NOT_ALLOWED_MESSAGE =
  "This server runs only the documents its clients were built with: send the id of a listed document.";

/** The answer of a refused document over HTTP: 400, the same body for every probe. */
export const DOCUMENT_NOT_ALLOWED: HttpError = Object.freeze({
  status: 400,
  message: DOCUMENT_NOT_ALLOWED_MESSAGE,
  code: ProtocolErrorCode.PERSISTED_QUERY_NOT_ALLOWED,
});

/** The answer when an OPERATIONS_ANY token could not be looked up (its database did not answer). */
const UNAVAILABLE: HttpError = Object.freeze({
  status: 503,
  message: SERVICE_UNAVAILABLE_MESSAGE,
  code: ErrorCode.SERVICE_UNAVAILABLE,
  headers: { "retry-after": String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS) },
  extensions: { retryAfter: SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS },
});

/** A refused document over WebSocket: the `error` message's one error. */
export function documentNotAllowedError(): GraphQLError {
  return new GraphQLError(DOCUMENT_NOT_ALLOWED_MESSAGE, {
    extensions: { code: ProtocolErrorCode.PERSISTED_QUERY_NOT_ALLOWED },
  });
}

/** What the gate reads of a request: a POST's body, a GET's parameters (extensions as JSON text) or a subscribe payload. */
export interface DocumentParams {
  readonly query?: unknown;
  readonly documentId?: unknown;
  readonly extensions?: unknown;
}

/**
 * The gate's say: pass the request on as it is (no manifest, no document named, or a caller who
 * may run any document); run the listed `document` in its place; or refuse it with `error`.
 */
export type DocumentVerdict =
  | { readonly kind: "untouched" }
  | { readonly kind: "trusted"; readonly document: TrustedDocument }
  | { readonly kind: "refused"; readonly error: HttpError };

const UNTOUCHED: DocumentVerdict = Object.freeze({ kind: "untouched" });
const REFUSED: DocumentVerdict = Object.freeze({ kind: "refused", error: DOCUMENT_NOT_ALLOWED });

/** A request that names a document not in the manifest (or names one in a way that finds none). */
const UNLISTED = Symbol("unlisted");

export interface DocumentGateDeps {
  readonly trustedDocuments: Pick<TrustedDocuments, "current">;
  /** The cached verifier of the bearer check: a script's token is read from the database once a minute at most. */
  readonly apiTokenVerifier: Pick<ApiTokenVerifier, "verify">;
  readonly metrics: MetricsRecorder;
  readonly audit: Pick<AuditService, "recordCoalesced">;
}

/** The gate, once per server; it reads the manifest in force at each request, so a reload applies to the next one. */
export interface DocumentGate {
  /**
   * An HTTP request: `authorization` is its header, which may hold an API token with OPERATIONS_ANY
   * (the only caller that may send an unlisted document; looked up only for an unlisted one).
   */
  http(params: DocumentParams, authorization: string | undefined, client: ClientInfo): Promise<DocumentVerdict>;
  /** A WebSocket `subscribe`: the caller is the connection's principal, with its owner's roles as they are now. */
  ws(params: DocumentParams, principal: Principal | null, client: ClientInfo): DocumentVerdict;
}

/**
 * The gate: without a manifest every request passes untouched and nothing is counted. With one, a
 * listed document is trusted (counted `trusted`), a request that names no document passes (Apollo
 * answers it as before), an unlisted one from an API token with OPERATIONS_ANY in force passes
 * (counted `arbitrary`; the query limits still apply), and anything else is refused (counted
 * `refused`, audited as DOCUMENT_REFUSED coalesced per IP and transport, never with the document).
 * Session tokens are never verified here: they cannot lift the gate, and verifying them stays
 * Apollo's (an invalid one sending a listed document gets the usual 401).
 */
export function createDocumentGate(deps: DocumentGateDeps): DocumentGate {
  const { metrics } = deps;
  const refuse = (client: ClientInfo, transport: "http" | "ws"): DocumentVerdict => {
    metrics.document("refused");
    deps.audit.recordCoalesced({ type: AuditEventType.DOCUMENT_REFUSED, client }, { transport });
    return REFUSED;
  };
  const trust = (document: TrustedDocument): DocumentVerdict => {
    metrics.document("trusted");
    return { kind: "trusted", document };
  };
  const arbitrary = (): DocumentVerdict => {
    metrics.document("arbitrary");
    return UNTOUCHED;
  };
  return {
    async http(params, authorization, client) {
      const named = namedDocument(deps.trustedDocuments.current(), params);
      if (named === undefined) return UNTOUCHED;
      if (named !== UNLISTED) return trust(named);
      let mayRunAny: boolean;
      try {
        mayRunAny = await bearerMayRunAny(authorization, deps.apiTokenVerifier);
      } catch (error) {
        if (error instanceof ServiceUnavailableError) return { kind: "refused", error: UNAVAILABLE };
        throw error;
      }
      return mayRunAny ? arbitrary() : refuse(client, "http");
    },
    ws(params, principal, client) {
      const named = namedDocument(deps.trustedDocuments.current(), params);
      if (named === undefined) return UNTOUCHED;
      if (named !== UNLISTED) return trust(named);
      return principalMayRunAny(principal) ? arbitrary() : refuse(client, "ws");
    },
  };
}

/**
 * The document a request names in `set`: undefined when there is no set or the request names
 * none (no id, no text), the listed document, or UNLISTED. An id comes from `documentId` or
 * `extensions.persistedQuery.sha256Hash` (with or without `sha256:`; when both are sent they must
 * name the same document), and a `query` sent beside an id must be that document's exact text; a
 * `query` alone must be exactly a listed text. An empty `query` counts as none, since a WebSocket
 * client must send one beside its id.
 */
export function namedDocument(
  set: TrustedDocumentSet | undefined,
  params: DocumentParams,
): TrustedDocument | typeof UNLISTED | undefined {
  if (set === undefined) return undefined;
  const ids = idsOf(params);
  const hasQuery = params.query !== undefined && params.query !== null && params.query !== "";
  if (ids === UNLISTED) return UNLISTED;
  if (ids.length === 0) {
    if (!hasQuery) return undefined;
    return (typeof params.query === "string" && set.byText(params.query)) || UNLISTED;
  }
  const found = ids.map((id) => set.byId(id));
  const document = found[0];
  if (document === undefined || found.some((other) => other !== document)) return UNLISTED;
  if (hasQuery && params.query !== document.body) return UNLISTED;
  return document;
}

// The ids a request sends (none, one or two), or UNLISTED for an id that is not a string.
function idsOf(params: DocumentParams): string[] | typeof UNLISTED {
  const ids: unknown[] = [];
  if (params.documentId !== undefined && params.documentId !== null) ids.push(params.documentId);
  const extensions = extensionsOf(params.extensions);
  if (extensions && "persistedQuery" in extensions) {
    const persisted = extensions.persistedQuery;
    ids.push(
      typeof persisted === "object" && persisted !== null
        ? (persisted as Record<string, unknown>).sha256Hash
        : persisted,
    );
  }
  return ids.every((id) => typeof id === "string") ? ids : UNLISTED;
}

/** A request's `extensions` as an object: a POST's or a payload's as sent, a GET's parsed from its JSON text. */
export function extensionsOf(extensions: unknown): Record<string, unknown> | undefined {
  let value = extensions;
  if (typeof value === "string") {
    try {
      // A GET's parameters were scanned for nesting before the gate (request-limits.ts).
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

// Whether the Authorization header holds an API token, verified as the bearer check does, with
// OPERATIONS_ANY in force (its owner still an ADMIN). Anything else, sessions included, may not.
async function bearerMayRunAny(authorization: string | undefined, apiTokens: DocumentGateDeps["apiTokenVerifier"]) {
  const match = /^Bearer (\S+)$/i.exec(authorization ?? "");
  if (!match || !isApiTokenShape(match[1]!)) return false;
  const verdict = await apiTokens.verify(match[1]!);
  return verdict.ok && principalMayRunAny(verdict.principal);
}

function principalMayRunAny(principal: Principal | null): boolean {
  return principal?.kind === "api_token" && scopeInForce(principal.ownerRoles, principal.scopes, Scope.OPERATIONS_ANY);
}

/**
 * A POST body that names a listed document, as Apollo gets it: `query` is the listed text (so
 * Apollo's document store finds it parsed and validated), without `documentId` and
 * `extensions.persistedQuery`, which Apollo would refuse with automatic persisted queries off.
 */
export function trustedBody(body: Record<string, unknown>, document: TrustedDocument): Record<string, unknown> {
  const { documentId: _id, extensions, ...rest } = body;
  const kept = withoutPersistedQuery(extensions);
  return kept === undefined ? { ...rest, query: document.body } : { ...rest, query: document.body, extensions: kept };
}

/** A GET's query string (`?…` or empty) rewritten likewise: Apollo reads a GET's document from it. */
export function trustedSearch(search: string, document: TrustedDocument): string {
  const parameters = new URLSearchParams(search);
  parameters.set("query", document.body);
  parameters.delete("documentId");
  const extensions = parameters.get("extensions");
  if (extensions !== null) {
    const kept = withoutPersistedQuery(extensions);
    if (kept === undefined) parameters.delete("extensions");
    else if (kept !== extensions) parameters.set("extensions", JSON.stringify(kept));
  }
  return `?${parameters.toString()}`;
}

// `extensions` without its persistedQuery: undefined when nothing else is left; as sent when it is
// not an object (Apollo refuses that as before).
function withoutPersistedQuery(extensions: unknown): unknown {
  if (extensions === undefined) return undefined;
  const object = extensionsOf(extensions);
  if (object === undefined) return extensions;
  const { persistedQuery: _persisted, ...rest } = object;
  return Object.keys(rest).length === 0 ? undefined : rest;
}
