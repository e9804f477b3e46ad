// How a request's (or a WebSocket connection's) bearer token becomes its principal, top to bottom: the Authorization header's
// shape (RFC 6750); then for an access token the signature and claims (tokens.ts, with the keys in
// keys.ts), and for an API token its cached lookup (api-tokens.ts); whether the session or API token
// has ended, and the roles as they are now (revocation-list.ts, kept current on every instance by
// revocation-sync.ts). Anything refused ends the request with 401 INVALID_TOKEN,
// except an operation of only the mutations that ignore the Authorization header (login, register
// and refreshToken, so declared in credential-operations.ts), which runs anonymously.
import type { IncomingHttpHeaders } from "node:http";

import { ErrorReason, InvalidTokenError, type InvalidTokenReason } from "../errors.js";
import { API_TOKEN_FAILURES, type ApiTokenVerifier, isApiTokenShape } from "./api-tokens.js";
import { isCredentialOnlyOperation } from "./credential-operations.js";
import type { Context, Principal } from "./principal.js";
import type { RevocationList } from "./revocation-list.js";
import { TOKEN_FAILURES, TokenError, type TokenService } from "./tokens.js";

// RFC 6750 §2.1: the scheme is case-insensitive, then one space, then a b64token.
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i;
// What a client sends before it has a token: `Bearer ${token}` with token undefined or null (urql's
// and Apollo's README examples do), "Bearer" with nothing after it, or an empty header.
const PLACEHOLDER = /^\s*(?:Bearer\b)?\s*(undefined|null)?\s*$/i;

/** Why a bearer token was refused: an access token's verification failure, an ended session, or an API token's failure. */
export const REJECTION_REASONS = [...TOKEN_FAILURES, "SESSION_ENDED", ...API_TOKEN_FAILURES] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

/** Whose token was refused, when the token itself was genuine (an ended session, a revoked or expired API token). */
export interface TokenHolder {
  readonly userId: string;
  readonly sessionId?: string;
  readonly apiTokenId?: string;
}

/** What the bearer check concluded: a principal (null without a header), or why it refused. */
export type BearerVerdict =
  | {
      readonly ok: true;
      readonly principal: Principal | null;
      /** When the token stops being valid, in milliseconds since the epoch; undefined without a token. */
      readonly expiresAt?: number;
    }
  | {
      readonly ok: false;
      readonly reason: RejectionReason;
      /** The token's user and session or API token, when the token itself was genuine. */
      readonly holder?: TokenHolder;
      /** What the client is told instead of its reason's message, when the header itself is the mistake. */
      readonly hint?: string;
    };

/** What the context function reads of an HTTP request, whichever route serves it. */
export interface BearerRequest {
  /** The request id (x-request-id). */
  readonly id: string;
  readonly ip: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed body, for the one look at whether it is only mutations that ignore the Authorization header. */
  readonly body: unknown;
}

/** What the bearer check needs: the access-token verifier, the API-token verifier and the revocation list. */
export interface BearerDeps {
  tokens: TokenService;
  apiTokens: ApiTokenVerifier;
  revocations: RevocationList;
}

/** The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1), or undefined for any other value. */
export function bearerTokenOf(header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1];
}

/**
 * The whole token check, from an `Authorization` value to a principal, for HTTP requests and
 * WebSocket connections alike: no value is anonymous; otherwise the value's shape (RFC 6750); an
 * API token (`gta_…`) goes to {@link ApiTokenVerifier}, anything else must be an access token: the
 * signature and every claim, whether the session has ended, and the roles as they are now (roles
 * changed since the token was minted replace the token's). The revocation lookups are in memory, in
 * the {@link RevocationList}; only an API token's first use on this instance reads the database.
 */
