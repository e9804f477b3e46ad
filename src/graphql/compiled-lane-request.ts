// Which requests the compiled lane (compiled-lane.ts) may take at all: the plain case of a POST, with
// the answer's media type negotiated as Apollo negotiates it. Everything else is Apollo's, untouched.
import Negotiator from "negotiator";

/** A request as the lane sees it: the method, the headers, the parsed body (http/request-body.ts). */
export interface LaneHttpRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
}

/** What a plain request asks: its exact text, its operation name and variables as Apollo reads them. */
export interface PlainRequest {
  readonly query: string;
  readonly operationName: string | undefined;
  readonly variables: Record<string, unknown> | undefined;
  /** The content-type of the answer, as Apollo would choose it. */
  readonly mediaType: string;
}

/** Apollo's MEDIA_TYPES (@apollo/server dist/esm/ApolloServer.js), the ones a single result may take. */
export const MEDIA_TYPES = Object.freeze({
  APPLICATION_JSON: "application/json; charset=utf-8",
  APPLICATION_JSON_GRAPHQL_CALLBACK: "application/json; callbackSpec=1.0; charset=utf-8",
  APPLICATION_GRAPHQL_RESPONSE_JSON: "application/graphql-response+json; charset=utf-8",
});

const SINGLE_RESULT_TYPES = [
  MEDIA_TYPES.APPLICATION_JSON,
  MEDIA_TYPES.APPLICATION_GRAPHQL_RESPONSE_JSON,
  MEDIA_TYPES.APPLICATION_JSON_GRAPHQL_CALLBACK,
];

/** The keys of a POST body Apollo reads (runHttpQuery.js); a body with any other key is handed over. */
const BODY_KEYS = new Set(["query", "operationName", "variables", "extensions"]);

/**
 * Apollo's chooseContentTypeForSingleResultResponse (ApolloServer.js): JSON without an Accept
 * header, else what `negotiator` prefers among the three single-result types; null when none is
 * acceptable (Apollo answers 406 then, after running the operation: that stays Apollo's).
 */
export function singleResultMediaType(accept: string | undefined): string | null {
  if (!accept) return MEDIA_TYPES.APPLICATION_JSON;
  return new Negotiator({ headers: { accept } }).mediaType(SINGLE_RESULT_TYPES) ?? null;
}

/** At most this many distinct Accept values are remembered per lane (clients send few; a flood of new ones is negotiated each time). */
export const ACCEPT_VALUES_HELD = 64;

/**
 * {@link singleResultMediaType} remembering its answer for the first {@link ACCEPT_VALUES_HELD}
 * Accept values it sees, so that a client's repeated Accept header is negotiated once.
 */
export function createMediaTypeChooser(): (accept: string | undefined) => string | null {
  const chosen = new Map<string, string | null>();
  return (accept) => {
    if (!accept) return MEDIA_TYPES.APPLICATION_JSON;
    let mediaType = chosen.get(accept);
    if (mediaType === undefined) {
      mediaType = singleResultMediaType(accept);
      if (chosen.size < ACCEPT_VALUES_HELD) chosen.set(accept, mediaType);
    }
    return mediaType;
  };
}

/**
 * The request when it is the plain case, else undefined (hand it over): a POST (a GET keeps Apollo's
 * landing page and CSRF paths), a JSON body (`application/json`, so CSRF prevention lets it through)
 * that is an object of only `query` (a string), `operationName` (a string or null), `variables` (an
 * object or null) and `extensions` (an object or null without `persistedQuery`, which is all of it
 * Apollo reads), and an Accept header Apollo would answer with a single result. Each shape Apollo
 * refuses (runHttpQuery.js) is handed over, so Apollo refuses it in its own words.
 */
export function plainRequest(
  request: LaneHttpRequest,
  chooseMediaType: (accept: string | undefined) => string | null = singleResultMediaType,
): PlainRequest | undefined {
  if (request.method !== "POST") return undefined;
  const contentType = request.headers["content-type"];
  if (typeof contentType !== "string" || mediaTypeOf(contentType) !== "application/json") return undefined;
  const { body } = request;
  if (typeof body !== "object" || body === null || Array.isArray(body) || Buffer.isBuffer(body)) return undefined;
  const fields = body as Record<string, unknown>;
  for (const key in fields) if (!BODY_KEYS.has(key)) return undefined;
  const { query, operationName, variables, extensions } = fields;
  if (typeof query !== "string") return undefined;
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string") return undefined;
  if (variables !== undefined && variables !== null && !isRecord(variables)) return undefined;
  if (extensions !== undefined && extensions !== null && (!isRecord(extensions) || "persistedQuery" in extensions))
    return undefined;
  const accept = request.headers.accept;
  const mediaType = chooseMediaType(Array.isArray(accept) ? accept.join(", ") : accept);
  if (mediaType === null) return undefined;
  return {
    query,
    operationName: typeof operationName === "string" ? operationName : undefined,
    variables: isRecord(variables) ? variables : undefined,
    mediaType,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** The media type of a content-type header, lower case, as http/request-body.ts's parseBody reads it. */
function mediaTypeOf(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}
