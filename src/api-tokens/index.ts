// The API tokens feature's face: scoped tokens for scripts and services, and the build of their
// service and of the bearer check's half for them (access/api-tokens.ts's verifier on this table).
import { ApiTokenVerifier } from "../access/api-tokens.js";
import type { RevocationList } from "../access/revocation-list.js";
import type { Revocations } from "../access/revocation-sync.js";
import type { AuditService } from "../audit/index.js";
import { type Basics, defineFeature } from "../feature.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { UserStore } from "../users/index.js";
import { ApiTokenResolver } from "./api-token.resolver.js";
import { ApiTokenService } from "./api-token.service.js";
import { ApiTokenStore } from "./api-token.store.js";

export { ApiTokenService } from "./api-token.service.js";
export { ApiToken, CreatedApiToken } from "./api-token.type.js";

/** What the API tokens feature is built from. */
export interface ApiTokensNeeds extends Basics {
  readonly userStore: UserStore;
  readonly revocations: RevocationList;
  readonly revocationSync: Revocations;
  readonly audit: AuditService;
  readonly writes: FloodLimit;
}

async function buildApiTokens(needs: ApiTokensNeeds) {
  const { config, database, userStore, revocations, revocationSync, audit, writes, now, logger } = needs;
  const apiTokens = new ApiTokenService({
    database,
    users: userStore,
    revocations: revocationSync,
    audit,
    writes,
    now,
    logger,
    mfaRequiredRoles: config.mfa.requiredRoles,
  });
  const apiTokenVerifier = new ApiTokenVerifier({ tokens: new ApiTokenStore(database.db), revocations, now, logger });
  return { services: { apiTokens, apiTokenVerifier }, resolvers: [new ApiTokenResolver(apiTokens)] };
}

export const apiTokensFeature = defineFeature({
  name: "api-tokens",
  resolvers: [ApiTokenResolver],
  build: buildApiTokens,
});