export async function verifyBearer(header: string | undefined, deps: BearerDeps): Promise<BearerVerdict> {
  if (header === undefined) return { ok: true, principal: null };
  const hint = placeholderHint(header);
  if (hint !== undefined) return { ok: false, reason: "MALFORMED", hint };
  const token = bearerTokenOf(header);
  if (token === undefined) return { ok: false, reason: "MALFORMED" };
  if (isApiTokenShape(token)) return deps.apiTokens.verify(token);
  let claims;
  try {
    claims = deps.tokens.verifyAccessToken(token);
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    return { ok: false, reason: error.reason };
  }
  if (deps.revocations.isSessionEnded(claims.sid))
    return { ok: false, reason: "SESSION_ENDED", holder: { userId: claims.sub, sessionId: claims.sid } };
  const roles = deps.revocations.currentRoles(claims.sub) ?? claims.roles;
  return {
    ok: true,
    principal: {
      kind: "session",
      userId: claims.sub,
      roles,
      sessionId: claims.sid,
      tokenId: claims.jti,
      fresh: claims.fresh,
      aal: claims.aal === "aal2" ? 2 : 1,
      amr: claims.amr,
      mfaPending: claims.mfa_pending === true,
    },
    expiresAt: claims.exp * 1000,
  };
}

/**
 * Builds the context function for the GraphQL route, around {@link verifyBearer}. No Authorization
 * header: anonymous. A header that is present but not a valid bearer access token, or one whose
 * session has ended, refuses the whole request with HTTP 401 (an {@link InvalidTokenError});
 * `onRejected` learns why, for the logs and the audit log (with the user and session when the token
 * itself was valid, and never the token); it must not wait for anything, so the 401 never waits for
 * a database. Tokens are read only from the header, never from the URL or the body.
 */
export function createContextFunction(
  deps: BearerDeps & {
    onRejected: (request: BearerRequest, reason: RejectionReason, holder?: TokenHolder) => void;
    /** The parser's token limit (QUERY_MAX_TOKENS), for the one extra parse a refused token costs. */
    maxTokens: number;
    /** The mutations that ignore the header: the schema's `credentialFieldsOf(schema).ignoringAuthorization`. */
    ignoringAuthorization: ReadonlySet<string>;
  },
) {
  return async (request: BearerRequest): Promise<Context> => {
    const base = {
      requestId: request.id,
      ip: request.ip,
      userAgent: request.headers["user-agent"],
    };
    const verdict = await verifyBearer(request.headers.authorization, deps);
    if (verdict.ok) return { ...base, principal: verdict.principal };
    // login, register and refreshToken do not use the header: an operation of only those runs
    // anonymously whatever the header holds, instead of being refused for a token it never needed.
    if (isCredentialOnlyOperation(request.body, deps.maxTokens, deps.ignoringAuthorization))
      return { ...base, principal: null };
    deps.onRejected(request, verdict.reason, verdict.holder);
    throw new InvalidTokenError(clientReason(verdict.reason), verdict.hint);
  };
}

/**
 * What a client is told of a refusal: for an access token only whether refreshing can help (an
 * expired token) or signing in is needed; for an API token whether it expired or was revoked, since
 * neither refreshing nor signing in applies to a script. The WebSocket server's 4403 closes carry
 * the same reasons (http/ws/close-codes.ts).
 */
export function clientReason(reason: RejectionReason): InvalidTokenReason {
  if (reason === "EXPIRED") return ErrorReason.TOKEN_EXPIRED;
  if (reason === "SESSION_ENDED") return ErrorReason.SESSION_ENDED;
  if (reason === "API_TOKEN_EXPIRED") return ErrorReason.API_TOKEN_EXPIRED;
  if (reason === "API_TOKEN_REVOKED") return ErrorReason.API_TOKEN_REVOKED;
  return ErrorReason.TOKEN_INVALID;
}

/**
 * The message for an Authorization header that holds no token at all (see PLACEHOLDER), which
 * says that the header is the mistake; undefined for any other value. The value is quoted back
 * only because it is one of these few fixed placeholders, never a token.
 */
function placeholderHint(header: string): string | undefined {
  const match = PLACEHOLDER.exec(header);
  if (!match) return undefined;
  const fix = 'Send no Authorization header until signed in, then "Bearer <access token>".';
  if (header.trim() === "") return `The Authorization header is empty. ${fix}`;
  const shown = match[1] === undefined ? "Bearer" : header.trim().replace(/\s+/g, " ");
  return `The Authorization header holds "${shown}" without a token: the client sent it before it had one. ${fix}`;
}
