import { MessageType, type PingMessage, stringifyMessage } from "graphql-ws";
import type { Logger } from "pino";
import WebSocket from "ws";

import { owesSecondFactor } from "../../access/auth-checker.js";
import {
  type BearerDeps,
  type BearerVerdict,
  type RejectionReason,
  type TokenHolder,
  verifyBearer,
} from "../../access/bearer.js";
import { type ClientInfo, credentialId, type Principal } from "../../access/principal.js";
import type { MetricsRecorder } from "../../metrics.js";
import {
  CloseReason,
  type ForbiddenReason,
  NOT_THIS_CONNECTION,
  refusedReason,
  SECOND_FACTOR_OWED,
  SubscriptionClose,
} from "./close-codes.js";
import type { Client, Connection, Connections } from "./connections.js";

/**
 * Renewals one connection may send in any 60 seconds; the next closes it with 4429 `Too many
 * renewals`. A client renews once per access token (at most every few seconds even with the
 * shortest tokens anyone runs), so only a loop gets here, and each renewal costs a token check.
 */
export const WS_MAX_RENEWALS_PER_MINUTE = 30;
const RENEWAL_WINDOW_MS = 60_000;

export interface SocketTokensDeps extends BearerDeps {
  readonly connections: Connections;
  readonly metrics: MetricsRecorder;
  readonly log: Logger;
  readonly now: () => number;
  /** Told of every refused token, at connect and at a renewal, as the HTTP path is; must not wait for anything. */
  readonly onRejected: (client: ClientInfo, reason: RejectionReason, holder?: TokenHolder) => void;
}

/** What a connection proved with its token: the principal (null: anonymous) and when the token expires. */
export type Proof = Pick<Connection, "principal" | "expiresAt">;

/** A connection's token, from `connection_init` to its last renewal. */
export interface SocketTokens {
  /**
   * `connection_init`: `authorization` (or `Authorization`) of the connection params through the
   * HTTP path's check. What it proves, or undefined once the socket is closed with 4403 and the
   * reason (MFA_REQUIRED for a valid token of a session that owes its second factor; closed here, so that graphql-ws's own close, "Forbidden", finds it closing and does nothing).
   */
  atConnect(socket: WebSocket, client: Client, params: Record<string, unknown> | undefined): Promise<Proof | undefined>;
  /**
   * A `ping`, in place of graphql-ws's answer, which would echo its payload (a token included). With
   * `authorization` in its payload, a renewal: a valid token of the connection's own session (or the
   * same API token) becomes the connection's and the answer is a `pong` with the new `expiresAt`;
   * one of a session that owes its second factor closes the socket with 4403 MFA_REQUIRED; anything else closes the socket with 4403 and the reason. Without, a keep-alive answered as
   * graphql-ws would.
   */
  ping(socket: WebSocket, client: Client, payload: PingMessage["payload"], send: (data: string) => void): Promise<void>;
}

export function createSocketTokens(deps: SocketTokensDeps): SocketTokens {
  const withinBudget = renewalBudget(deps.now);

  const check = async (value: unknown, client: Client): Promise<BearerVerdict> => {
    const verdict =
      value === undefined || typeof value === "string"
        ? await verifyBearer(value, deps)
        : ({ ok: false, reason: "MALFORMED" } as const);
    if (!verdict.ok) deps.onRejected(client, verdict.reason, verdict.holder);
    return verdict;
  };

  const refuse = (socket: WebSocket, client: Client, reason: ForbiddenReason, when: string): undefined => {
    deps.log.debug({ reqId: client.requestId, reason }, `subscription connection's token refused ${when}`);
    socket.close(SubscriptionClose.FORBIDDEN, reason);
    return undefined;
  };

  const renew = async (socket: WebSocket, client: Client, value: unknown, send: (data: string) => void) => {
    const connection = deps.connections.of(socket);
    if (!connection) return refuse(socket, client, NOT_THIS_CONNECTION, "before connection_ack");
    if (!withinBudget(connection)) {
      deps.metrics.limitReached("WS_MAX_RENEWALS_PER_MINUTE");
      socket.close(SubscriptionClose.TOO_MANY, CloseReason.TOO_MANY_RENEWALS);
      return;
    }
    const verdict = await check(value, client);
    // Closed while the token was checked (its session ended, its old token expired): nothing to renew.
    if (socket.readyState !== WebSocket.OPEN) return;
    if (!verdict.ok) return refuse(socket, client, refusedReason(verdict.reason), "at renewal");
    if (!sameCredential(connection.principal, verdict.principal))
      return refuse(socket, client, NOT_THIS_CONNECTION, "at renewal: not the connection's session");
    if (owesSecondFactor(verdict.principal)) return refuse(socket, client, SECOND_FACTOR_OWED, "at renewal");
    deps.connections.renew(connection, verdict.principal!, verdict.expiresAt);
    const { expiresAt } = verdict;
    send(pong(expiresAt === undefined ? undefined : { expiresAt: new Date(expiresAt).toISOString() }));
  };

  return {
    async atConnect(socket, client, params) {
      const verdict = await check(authorizationIn(params), client);
      if (!verdict.ok) return refuse(socket, client, refusedReason(verdict.reason), "at connect");
      // The multi-factor gate (graphql/mfa-gate.ts over HTTP): no subscription is among the fields
      // a session that owes its second factor may use, so its token opens no connection.
      if (owesSecondFactor(verdict.principal)) return refuse(socket, client, SECOND_FACTOR_OWED, "at connect");
      return { principal: verdict.principal, expiresAt: verdict.expiresAt };
    },
    async ping(socket, client, payload, send) {
      // ws still hands over what arrives while the socket closes: a flood past the budget is not looked at.
      if (socket.readyState !== WebSocket.OPEN) return;
      const value = authorizationIn(payload);
      if (value !== undefined && value !== null) return renew(socket, client, value, send);
      send(pong(payload));
    },
  };
}

/** Counts a connection's renewals: false once it has had WS_MAX_RENEWALS_PER_MINUTE in the last minute. */
function renewalBudget(now: () => number): (connection: Connection) => boolean {
  // Per connection, when each renewal of the last RENEWAL_WINDOW_MS came (at most the cap's number).
  const renewals = new WeakMap<Connection, number[]>();
  return (connection) => {
    const at = now();
    const times = (renewals.get(connection) ?? []).filter((time) => at - time < RENEWAL_WINDOW_MS);
    renewals.set(connection, times);
    if (times.length >= WS_MAX_RENEWALS_PER_MINUTE) return false;
    times.push(at);
    return true;
  };
}

/** A `pong` message; without a payload when there is none (graphql-ws's own answer). */
function pong(payload: Record<string, unknown> | undefined): string {
  return stringifyMessage(payload ? { type: MessageType.Pong, payload } : { type: MessageType.Pong });
}

/** The token of connection params or a ping's payload, as the HTTP header would hold it: `authorization`, else `Authorization`. */
function authorizationIn(record: Record<string, unknown> | undefined): unknown {
  return record?.authorization ?? record?.Authorization;
}

/** Whether a renewal's principal is the connection's: the same user and session, or the same API token. Never for an anonymous connection. */
function sameCredential(held: Principal | null, offered: Principal | null): boolean {
  if (!held || !offered || held.kind !== offered.kind || held.userId !== offered.userId) return false;
  return credentialId(held) === credentialId(offered);
}
