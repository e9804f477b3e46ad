// The users feature's face: accounts and their rules, the users table, the password hasher (lent to
// the core, since auth/ and accounts/ check passwords too), and the build of the users service.
import type { Revocations } from "../access/revocation-sync.js";
import type { AuditService } from "../audit/index.js";
import { type Basics, defineFeature } from "../feature.js";
import { PasswordHasher } from "./passwords.js";
import { UserResolver } from "./user.resolver.js";
import { UserService, type WriteBudget } from "./user.service.js";
import { UserStore } from "./user.store.js";

export {
  adminPairProblem,
  checkPasswordRules,
  checkUsernameRules,
  EMAIL_MAX_LENGTH,
  IsPassword,
  IsUsername,
  PASSWORD_MAX_LENGTH,
  usernameCharsProblem,
  usernameLengthProblem,
  usernameTakenError,
} from "./account-rules.js";
export { DEFAULT_PASSWORD_QUEUE_MAX, PASSWORD_QUEUE_FULL_MESSAGE, PasswordHasher } from "./passwords.js";
export { type OperatorName, UserService } from "./user.service.js";
export { UserStore } from "./user.store.js";
export { User } from "./user.type.js";
export { normalizeEmail, normalizeUsername, toPublicUser, UsernameTakenError, type UserRecord } from "./user-record.js";

/**
 * The app's password hasher, half the cores' threads, at most PASSWORD_QUEUE_MAX checks waiting (each
 * refusal counted under that name); its worker threads stop with the closer.
 */
export function buildPasswordHasher({ config, metrics, closer }: Pick<Basics, "config" | "metrics" | "closer">) {
  const passwords = new PasswordHasher(undefined, {
    maxWaiting: config.passwordQueueMax,
    onRefused: () => metrics.limitReached("PASSWORD_QUEUE_MAX"),
  });
  closer.add("the password hasher", () => passwords.close());
  return passwords;
}

/** What the users feature is built from. */
export interface UsersNeeds extends Basics {
  readonly passwords: PasswordHasher;
  readonly revocationSync: Revocations;
  readonly audit: AuditService;
  /** WRITES_MAX_PER_USER (rate-limits/). */
  readonly writes: WriteBudget;
}

/** The users table's store (which auth/, sessions/, api-tokens/ and accounts/ use too) and the users service. */
async function buildUsers(needs: UsersNeeds) {
  const { database, passwords, revocationSync, audit, writes, now, logger } = needs;
  const userStore = new UserStore(database.db, database.dialect);
  const users = new UserService({
    users: userStore,
    passwords,
    revocations: revocationSync,
    audit,
    writes,
    now,
    logger,
  });
  return { services: { userStore, users }, resolvers: [new UserResolver(users)] };
}

export const usersFeature = defineFeature({ name: "users", resolvers: [UserResolver], build: buildUsers });
