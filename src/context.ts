import type { FastifyRequest } from "fastify";

import type { TokenService } from "./auth/tokens.js";
import { TokenError } from "./auth/tokens.js";
import { InvalidTokenError } from "./errors.js";
import type { Role } from "./users/role.js";

/** Who is calling, as proven by a verified access token. */
export interface Principal {
  readonly userId: string;
  readonly roles: readonly Role[];
  readonly sessionId: string;
  readonly tokenId: string;
  readonly fresh: boolean;
}

/** The per-request GraphQL context. `principal` is null for anonymous requests. */
export interface Context {
  readonly principal: Principal | null;
  readonly requestId: string;
  readonly ip: string;
  readonly userAgent: string | undefined;
}

// RFC 6750 §2.1: the scheme is case-insensitive, then one space, then a b64token.
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Builds the context function for the GraphQL route. No Authorization header: anonymous.
 * A header that is present but not a valid bearer access token refuses the whole request with
 * HTTP 401 (an {@link InvalidTokenError}); `onRejected` learns why, for the logs. Tokens are read
 * only from the header, never from the URL or the body.
 */
export function createContextFunction(deps: {
  tokens: TokenService;
  onRejected: (request: FastifyRequest, reason: TokenError["reason"]) => void;
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
    try {
      const claims = deps.tokens.verifyAccessToken(match[1]!);
      return {
        ...base,
        principal: { userId: claims.sub, roles: claims.roles, sessionId: claims.sid, tokenId: claims.jti, fresh: claims.fresh },
      };
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      deps.onRejected(request, error.reason);
      throw new InvalidTokenError();
    }
  };
}
