// The multi-factor feature's face: TOTP (enrolling, confirming, disabling), recovery codes,
// verifyMfa, an ADMIN's reset of a user's factors, User.mfaEnabled and User.recoveryCodesRemaining,
// and resetPassword's second-factor check, handed to email/'s reset service at build.
import type { AuditService } from "../audit/index.js";
import type { PasswordResetService } from "../email/index.js";
import { type Basics, defineFeature } from "../feature.js";
import type { CounterStore, FloodLimit } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import type { UserStore } from "../users/index.js";
import { CodeChecker } from "./code-check.js";
import { MfaResolver } from "./mfa.resolver.js";
import { MfaService } from "./mfa.service.js";
import { createMfaThrottle } from "./mfa-throttle.js";
import { RecoveryCodeStore } from "./recovery-code.store.js";
import { resealSecrets } from "./reseal.js";
import { loadSecretKeys, SecretBox } from "./secret-box.js";
import { TotpService } from "./totp.service.js";
import { TotpStore } from "./totp.store.js";
import { UserMfaResolver } from "./user-mfa.resolver.js";

export { type MfaResetActor, MfaService } from "./mfa.service.js";
export { MFA_FAILURE_WINDOW_SECONDS, MFA_FAILURES_PER_CHALLENGE, MFA_FAILURES_PER_USER } from "./mfa-throttle.js";
export { MFA_KEY_FILE } from "./secret-box.js";
export { TotpService } from "./totp.service.js";

/** What the multi-factor feature is built from. */
export interface MfaNeeds extends Basics {
  readonly counters: CounterStore;
  readonly audit: AuditService;
  readonly userStore: UserStore;
  readonly sessions: SessionService;
  readonly writes: FloodLimit;
  readonly passwordResets: PasswordResetService;
}

async function buildMfa(needs: MfaNeeds) {
  const { config, database, counters, audit, userStore, sessions, metrics, now, logger } = needs;
  const box = new SecretBox(loadSecretKeys(config.mfa.encryptionKeys, config.dataDir));
  const totp = new TotpStore(database.db);
  // Secrets sealed under an older key move to the current one (rotation), with the hourly chores.
  needs.housekeeping.add(() => resealSecrets(totp, box, logger));
  const recoveryCodes = new RecoveryCodeStore(database.db);
  const throttle = await createMfaThrottle(counters, audit, metrics, logger);
  const codes = new CodeChecker({ totp, recoveryCodes, box, throttle, audit, metrics, now });
  const common = { db: database.db, recoveryCodes, codes, users: userStore, sessions, audit, metrics, now };
  const totpService = new TotpService({ ...common, totp, box, writes: needs.writes, issuer: config.jwt.issuer });
  const mfa = new MfaService({ ...common, writes: needs.writes });
  needs.passwordResets.useSecondFactor((user, code, client) => mfa.checkForReset(user, code, client));
  return {
    services: { mfa, totp: totpService },
    resolvers: [new MfaResolver(totpService, mfa), new UserMfaResolver(mfa)],
  };
}

export const mfaFeature = defineFeature({ name: "mfa", resolvers: [MfaResolver, UserMfaResolver], build: buildMfa });
