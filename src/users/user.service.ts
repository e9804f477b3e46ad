import { randomUUID } from "node:crypto";

import type { Logger } from "pino";

import type { ClientInfo, Principal } from "../access/principal.js";
import type { Revocations } from "../access/revocation-sync.js";
import { normalizeRoles, Role } from "../access/roles.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import { BadUserInputError, ErrorReason, NotFoundError, UnauthenticatedError } from "../errors.js";
import { inKeyOrder, requestBatcher } from "../graphql/loaders.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import { validateArgument } from "../graphql/validation.js";
import { NewAccount, noRolesError, usernameTakenError } from "./account-rules.js";
import type { PasswordHasher } from "./passwords.js";
import { USERS_DEFAULT } from "./user.input.js";
import type { UserStore } from "./user.store.js";
import type { User } from "./user.type.js";
import { toPublicUser, UsernameTakenError } from "./user-record.js";

/** Who, other than a signed-in user, creates accounts: the CLI or the admin bootstrap at start. */
export type OperatorName = "CLI" | "ADMIN_USERNAME";

/**
 * A budget of writes per key, spent only by work that succeeds: rate-limits/flood-limit.ts's
 * FloodLimit, named by its shape here because users/ sits below rate-limits/ (which reads users).
 */
export interface WriteBudget {
  spend<T>(key: string, work: () => Promise<T>): Promise<T>;
}

/** Reading users and changing their roles. */
export class UserService {
  constructor(
    private readonly deps: {
      users: UserStore;
      passwords: PasswordHasher;
      /** Told after roles change, so every instance stops honouring the old ones at once. */
      revocations: Revocations;
      /** Records USER_CREATED and ROLES_CHANGED, for the API and the CLI alike. */
      audit: AuditService;
      /** WRITES_MAX_PER_USER: setUserRoles is charged to the ADMIN who calls it. */
      writes: WriteBudget;
      now: () => number;
      logger: Logger;
    },
  ) {}

  /** The signed-in user. A valid token for a user that no longer exists is UNAUTHENTICATED. */
  async me(principal: Principal): Promise<User> {
    const user = await this.deps.users.findById(principal.userId);
    if (!user) throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this token no longer exists.");
    return toPublicUser(user);
  }

  /** A user by username (in any letter case), or undefined: how operator commands name an account. */
  async findByUsername(username: string): Promise<User | undefined> {
    const user = await this.deps.users.findByUsername(username);
    return user && toPublicUser(user);
  }

  /** A user by id, or undefined. The calls of one request (`scope`, its context) in the same tick share one query. */
  readonly findByIdInRequest = requestBatcher(async (ids: readonly string[]) =>
    inKeyOrder(ids, (await this.deps.users.findByIds(ids)).map(toPublicUser), (user) => user.id, undefined),
  );

  /**
   * A page of the users, oldest first; `first` defaults to 50 and `offset` to 0. BAD_USER_INPUT
   * when `after` names no user.
   */
  async list(args: { first?: number | null; offset?: number | null; after?: string | null } = {}): Promise<User[]> {
    const users = await this.deps.users.list(pageOf(args, USERS_DEFAULT));
    if (!users) throw unknownAfter("user");
    return users.map(toPublicUser);
  }

  /**
   * Replaces a user's roles. At least one role is required, and the last ADMIN cannot lose ADMIN
   * (that would leave nobody able to manage roles); both are BAD_USER_INPUT on `roles`.
   */
  async setRoles(actor: Principal, userId: string, roles: readonly Role[], client: ClientInfo = {}): Promise<User> {
    if (roles.length === 0) throw noRolesError();
    const at = this.deps.now();
    const result = await this.deps.writes.spend(actor.userId, async () => {
      const changed = await this.deps.users.setRoles(userId, normalizeRoles(roles), new Date(at));
      if (changed === "not-found") throw new NotFoundError("User", userId);
      if (changed === "last-admin") {
        throw new BadUserInputError([
          { field: "roles", rule: "lastAdmin", message: "cannot remove ADMIN from the last admin" },
        ]);
      }
      return changed;
    });
    // Tokens minted before now carry the old roles: from this moment every instance uses the new ones.
    await this.deps.revocations.rolesChanged(userId, result.roles, at);
    await this.deps.audit.record({
      type: AuditEventType.ROLES_CHANGED,
      userId,
      username: result.username,
      detail: auditDetail({ roles: result.roles.join(","), by: actor.userId }),
      client,
    });
    return toPublicUser(result);
  }

  /**
   * Creates a user with the given roles (operator use: the CLI and the admin bootstrap), applying
   * the same username and password rules as `register`, and records USER_CREATED with who did it
   * (`by`: CLI or ADMIN_USERNAME). Throws BadUserInputError.
   */
  async create(input: { username: string; password: string; roles: readonly Role[]; by: OperatorName }): Promise<User> {
    validateArgument(Object.assign(new NewAccount(), { username: input.username, password: input.password }));
    if (input.roles.length === 0) throw noRolesError();
    try {
      const user = await this.deps.users.insert({
        id: randomUUID(),
        username: input.username,
        passwordHash: await this.deps.passwords.hash(input.password),
        roles: input.roles,
        now: new Date(this.deps.now()),
      });
      this.deps.logger.info({ userId: user.id, roles: user.roles, by: input.by }, "user created by operator");
      await this.deps.audit.record({
        type: AuditEventType.USER_CREATED,
        userId: user.id,
        username: user.username,
        detail: auditDetail({ roles: user.roles.join(","), by: input.by }),
      });
      return toPublicUser(user);
    } catch (error) {
      if (error instanceof UsernameTakenError) throw usernameTakenError();
      throw error;
    }
  }

  /**
   * Makes sure `username` exists and has ADMIN (ADMIN_USERNAME/ADMIN_PASSWORD at start). Creates it
   * when missing; adds ADMIN when it exists without it; never changes an existing password.
   */
  async ensureAdmin(admin: { username: string; password: string }): Promise<"created" | "promoted" | "unchanged"> {
    const existing = await this.deps.users.findByUsername(admin.username);
    if (!existing) {
      try {
        await this.create({ ...admin, roles: [Role.USER, Role.ADMIN], by: "ADMIN_USERNAME" });
        return "created";
      } catch (error) {
        // Another instance created it at the same moment: fall through to the promotion check.
        if (!(error instanceof BadUserInputError && error.fields.some((f) => f.rule === "unique"))) throw error;
        return this.ensureAdmin(admin);
      }
    }
    if (existing.roles.includes(Role.ADMIN)) return "unchanged";
    const at = this.deps.now();
    const promoted = await this.deps.users.addRole(existing.id, Role.ADMIN, new Date(at));
    if (promoted) {
      await this.deps.revocations.rolesChanged(promoted.id, promoted.roles, at);
      await this.deps.audit.record({
        type: AuditEventType.ROLES_CHANGED,
        userId: promoted.id,
        username: promoted.username,
        detail: auditDetail({ roles: promoted.roles.join(","), by: "ADMIN_USERNAME" }),
      });
    }
    this.deps.logger.info({ userId: existing.id }, "ADMIN role added by bootstrap");
    return "promoted";
  }
}
