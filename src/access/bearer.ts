// How a request's bearer token becomes its principal, top to bottom: the Authorization header's
// shape (RFC 6750), the signature and claims (tokens.ts, with the keys in keys.ts), whether the
// session has ended, and the roles as they are now (revocation-list.ts, kept current on every
// instance by revocation-sync.ts). Anything refused ends the request with 401 INVALID_TOKEN.
import type { FastifyRequest } from "fastify";

import { TokenError, type TokenFailure, type TokenService } from "./tokens.js";
import { InvalidTokenError } from "../errors.js";
import type { RevocationList } from "./revocation-list.js";
import type { Context } from "./principal.js";

// RFC 6750 §2.1: the scheme is case-insensitive, then one space, then a b64token.
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i;

/** Why a bearer token was refused: a verification failure, or a session that has ended. */
export type RejectionReason = TokenFailure | "SESSION_ENDED";

/**
 * Builds the context function for the GraphQL route. No Authorization header: anonymous.
 * A header that is present but not a valid bearer access token, or one whose session has ended,
 * refuses the whole request with HTTP 401 (an {@link InvalidTokenError}); `onRejected` learns why,
 * for the logs and the audit log (with the user and session when the token itself was valid, and
 * never the token); it must not wait for anything, so the 401 never waits for a database. Roles
 * changed since the token was minted replace the token's roles. Both checks are
 * in-memory lookups in the {@link RevocationList}. Tokens are read only from the header, never from
 * the URL or the body.
 */
export function createContextFunction(deps: {
  tokens: TokenService;
  revocations: RevocationList;
  onRejected: (request: FastifyRequest, reason: RejectionReason, holder?: { userId: string; sessionId: string }) => void;
}) {
  return async (request: FastifyRequest): Promise<Context> => {
    const base = {
      requestId: request.id,
      ip: request.ip,
      userAgent: request.headers["user-agent"],
    };
    const header = request.headers.authorization;
    if (header === undefined) return { ...base, principal: null };

    const match = BEARER.exec(header);
    if (!match) {
      deps.onRejected(request, "MALFORMED");
      throw new InvalidTokenError();
    }
    let claims;
    try {
      claims = deps.tokens.verifyAccessToken(match[1]!);
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      deps.onRejected(request, error.reason);
      throw new InvalidTokenError();
    }
    if (deps.revocations.isSessionEnded(claims.sid)) {
      deps.onRejected(request, "SESSION_ENDED", { userId: claims.sub, sessionId: claims.sid });
      throw new InvalidTokenError();
    }
    const roles = deps.revocations.currentRoles(claims.sub) ?? claims.roles;
    return {
      ...base,
      principal: { userId: claims.sub, roles, sessionId: claims.sid, tokenId: claims.jti, fresh: claims.fresh },
    };
  };
}
