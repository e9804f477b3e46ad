// The e-mail feature's face: addresses on accounts (verification, change), forgotten passwords
// (reset links and resets), the rules an address meets, and the build of both services with the
// limits they own. auth/ uses it for register with an address and login by address.
import type { ApiTokenService } from "../api-tokens/index.js";
import type { AuditService } from "../audit/index.js";
import { type Basics, defineFeature } from "../feature.js";
import type { Mailer } from "../mailer.js";
import { type CounterStore, createFloodLimit } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import type { PasswordHasher, UserStore } from "../users/index.js";
import { EmailResolver } from "./email.resolver.js";
import { EmailAddressService } from "./email-address.service.js";
import { EmailTokenStore } from "./email-token.store.js";
import { EMAIL_MAX_PER_ADDRESS, MailRequests } from "./mail-requests.js";
import { PasswordResetService } from "./password-reset.service.js";

export { EmailAddressService } from "./email-address.service.js";
export { checkEmailRules, EMAIL_MAX_LENGTH, IsEmailAddress, looksLikeEmail } from "./email-rules.js";
export { EMAIL_MAX_PER_ADDRESS } from "./mail-requests.js";
export { PasswordResetService, type SecondFactorCheck } from "./password-reset.service.js";

/** What the e-mail feature is built from. */
export interface EmailNeeds extends Basics {
  readonly counters: CounterStore;
  readonly passwords: PasswordHasher;
  readonly audit: AuditService;
  readonly mailer: Mailer;
  readonly userStore: UserStore;
  readonly sessions: SessionService;
  readonly apiTokens: ApiTokenService;
}

async function buildEmail(needs: EmailNeeds) {
  const { config, database, counters, metrics, mailer, userStore, sessions, audit, now, logger } = needs;
  const requests = new MailRequests({
    mailer,
    perIp: await createFloodLimit(
      counters,
      "email:ip",
      config.email.requestsPerIpPerHour,
      "Too many e-mail requests from this address",
      () => metrics.rateLimited("EMAIL_REQUESTS_MAX_PER_IP"),
    ),
    perAddress: await createFloodLimit(
      counters,
      "email:address",
      EMAIL_MAX_PER_ADDRESS,
      "Too many mails to this address",
      () => metrics.limitReached("EMAIL_MAX_PER_ADDRESS"),
    ),
  });
  const tokens = new EmailTokenStore(database.db);
  // Spent, voided and expired links' rows go with the hourly chores.
  needs.housekeeping.add(() => tokens.prune(new Date(now())));
  const common = { db: database.db, users: userStore, tokens, mailer, requests, audit, email: config.email };
  const passwordResets = new PasswordResetService({
    ...common,
    passwords: needs.passwords,
    sessions,
    apiTokens: needs.apiTokens,
    now,
    logger,
    metrics,
  });
  const emailAddresses = new EmailAddressService({ ...common, sessions, now, logger, metrics });
  return {
    services: { passwordResets, emailAddresses },
    resolvers: [new EmailResolver(passwordResets, emailAddresses)],
  };
}

export const emailFeature = defineFeature({ name: "email", resolvers: [EmailResolver], build: buildEmail });
