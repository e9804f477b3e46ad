/** One e-mail: plain text, to one address. */
export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  /** May carry a single-use link or code, so it is never logged. */
  readonly text: string;
}

/**
 * The port every feature sends mail through; the core holds one per app. Sending resolves once the
 * transport has taken the message, and rejects when it refused it.
 */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/**
 * The mailer of an app without a mail transport: it sends nothing and logs at info that a message
 * would have gone out, with its recipient and subject, never its text.
 */
export function createLogMailer(logger: { info(fields: object, message: string): void }): Mailer {
  return {
    async send({ to, subject }) {
      logger.info({ to, subject }, "mail not sent: no mail transport is configured");
    },
  };
}
