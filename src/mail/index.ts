// The mail folder's face: the outbox every mail is written to and (later) the sender that delivers
// it. The core builds the app's Mailer here; features only see the port in src/mailer.ts.
import { type Basics, defineFeature } from "../feature.js";
import type { Mailer } from "../mailer.js";
import { messageIdDomain, OutboxStore } from "./outbox.store.js";

/** The app's mailer: writes to the outbox. Not configured in production without SMTP_URL. */
export function buildMailer({ config, metrics, now }: Basics): Mailer {
  const store = new OutboxStore(messageIdDomain(config.email.from));
  return {
    configured: config.email.smtpUrl !== undefined || !config.isProduction,
    async enqueue(db, message) {
      await store.write(db, message, "queued", new Date(now()));
      metrics.mail("queued");
    },
    async suppress(db, message) {
      await store.write(db, message, "suppressed", new Date(now()));
      metrics.mail("suppressed");
    },
  };
}

/** The mail feature gives no fields: the core holds its mailer. */
export const mailFeature = defineFeature({
  name: "mail",
  resolvers: [],
  build: async () => ({ services: {}, resolvers: [] }),
});
