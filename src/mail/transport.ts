import nodemailer, { type SendMailOptions } from "nodemailer";

import type { ClaimedMail } from "./outbox.store.js";

/** How many mails one instance hands the SMTP server at once (and the pool's connections). */
export const SEND_CONCURRENCY = 4;

/**
 * The longest a single delivery may take, whatever the server does (a server that trickles its
 * replies passes every socket timeout); then the pool is dropped and the mail retried later.
 * The sender's claim on a row lasts longer than this, so no other sender takes a row in flight.
 */
export const SEND_DEADLINE_MS = 30_000;

/** Where the sender hands mail: the SMTP server, or in development the log and DATA_DIR/mail. */
export interface MailTransport {
  /** For log lines: `smtp` or `development`. */
  readonly kind: "smtp" | "development";
  /** Delivers `mail` with `date` as its Date; rejects with the transport's error. */
  send(mail: ClaimedMail, date: Date): Promise<void>;
  /** Resolves true when the server answers (connects, greets, authenticates), false otherwise. */
  verify(): Promise<boolean>;
  /** Closes connections, also those in the middle of a delivery (which then fails). */
  close(): Promise<void>;
}

/**
 * What nodemailer composes from a claimed row: From is MAIL_FROM, the Message-ID the row's (so a
 * retry sends the same one), a text and an HTML part, and nothing else of this server (no local
 * files or URLs are ever read into the message).
 */
export function composeMail(from: string, mail: ClaimedMail, date: Date): SendMailOptions {
  return {
    from,
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    messageId: mail.messageId,
    date,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/**
 * The defaults of the pooled SMTP transport; a query parameter of SMTP_URL overrides any of them
 * (`smtp://host:587?socketTimeout=30000`). Timeouts turn a server that accepts the connection and
 * then says nothing into a failure within seconds; the outbox retries, so the pool does not.
 */
export const SMTP_DEFAULTS = {
  pool: true,
  maxConnections: SEND_CONCURRENCY,
  maxRequeues: 0,
  connectionTimeout: 10_000,
  greetingTimeout: 10_000,
  socketTimeout: 10_000,
  dnsTimeout: 10_000,
  logger: false,
  debug: false,
} as const;

/** A pooled nodemailer transport to SMTP_URL, sending as `from`, each delivery bounded by SEND_DEADLINE_MS. */
export function smtpTransport(url: string, from: string, deadlineMs = SEND_DEADLINE_MS): MailTransport {
  const open = () => nodemailer.createTransport({ ...SMTP_DEFAULTS, url });
  let pool = open();
  // A wedged connection is only ended by closing its pool: the others' mails fail too and are retried.
  const replacePool = (stuck: ReturnType<typeof open>) => {
    if (pool === stuck) pool = open();
    stuck.close({ force: true });
  };
  return {
    kind: "smtp",
    async send(mail, date) {
      const current = pool;
      await withDeadline(current.sendMail(composeMail(from, mail, date)), deadlineMs, () => replacePool(current));
    },
    async verify() {
      const current = pool;
      try {
        await withDeadline(current.verify(), deadlineMs, () => undefined);
        return true;
      } catch {
        return false;
      }
    },
    close: async () => pool.close({ force: true }),
  };
}

/** `work`, or a rejection with code EDEADLINE after `ms` (having called `onExpired`). */
async function withDeadline<T>(work: Promise<T>, ms: number, onExpired: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      onExpired();
      reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: "EDEADLINE" }));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    // The loser must not become an unhandled rejection.
    work.catch(() => undefined);
  }
}
