// The auth feature's face: the credential mutations (register, login, refreshToken, changePassword)
// and the build of the service that checks and sets passwords, with the limits it owns.
import type { AuditService } from "../audit/index.js";
import type { EmailAddressService, PasswordResetService } from "../email/index.js";
import { type Basics, defineFeature } from "../feature.js";
import { type CounterStore, createFloodLimit, createLoginThrottle, type FloodLimit } from "../rate-limits/index.js";
import type { RefreshService, SessionService } from "../sessions/index.js";
import type { PasswordHasher, UserStore } from "../users/index.js";
import { AuthResolver } from "./auth.resolver.js";
import { AuthService } from "./auth.service.js";

export { AuthService } from "./auth.service.js";

/** What the auth feature is built from. */
export interface AuthNeeds extends Basics {
  readonly counters: CounterStore;
  readonly passwords: PasswordHasher;
  readonly audit: AuditService;
  readonly writes: FloodLimit;
  readonly userStore: UserStore;
  readonly sessions: SessionService;
  /** The refreshToken mutation's. */
  readonly refreshes: RefreshService;
  /** Register with an address. */
  readonly emailAddresses: EmailAddressService;
  /** Login and changePassword void the user's reset links. */
  readonly passwordResets: PasswordResetService;
}

async function buildAuth(needs: AuthNeeds) {
  const { config, counters, metrics, logger } = needs;
  const throttle = await createLoginThrottle(config, counters, logger);
  const registrations = await createFloodLimit(
    counters,
    "register:ip",
    config.floodLimits.registrationsPerIpPerHour,
    "Too many accounts were registered from this address",
    () => metrics.rateLimited("REGISTER_MAX_PER_IP"),
  );
  const logins = await createFloodLimit(
    counters,
    "login:user",
    config.userBudgets.loginsPerHour,
    "Too many sign-ins to this account",
    () => metrics.rateLimited("LOGIN_MAX_PER_USER"),
  );
  const { userStore, sessions, passwords, writes, audit, now } = needs;
  const auth = new AuthService({
    users: userStore,
    sessions,
    passwords,
    throttle,
    registrations,
    logins,
    writes,
    audit,
    emailAddresses: needs.emailAddresses,
    passwordResets: needs.passwordResets,
    now,
    logger,
    metrics,
  });
  return { services: { auth }, resolvers: [new AuthResolver(auth, needs.refreshes)] };
}

export const authFeature = defineFeature({ name: "auth", resolvers: [AuthResolver], build: buildAuth });
