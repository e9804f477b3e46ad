import { CloseCode } from "graphql-ws";

import { clientReason, type RejectionReason } from "../../access/bearer.js";
import type { Principal } from "../../access/principal.js";
import type { EndCause } from "../../access/revocation-list.js";
import { ErrorReason, type InvalidTokenReason } from "../../errors.js";

/** The close codes a client sees when the server ends its connection (docs/subscriptions.md#close-codes). */
export const SubscriptionClose = {
  /** graphql-ws's Forbidden: a refused token at connect or renewal, an expired token, an ended session. Its reason is a {@link ForbiddenReason}. */
  FORBIDDEN: CloseCode.Forbidden,
  /** Graceful shutdown (WebSocket's Going Away). */
  GOING_AWAY: 1001,
  /** WebSocket's Try Again Later: the anonymous share is full at connection_init, or the socket's send buffer is. */
  TRY_AGAIN_LATER: 1013,
  /** graphql-ws's BadRequest: a message nested deeper than JSON_MAX_NESTING (or not the protocol's). */
  BAD_REQUEST: CloseCode.BadRequest,
  /** graphql-ws's timeout code: no connection_init in time, or an anonymous socket idle (no subscription) too long. */
  TIMEOUT: CloseCode.ConnectionInitialisationTimeout,
  /**
   * graphql-ws's "too many" code (TooManyInitialisationRequests), which its clients treat as fatal:
   * here also more token renewals than WS_MAX_RENEWALS_PER_MINUTE, which only a client bug sends.
   */
  TOO_MANY: CloseCode.TooManyInitialisationRequests,
} as const;

/** The reason texts of the closes other than 4403. */
export const CloseReason = {
  TOO_MANY_ANONYMOUS: "Too many anonymous connections",
  IDLE: "Idle timeout",
  SEND_BUFFER_FULL: "Send buffer full",
  TOO_DEEP: "Message nested too deeply",
  TOO_MANY_RENEWALS: "Too many renewals",
} as const;

/**
 * The reason text of every 4403 close: the `extensions.reason` a client already switches on over
 * HTTP (TOKEN_EXPIRED: refresh; the others: sign in again), plus ACCOUNT_DISABLED for a socket whose
 * account an ADMIN disabled, which a token refused over HTTP does not tell apart from SESSION_ENDED,
 * and MFA_REQUIRED for a token of a session that still owes its second factor (verifyMfa over HTTP,
 * then connect with the new token).
 */
export type ForbiddenReason =
  InvalidTokenReason | typeof ErrorReason.ACCOUNT_DISABLED | typeof ErrorReason.MFA_REQUIRED;

/** A valid token of a session that owes its second factor, at connect or at a renewal: no subscription field is open to it. */
export const SECOND_FACTOR_OWED: ForbiddenReason = ErrorReason.MFA_REQUIRED;

/** A token refused at connect or at a renewal: the reason HTTP's 401 would give (bearer.ts's clientReason). */
export function refusedReason(reason: RejectionReason): ForbiddenReason {
  return clientReason(reason);
}

/** A renewal with a token that is valid but not of the connection's session (or API token), or with no connection to renew. */
export const NOT_THIS_CONNECTION: ForbiddenReason = ErrorReason.TOKEN_INVALID;

/** The connection's token reached its `exp`: as HTTP says of that token now. */
export function expiredReason(principal: Principal): ForbiddenReason {
  return clientReason(principal.kind === "session" ? "EXPIRED" : "API_TOKEN_EXPIRED");
}

/** The connection's session ended (or its API token was revoked): as HTTP says of its token now, unless its account was disabled. */
export function endedReason(principal: Principal, cause: EndCause): ForbiddenReason {
  if (cause === "account_disabled") return ErrorReason.ACCOUNT_DISABLED;
  return clientReason(principal.kind === "session" ? "SESSION_ENDED" : "API_TOKEN_REVOKED");
}
