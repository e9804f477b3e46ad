// The accounts feature's face: operator control of whole accounts (ending every credential of a
// user, disabling, enabling, deleting) and the build of its service.
import type { Revocations } from "../access/revocation-sync.js";
import type { ApiTokenService } from "../api-tokens/index.js";
import type { AuditService } from "../audit/index.js";
import { type Basics, defineFeature } from "../feature.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import type { PasswordHasher, UserStore } from "../users/index.js";
import { AccountResolver } from "./account.resolver.js";
import { AccountService } from "./account.service.js";

export { type AccountActor, AccountService } from "./account.service.js";

/** What the accounts feature is built from. */
export interface AccountsNeeds extends Basics {
  readonly revocationSync: Revocations;
  /** How long the revocation list remembers a deleted account's credentials. */
  readonly revocationRetentionMs: number;
  readonly passwords: PasswordHasher;
  readonly audit: AuditService;
  readonly writes: FloodLimit;
  readonly userStore: UserStore;
  readonly sessions: SessionService;
  readonly apiTokens: ApiTokenService;
}

async function buildAccounts(needs: AccountsNeeds) {
  const accounts = new AccountService({
    users: needs.userStore,
    sessions: needs.sessions,
    apiTokens: needs.apiTokens,
    passwords: needs.passwords,
    revocations: needs.revocationSync,
    revocationRetentionMs: needs.revocationRetentionMs,
    writes: needs.writes,
    audit: needs.audit,
    now: needs.now,
    logger: needs.logger,
    metrics: needs.metrics,
  });
  return { services: { accounts }, resolvers: [new AccountResolver(accounts)] };
}

export const accountsFeature = defineFeature({ name: "accounts", resolvers: [AccountResolver], build: buildAccounts });
