// The mail folder's face: the outbox every mail is written to and the sender that delivers it. The
// core builds the app's Mailer here; features only see the port in src/mailer.ts.
import type { Logger } from "pino";

import { type Basics, defineFeature } from "../feature.js";
import type { Mailer } from "../mailer.js";
import { developmentTransport } from "./dev-transport.js";
import { messageIdDomain, OutboxStore, type Prunable } from "./outbox.store.js";
import { OutboxSender } from "./sender.js";
import { type MailTransport, smtpTransport } from "./transport.js";

export { MAIL_DIR } from "./dev-transport.js";

/** How long rows are kept after they are settled, by status: then the housekeeping deletes them. */
export const OUTBOX_RETENTION_MS: Readonly<Record<Prunable, number>> = {
  sent: 7 * 24 * 60 * 60 * 1000,
  suppressed: 7 * 24 * 60 * 60 * 1000,
  failed: 30 * 24 * 60 * 60 * 1000,
};

/** Rows deleted per statement when pruning, so that a large backlog never holds a long lock. */
const PRUNE_BATCH = 1000;

/**
 * The app's mailer: writes to the outbox, in the caller's transaction. In a server (`background`)
 * it also starts the sender (SMTP_URL, or in development the log and DATA_DIR/mail) and adds the
 * outbox's pruning to the housekeeping; a CLI command only writes rows, which a server sends. In
 * production without SMTP_URL it is not configured: nothing is sent, and start-up says so once.
 */
export function buildMailer(basics: Basics): Mailer {
  const { config, database, metrics, now, background } = basics;
  const store = new OutboxStore(messageIdDomain(config.email.from), database.db, database.dialect);
  const configured = config.email.smtpUrl !== undefined || !config.isProduction;
  const sender = background ? startSending(basics, store, configured) : undefined;
  return {
    configured,
    async enqueue(db, message) {
      await store.write(db, message, "queued", new Date(now()));
      metrics.mail("queued");
      sender?.nudge();
    },
    async suppress(db, message) {
      await store.write(db, message, "suppressed", new Date(now()));
      metrics.mail("suppressed");
    },
  };
}

/** The pruning chore, and the sender when there is somewhere to send to (registered with the closer). */
function startSending(basics: Basics, store: OutboxStore, configured: boolean): OutboxSender | undefined {
  const { config, logger, metrics, now, closer, housekeeping } = basics;
  housekeeping.add(() => pruneOutbox(store, now, logger));
  if (!configured) {
    logger.warn(
      "SMTP_URL is not set: no mail is sent, and the fields that send mail (password reset, e-mail verification and change) answer FORBIDDEN, reason EMAIL_NOT_CONFIGURED, until SMTP_URL is set",
    );
    return undefined;
  }
  const transport = transportOf(basics);
  const sender = new OutboxSender({ store, transport, logger, metrics, now, production: config.isProduction });
  sender.start();
  closer.add("the mail sender", () => sender.stop());
  return sender;
}

function transportOf({ config, logger }: Basics): MailTransport {
  const { smtpUrl, from } = config.email;
  if (smtpUrl === undefined) {
    logger.info("no SMTP_URL: mail is written to the log and to DATA_DIR/mail instead of being sent (development)");
    return developmentTransport(config.dataDir, from, logger);
  }
  // The server only: SMTP_URL's user and password are never logged.
  const { protocol, hostname, port } = new URL(smtpUrl);
  logger.info({ smtp: `${protocol}//${hostname}${port ? `:${port}` : ""}` }, "mail is sent through SMTP");
  return smtpTransport(smtpUrl, from);
}

/**
 * Deletes sent and suppressed rows after 7 days and failed ones after 30 (queued rows are given up
 * after a day, so none lingers), in batches. A failure is logged and tried again on the next run.
 */
export async function pruneOutbox(store: OutboxStore, now: () => number, logger: Logger): Promise<number> {
  let deleted = 0;
  try {
    for (const [status, retention] of Object.entries(OUTBOX_RETENTION_MS) as Array<[Prunable, number]>) {
      const cutoff = new Date(now() - retention);
      for (let batch = PRUNE_BATCH; batch === PRUNE_BATCH;) {
        batch = await store.pruneBatch([status], cutoff, PRUNE_BATCH);
        deleted += batch;
      }
    }
  } catch (error) {
    logger.warn({ err: error }, "pruning the mail outbox failed; retrying on the next run");
  }
  if (deleted > 0) logger.info({ deleted }, "mail outbox pruned");
  return deleted;
}

/** The mail feature gives no fields: the core holds its mailer. */
export const mailFeature = defineFeature({
  name: "mail",
  resolvers: [],
  build: async () => ({ services: {}, resolvers: [] }),
});
