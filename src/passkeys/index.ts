// The passkeys feature's face: WebAuthn credentials (@simplewebauthn/server) registered by signed-in
// users, passkey sign-in (AAL2 on its own) and a passkey as the second factor of a password
// session; the build of both services, the challenge pruning and the limit it owns
// (PASSKEY_CHALLENGES_MAX_PER_IP).
import type { AuditService } from "../audit/index.js";
import { type Basics, defineFeature } from "../feature.js";
import { type CounterStore, createFloodLimit, type FloodLimit } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import type { UserStore } from "../users/index.js";
import { ChallengeStore } from "./challenge.store.js";
import { PasskeyResolver } from "./passkey.resolver.js";
import { PasskeyService } from "./passkey.service.js";
import { PasskeySignInService } from "./passkey-sign-in.service.js";

export { PasskeyService, type RelyingParty } from "./passkey.service.js";
export { Passkey } from "./passkey.type.js";
export { PasskeySignInService } from "./passkey-sign-in.service.js";
export { CHALLENGE_TTL_MS, PASSKEYS_MAX_PER_USER, WEBAUTHN_RESPONSE_MAX_BYTES } from "./webauthn.js";

/** What the passkeys feature is built from. */
export interface PasskeysNeeds extends Basics {
  readonly userStore: UserStore;
  readonly sessions: SessionService;
  readonly audit: AuditService;
  readonly counters: CounterStore;
  readonly writes: FloodLimit;
}

async function buildPasskeys(needs: PasskeysNeeds) {
  const { config, database, userStore, sessions, audit, counters, writes, metrics, now, logger } = needs;
  const relyingParty = { rpId: config.mfa.rpId, origins: config.mfa.origins };
  const challengesPerIp = await createFloodLimit(
    counters,
    "passkey-challenges:ip",
    config.mfa.challengesPerIpPerHour,
    "Too many passkey sign-ins were started from this address",
    () => metrics.rateLimited("PASSKEY_CHALLENGES_MAX_PER_IP"),
  );
  const common = { database, users: userStore, sessions, audit, metrics, relyingParty, now, logger };
  const passkeys = new PasskeyService({ ...common, writes });
  const passkeySignIns = new PasskeySignInService({ ...common, challengesPerIp });
  // Expired challenges (answered or not) go: none outlives its five minutes by more than a run.
  const challenges = new ChallengeStore(database.db);
  needs.housekeeping.add(() => challenges.prune(new Date(now())));
  return {
    services: { passkeys, passkeySignIns },
    resolvers: [new PasskeyResolver(passkeys, passkeySignIns)],
  };
}

export const passkeysFeature = defineFeature({
  name: "passkeys",
  resolvers: [PasskeyResolver],
  build: buildPasskeys,
});
