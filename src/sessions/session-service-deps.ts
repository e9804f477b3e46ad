import type { Kysely } from "kysely";
import type { Logger } from "pino";

import type { Revocations } from "../access/revocation-sync.js";
import type { TokenService } from "../access/tokens.js";
import type { AuditService } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import type { MetricsRecorder } from "../metrics.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { UserStore } from "../users/index.js";

/** What SessionService (session.service.ts) is built from. */
export interface SessionServiceDeps {
  db: Kysely<Database>;
  /** On PostgreSQL a new session locks its user's row against a concurrent setUserDisabled. */
  users: UserStore;
  tokens: TokenService;
  /** Ends sessions on this instance at once and on every other within a second. */
  revocations: Revocations;
  /** Absolute lifetime of a session's refresh chain (JWT_REFRESH_TOKEN_EXPIRES). */
  sessionTtlSeconds: number;
  /** SESSIONS_MAX_PER_USER: a new session ends the user's least recently used ones past it. */
  maxSessions: number;
  /**
   * How long an ended session (and its refresh tokens) is kept before SessionService.prune
   * deletes it: at least the revocation list's window. Default one day.
   */
  endedSessionRetentionMs?: number;
  /**
   * WRITES_MAX_PER_USER: logout and revokeSession are charged to the caller's session (see
   * perSession), so a stolen session cannot use up the owner's.
   */
  writes: FloodLimit;
  audit: AuditService;
  now: () => number;
  logger: Logger;
  /** Sessions ended by cause. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}
