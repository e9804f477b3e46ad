// A GraphQL request's context, from the bearer check (access/bearer.ts) and the refresh cookie; and
// what happens to a refused token, over HTTP or at a WebSocket's connection_init: a debug line, a
// counter and a coalesced audit row.
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";

import type { ApiTokenVerifier } from "../access/api-tokens.js";
import { type BearerRequest, createContextFunction, type RejectionReason, type TokenHolder } from "../access/bearer.js";
import { credentialFieldsOf } from "../access/credential-operations.js";
import type { ClientInfo, Context } from "../access/principal.js";
import type { RevocationList } from "../access/revocation-list.js";
import type { TokenService } from "../access/tokens.js";
import { AuditEventType, type AuditService } from "../audit/index.js";
import type { Config } from "../config.js";
import type { MetricsRecorder } from "../metrics.js";
import { type CookieAccess, refreshCookieOf } from "./refresh-cookie.js";

export interface RequestContextDeps {
  config: Pick<Config, "corsOrigins" | "queryLimits">;
  logger: Logger;
  schema: GraphQLSchema;
  tokens: TokenService;
  apiTokenVerifier: ApiTokenVerifier;
  revocations: RevocationList;
  audit: AuditService;
  metrics: MetricsRecorder;
}

export interface RequestContext {
  /** The context of one HTTP request: its principal (or a 401), its client, its refresh cookie. */
  context: (request: BearerRequest, cookies: CookieAccess) => Promise<Context>;
  /** A token refused at a WebSocket's connection_init: logged at debug, counted and audited as over HTTP. */
  onSocketRejected: (client: ClientInfo, reason: RejectionReason, holder?: TokenHolder) => void;
}

export function createRequestContext(deps: RequestContextDeps): RequestContext {
  const { logger, audit, metrics } = deps;
  // The reason class only, never the token, not even a part of it. Coalesced per IP, reason and
  // user, and not awaited: a flood costs one row a minute, and the refusal never waits for the database.
  const rejected = (client: ClientInfo, reason: RejectionReason, holder?: TokenHolder): void => {
    // Debug, not info: a client retrying a junk token makes hundreds a second, and the coalesced
    // audit row already counts them.
    logger.debug({ reqId: client.requestId, reason }, "access token rejected");
    metrics.tokenRejected(reason);
    audit.recordCoalesced(
      { type: AuditEventType.TOKEN_REJECTED, userId: holder?.userId, sessionId: holder?.sessionId, client },
      holder?.apiTokenId ? { reason, apiToken: holder.apiTokenId } : { reason },
    );
  };
  const bearer = createContextFunction({
    tokens: deps.tokens,
    apiTokens: deps.apiTokenVerifier,
    revocations: deps.revocations,
    maxTokens: deps.config.queryLimits.maxTokens,
    ignoringAuthorization: credentialFieldsOf(deps.schema).ignoringAuthorization,
    onRejected: (request, reason, holder) =>
      rejected({ ip: request.ip, userAgent: request.headers["user-agent"], requestId: request.id }, reason, holder),
  });
  const corsOrigins = new Set(deps.config.corsOrigins);
  return {
    context: async (request, cookies) => {
      // The bearer check's context is made for this request alone: completed in place, not copied.
      const context: { -readonly [K in keyof Context]: Context[K] } = await bearer(request);
      context.refreshCookie = refreshCookieOf(cookies, corsOrigins);
      return context;
    },
    onSocketRejected: rejected,
  };
}
