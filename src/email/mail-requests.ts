import type { Kysely } from "kysely";
import type { Logger } from "pino";

import { hashOpaqueSecret } from "../access/opaque-token.js";
import type { ClientInfo } from "../access/principal.js";
import type { AuditService } from "../audit/index.js";
import type { Config } from "../config.js";
import type { Database } from "../db/schema.js";
import { ErrorReason, ForbiddenError, RateLimitedError } from "../errors.js";
import type { Mailer } from "../mailer.js";
import type { MetricsRecorder } from "../metrics.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import { normalizeEmail, type UserStore } from "../users/index.js";
import type { EmailTokenStore } from "./email-token.store.js";

/** What both e-mail services are built from (index.ts builds it once for both). */
export interface EmailFlowDeps {
  db: Kysely<Database>;
  users: UserStore;
  tokens: EmailTokenStore;
  sessions: SessionService;
  mailer: Mailer;
  requests: MailRequests;
  audit: AuditService;
  email: Config["email"];
  now: () => number;
  logger: Logger;
  metrics?: MetricsRecorder;
}

/** Mails with a link one address may be sent per hour (EMAIL_MAX_PER_ADDRESS). */
export const EMAIL_MAX_PER_ADDRESS = 3;

/** The answer of every field that sends mail, in production without SMTP_URL. */
export function emailNotConfiguredError(): ForbiddenError {
  return new ForbiddenError(
    ErrorReason.EMAIL_NOT_CONFIGURED,
    "This server cannot send e-mail (SMTP_URL is not set), so nothing was changed. Ask its operator.",
  );
}

/**
 * What every request that sends mail goes through first: refused in production without SMTP
 * (EMAIL_NOT_CONFIGURED, before any work), then charged to the client's IP
 * (EMAIL_REQUESTS_MAX_PER_IP, RATE_LIMITED past it); and, per address, the allowance of mails with a
 * link, counted under the SHA-256 of the normalized address (the address is never stored in clear).
 */
export class MailRequests {
  constructor(
    private readonly deps: {
      mailer: Mailer;
      /** EMAIL_REQUESTS_MAX_PER_IP, keyed by the client IP. */
      perIp: () => Promise<FloodLimit>;
      /** EMAIL_MAX_PER_ADDRESS, keyed by the address's hash. */
      perAddress: () => Promise<FloodLimit>;
    },
  ) {}

  /** Whether mail can be sent at all: false in production without SMTP_URL. */
  get configured(): boolean {
    return this.deps.mailer.configured;
  }

  /** Refuses (EMAIL_NOT_CONFIGURED, RATE_LIMITED) a request that would send mail; charges its IP. */
  async admit(client: ClientInfo): Promise<void> {
    if (!this.deps.mailer.configured) throw emailNotConfiguredError();
    await (await this.deps.perIp()).charge(client.ip ?? "unknown");
  }

  /** Gives back the IP's unit of a request {@link admit} let in that the service then turned away (SERVICE_UNAVAILABLE). */
  async readmit(client: ClientInfo): Promise<void> {
    await (await this.deps.perIp()).refund(client.ip ?? "unknown");
  }

  /**
   * Takes one mail from `address`'s hourly allowance: true while there was one, false once spent
   * (the caller then writes a suppressed row instead, and answers as if it had sent).
   */
  async allowance(address: string): Promise<boolean> {
    try {
      await (await this.deps.perAddress()).charge(`address:${hashOpaqueSecret(normalizeEmail(address))}`);
      return true;
    } catch (error) {
      if (error instanceof RateLimitedError) return false;
      throw error;
    }
  }
}

/**
 * `make`, run once on first use and remembered (a failure is retried on the next use): the counters
 * of these limits, so that an app whose requests never send mail creates no counter table for them.
 */
export function onFirstUse<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make().catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
}
