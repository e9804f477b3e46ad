import type { Logger } from "pino";

import type { Metrics } from "../metrics.js";
import type { ClaimedMail, OutboxStore } from "./outbox.store.js";
import { domainOf, GIVE_UP_AFTER_MS, nextAttemptAt, readFailure, type SendFailure } from "./retry-policy.js";
import { type MailTransport, SEND_CONCURRENCY, SEND_DEADLINE_MS } from "./transport.js";

/** How often the sender looks for due mail when nothing brings it forward. */
export const POLL_INTERVAL_MS = 500;
/** How soon after this instance enqueued a mail the sender looks (the row may not be committed yet). */
const NUDGE_DELAY_MS = 20;
/** While the server does not answer, how often the sender asks it again (connect, greet, authenticate). */
export const PROBE_INTERVAL_MS = 1000;
/** How often the waiting mails are counted for the metrics. */
const COUNT_INTERVAL_MS = 5000;
/** How long a stop waits for the deliveries in flight before it closes the transport. */
const STOP_WAIT_MS = 5000;

export interface SenderOptions {
  readonly store: OutboxStore;
  readonly transport: MailTransport;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  /** In production no log line names a recipient (only their domain). */
  readonly production: boolean;
  /** How long a claim holds a row; longer than a delivery can take. Default twice SEND_DEADLINE_MS. */
  readonly leaseMs?: number;
}

/**
 * The background sender: claims due rows of the outbox in small batches (at most SEND_CONCURRENCY
 * in flight), hands them to the transport and writes the outcome on the row while its claim holds.
 * A failure waits its backoff (retry-policy.ts); one a day after the row was written, or a 5xx to
 * the mail itself, is given up. While the server does not answer at all the sender asks it every
 * PROBE_INTERVAL_MS, and once it answers one waiting mail is brought forward as a trial; the first
 * mail that goes through after failures brings every waiting one forward.
 */
export class OutboxSender {
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private polling = false;
  /** A look was due while one ran: the next follows at once. */
  private pollAgain = false;
  private stopped = false;
  /** The last failure was the server not answering (not a reply): probing applies. */
  private unreachable = false;
  /** Some delivery failed since the last one that went through. */
  private failing = false;
  private probing = false;
  private lastProbe = 0;
  private lastCount = 0;
  private databaseDown = false;

  constructor(private readonly options: SenderOptions) {}

  start(): void {
    this.schedule(0);
  }

  /** Brings the next look forward (a mail was just enqueued); never puts it off. */
  nudge(): void {
    if (!this.stopped) this.schedule(NUDGE_DELAY_MS);
  }

  /**
   * Stops looking and waits up to STOP_WAIT_MS for the deliveries in flight; then closes the
   * transport, cutting any delivery still waiting on the server, and lets those record their
   * failure (before the database closes), so that their mails are due again at the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const settled = Promise.allSettled([...this.inFlight]);
    await withinMs(settled, STOP_WAIT_MS);
    await this.options.transport.close();
    await withinMs(settled, STOP_WAIT_MS);
  }

  private schedule(delayMs: number): void {
    const at = Date.now() + delayMs;
    if (this.stopped || (this.timer !== undefined && this.timerAt <= at)) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = true;
    this.pollAgain = false;
    try {
      await this.poll();
      if (this.databaseDown) this.options.logger.info("mail outbox: the database answers again");
      this.databaseDown = false;
    } catch (error) {
      if (!this.databaseDown) this.options.logger.warn({ err: error }, "mail outbox: reading it failed; retrying");
      this.databaseDown = true;
    } finally {
      this.polling = false;
      this.schedule(this.pollAgain ? 0 : POLL_INTERVAL_MS);
    }
  }

  private async poll(): Promise<void> {
    const { store, now, metrics } = this.options;
    if (Date.now() - this.lastCount >= COUNT_INTERVAL_MS) {
      this.lastCount = Date.now();
      metrics.mailWaiting(await store.countWaiting());
    }
    if (this.unreachable) this.probe();
    const free = SEND_CONCURRENCY - this.inFlight.size;
    if (free <= 0) return;
    const at = now();
    const claimed = await store.claim(
      free,
      new Date(at),
      new Date(at + (this.options.leaseMs ?? 2 * SEND_DEADLINE_MS)),
    );
    for (const mail of claimed) {
      const delivery = this.deliver(mail).finally(() => {
        this.inFlight.delete(delivery);
        // A slot is free: more may be due.
        this.schedule(0);
      });
      this.inFlight.add(delivery);
    }
  }

  /** Asks an unreachable server whether it answers again; if so, one waiting mail becomes due as a trial. */
  private probe(): void {
    if (this.probing || Date.now() - this.lastProbe < PROBE_INTERVAL_MS) return;
    this.probing = true;
    this.lastProbe = Date.now();
    void this.options.transport
      .verify()
      .then(async (answers) => {
        if (!answers || !this.unreachable || this.stopped) return;
        this.unreachable = false;
        await this.options.store.pullForward(new Date(this.options.now()), 1);
        this.options.logger.info("SMTP server answers again: sending a waiting mail as a trial");
        this.schedule(0);
      })
      .catch((error: unknown) =>
        this.options.logger.warn({ err: error }, "mail outbox: bringing a mail forward failed"),
      )
      .finally(() => (this.probing = false));
  }

