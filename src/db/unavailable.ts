/**
 * Telling "the database did not answer" apart from every other failure, so a request that needed a
 * database that is down, restarting or frozen gets SERVICE_UNAVAILABLE (which a client may retry)
 * instead of a masked INTERNAL_SERVER_ERROR with a stack trace in the log.
 */

import { POSTGRES_MESSAGES } from "../library-messages.js";

// SQLSTATE classes and codes that mean the server is unreachable, going away or overloaded:
// 08 connection exceptions, 57014 query_canceled (statement_timeout), 57P01..57P03 admin shutdown,
// crash shutdown and "cannot connect now" (starting up), 53300 too_many_connections.
const POSTGRES_CODES = new Set(["57014", "57P01", "57P02", "57P03", "53300"]);

// Socket-level failures node reports while connecting to or talking with either server.
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/**
 * node-postgres raises these as plain `Error`s with no code, so their text is all there is to go on.
 * The patterns live in library-messages.ts, each with a test that provokes it for real, so a pg
 * upgrade that rewords one fails there rather than silently turning outages into internal errors.
 */
const POSTGRES_UNAVAILABLE_MESSAGES: readonly RegExp[] = Object.values(POSTGRES_MESSAGES);

/** True when `error` (or what it wraps) says the database or the network to it did not answer. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === "object" && depth < 5; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === "string") {
      if (POSTGRES_CODES.has(code) || code.startsWith("08") || SOCKET_CODES.has(code)) return true;
      // better-sqlite3: the busy wait (busy_timeout) ran out while another connection held the lock.
      if (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_")) return true;
    }
    if (typeof message === "string" && POSTGRES_UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message)))
      return true;
    current =
      (current as { originalError?: unknown; cause?: unknown }).originalError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Logs an ongoing outage once when it starts and once when it ends, instead of a line per failed
 * query or reconnect attempt (an outage at a few hundred requests a second would flood the log).
 */
export class OutageLog {
  private down = false;

  constructor(
    private readonly logger: { warn(obj: object, msg: string): void; info(msg: string): void },
    private readonly what: string,
  ) {}

  /** Something failed: logged at warn only if this is the first failure since the last success. */
  failed(error: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.warn({ err: safeError(error) }, `${this.what} is not answering; retrying in the background`);
  }

  /** Something worked: logs the recovery if there was an outage. */
  recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.info(`${this.what} is answering again`);
  }

  get isDown(): boolean {
    return this.down;
  }
}

/**
 * Only the message and code of a driver error. ioredis errors can carry the failed command with its
 * arguments (for AUTH, the password) and pg errors the connection parameters: never log the object.
 */
export function safeError(error: unknown): { message: string; code?: string } {
  if (!(error instanceof Error)) return { message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { message: error.message, ...(typeof code === "string" ? { code } : {}) };
}

/** Rejects with a timeout error (code ETIMEDOUT) when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`${what} did not answer within ${ms} ms`), { code: "ETIMEDOUT" })),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