  private async deliver(mail: ClaimedMail): Promise<void> {
    try {
      try {
        await this.options.transport.send(mail, new Date(this.options.now()));
      } catch (error) {
        return await this.failed(mail, readFailure(error));
      }
      await this.sent(mail);
    } catch (error) {
      // The database failed while recording: the claim lapses and the row is tried again.
      this.options.logger.warn({ err: error, mailId: mail.id }, "mail outbox: recording a delivery failed");
    }
  }

  private async sent(mail: ClaimedMail): Promise<void> {
    const { store, now, metrics, logger } = this.options;
    const at = now();
    const recorded = await store.markSent(mail, new Date(at));
    metrics.mail("sent");
    metrics.mailDelivered((at - mail.createdAt.getTime()) / 1000);
    logger.info({ ...this.describe(mail), delaySeconds: (at - mail.createdAt.getTime()) / 1000 }, "mail sent");
    if (!recorded) logger.warn({ mailId: mail.id }, "mail sent after its claim had lapsed: it may go out twice");
    if (this.failing) {
      this.failing = false;
      this.unreachable = false;
      const due = await store.pullForward(new Date(now()));
      if (due > 0) logger.info({ due }, "mail goes through again: every waiting mail is due now");
      this.schedule(0);
    }
  }

  private async failed(mail: ClaimedMail, failure: SendFailure): Promise<void> {
    const { store, now, metrics, logger } = this.options;
    const at = now();
    if (failure.permanent || at - mail.createdAt.getTime() >= GIVE_UP_AFTER_MS) {
      await store.markFailed(mail, failure.description);
      metrics.mail("failed");
      logger.warn(
        { ...this.describe(mail), error: failure.description },
        failure.permanent
          ? "mail refused for good by the SMTP server (5xx): marked failed"
          : "mail not sent within a day: marked failed",
      );
      return;
    }
    const retryAt = nextAttemptAt(at, mail.attempt);
    await store.retryLater(mail, retryAt, failure.description);
    metrics.mail("retried");
    if (!this.failing) logger.warn({ error: failure.description }, "mail delivery failing: mails wait and are retried");
    this.failing = true;
    this.unreachable = !failure.replied;
    logger.debug({ ...this.describe(mail), error: failure.description, retryAt }, "mail not sent; retrying later");
  }

  /** What a log line says of a mail: its row and attempt; the recipient only outside production. */
  private describe(mail: ClaimedMail): Record<string, unknown> {
    const { production } = this.options;
    return {
      mailId: mail.id,
      attempt: mail.attempt,
      ...(production ? { toDomain: domainOf(mail.to) } : { to: mail.to }),
    };
  }
}

/** Waits for `promise`, at most `ms`. */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
