import type { Logger } from "pino";

import { API_TOKEN_MAX_LIFETIME_SECONDS, mintApiToken } from "../access/api-tokens.js";
import { assuranceRefusal } from "../access/auth-checker.js";
import type { ClientInfo, Principal } from "../access/principal.js";
import { sessionIdOf } from "../access/principal.js";
import type { Revocations } from "../access/revocation-sync.js";
import type { Role } from "../access/roles.js";
import { effectiveRoles, normalizeScopes, type Scope, unbackedScope } from "../access/scopes.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { DatabaseHandle } from "../db/database.js";
import { parseDuration } from "../durations.js";
import { BadUserInputError, ErrorReason, ForbiddenError, NotFoundError, UnauthenticatedError } from "../errors.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import { validateArgument } from "../graphql/validation.js";
import { type FloodLimit, perSession } from "../rate-limits/index.js";
import type { UserStore } from "../users/index.js";
import { type ApiTokenRevokeReason, ApiTokenStore } from "./api-token.store.js";
import {
  API_TOKEN_DEFAULT_EXPIRES_IN,
  API_TOKENS_DEFAULT,
  API_TOKENS_PER_USER_MAX,
  type ApiToken,
  CreateApiTokenInput,
  type CreatedApiToken,
} from "./api-token.type.js";

export interface ApiTokenServiceDeps {
  database: DatabaseHandle;
  /** A new token's owner is checked (and, on PostgreSQL, locked) in its transaction. */
  users: UserStore;
  /** Revoked tokens are refused on this instance at once and on every other within a second. */
  revocations: Revocations;
  audit: AuditService;
  /** WRITES_MAX_PER_USER: createApiToken is charged to the caller's account, revokeApiToken to their session. */
  writes: FloodLimit;
  now: () => number;
  logger: Logger;
  /** MFA_REQUIRED_ROLES: a token that acts with one of these roles is minted only by a session at AAL2. Default: none. */
  mfaRequiredRoles?: readonly string[];
}

/**
 * Creating, listing and revoking scoped API tokens. The token is returned once and only the SHA-256
 * of its secret is stored; the bearer check (access/api-tokens.ts) verifies it. Every creation and
 * revocation is audited (API_TOKEN_CREATED, API_TOKEN_REVOKED) and every revocation published to
 * every instance through {@link Revocations}.
 */
export class ApiTokenService {
  private readonly store: ApiTokenStore;

  constructor(private readonly deps: ApiTokenServiceDeps) {
    this.store = new ApiTokenStore(deps.database.db);
  }

  /**
   * A new token for the caller, with at most `scopes` and a lifetime of at most 365 days; FORBIDDEN
   * (SCOPE) for a scope the caller's roles can never use, and (MFA_REQUIRED or
   * MFA_ENROLLMENT_REQUIRED) for a token of a role in MFA_REQUIRED_ROLES made without AAL2.
   */
  async create(principal: Principal, input: CreateApiTokenInput, client: ClientInfo): Promise<CreatedApiToken> {
    const lifetime = lifetimeOf(input.expiresIn);
    // The caller's roles as they are now (the bearer check re-reads them after a role change).
    refuseUnbacked(principal.roles, input.scopes);
    this.checkAssurance(principal, input.scopes);
    const minted = mintApiToken();
    const result = await this.deps.writes.spend(principal.userId, () =>
      this.insert(principal.userId, input, minted, lifetime, sessionEnded),
    );
    await this.created(result, input.expiresIn, { sessionId: sessionIdOf(principal), client });
    return { token: minted.token, apiToken: result };
  }

  /**
   * Operator use (the CLI's `api-tokens create`): a new token for the account `userId`, with
   * createApiToken's rules for what it holds (the input's rules, a lifetime of at most 365 days,
   * FORBIDDEN (SCOPE) for a scope the account's roles can never use, at most 50 live tokens) but none
   * of a session's: no step-up, second factor or write budget, since the operator at the machine
   * already holds the database. It is how an ADMIN gets OPERATIONS_ANY or INTROSPECT whatever a
   * manifest lists. `expiresIn` defaults to 90d. NOT_FOUND for an unknown account; BAD_USER_INPUT
   * (rule `activeAccount`) for a disabled one. Audited as API_TOKEN_CREATED with `by=CLI`.
   */
  async createByOperator(
    userId: string,
    input: { name: string; scopes: Scope[]; expiresIn?: string },
  ): Promise<CreatedApiToken> {
    const checked = Object.assign(new CreateApiTokenInput(), {
      ...input,
      expiresIn: input.expiresIn ?? API_TOKEN_DEFAULT_EXPIRES_IN,
    });
    // What type-graphql's validateFn does for createApiToken's argument.
    validateArgument(checked);
    const lifetime = lifetimeOf(checked.expiresIn);
    const owner = await this.deps.users.findById(userId);
    if (!owner) throw new NotFoundError("User", userId);
    refuseUnbacked(owner.roles, checked.scopes);
    const minted = mintApiToken();
    const result = await this.insert(userId, checked, minted, lifetime, accountInactive);
    await this.created(result, checked.expiresIn, { by: "CLI" });
    return { token: minted.token, apiToken: result };
  }

  /** Logs and audits a new token (never the token itself). */
  private async created(token: OwnedApiToken, expiresIn: string, origin: Origin): Promise<void> {
    this.deps.logger.info({ userId: token.userId, apiTokenId: token.id, by: origin.by }, "API token created");
    await this.deps.audit.record({
      type: AuditEventType.API_TOKEN_CREATED,
      userId: token.userId,
      sessionId: origin.sessionId,
      detail: auditDetail({ apiToken: token.id, scopes: token.scopes.join(","), expires: expiresIn, by: origin.by }),
      client: origin.client,
    });
  }

  /**
   * An API token passes every assurance check (it cannot hold a second factor), so a token that
   * would act with a role of MFA_REQUIRED_ROLES is minted only by a session at AAL2: FORBIDDEN,
   * MFA_REQUIRED for a session that owes its second factor, MFA_ENROLLMENT_REQUIRED for a user who
   * has none. Otherwise a token would be the way around the rule.
   */
  private checkAssurance(principal: Principal, scopes: readonly Scope[]): void {
    const required = this.deps.mfaRequiredRoles ?? [];
    if (required.length === 0) return;
    const strictFor = effectiveRoles(principal.roles, scopes).find((role: Role) => required.includes(role));
    if (strictFor === undefined) return;
    const refusal = assuranceRefusal(principal, strictFor);
    if (refusal) throw refusal;
  }

  /** Stores a new token unless the user is gone or disabled (`gone`), or holds the most live tokens already. */
  private async insert(
    userId: string,
    input: CreateApiTokenInput,
    minted: ReturnType<typeof mintApiToken>,
    lifetime: number,
    gone: () => Error,
  ): Promise<OwnedApiToken> {
    const now = new Date(this.deps.now());
    const result = await this.store.insert(
      {
        id: minted.id,
        userId,
        name: input.name,
        scopes: normalizeScopes(input.scopes),
        secretHash: minted.secretHash,
        createdAt: now,
        expiresAt: new Date(now.getTime() + lifetime * 1000),
      },
      API_TOKENS_PER_USER_MAX,
      this.deps.users,
    );
    if (result === "no-user") throw gone();
    if (result === "too-many") {
      throw new BadUserInputError([
        {
          field: "input",
          rule: "maxTokens",
          message: `an account may hold at most ${API_TOKENS_PER_USER_MAX} live API tokens: revoke one first`,
        },
      ]);
    }
    return { ...result, userId };
  }

  /**
   * A page of the caller's live tokens, newest first; never a token's secret. `first` defaults to
   * 50 (every live token); BAD_USER_INPUT when `after` names none of the caller's tokens.
   */
  async list(
    principal: Principal,
    args: { first?: number | null; offset?: number | null; after?: string | null } = {},
  ): Promise<ApiToken[]> {
    const tokens = await this.store.listLive(
      principal.userId,
      new Date(this.deps.now()),
      pageOf(args, API_TOKENS_DEFAULT),
    );
    if (!tokens) throw unknownAfter("API token");
    return tokens;
  }

  /**
   * Revokes one of the caller's tokens: refused on every instance within a second. False when it
   * was already revoked; NOT_FOUND when unknown; FORBIDDEN (OWNERSHIP) for someone else's.
   */
  async revoke(principal: Principal, id: string, client: ClientInfo): Promise<boolean> {
    const at = this.deps.now();
    // Charged to the session: a stolen one cannot use up what the owner needs to revoke tokens.
    const revoked = await this.deps.writes.spend(perCredential(principal), async () => {
      const token = await this.store.findById(id);
      if (!token) throw new NotFoundError("ApiToken", id);
      if (token.userId !== principal.userId)
        throw new ForbiddenError(ErrorReason.OWNERSHIP, "You can only revoke your own API tokens.");
      return this.store.revoke(id, "revoked", new Date(at));
    });
    if (!revoked) return false;
    await this.revoked(principal.userId, id, at, { by: principal.userId, sessionId: sessionIdOf(principal), client });
    return true;
  }

  /**
   * Operator use (the CLI's `api-tokens revoke`): revokes any account's token, as its owner's
   * revokeApiToken would, refused on every instance within a second. False when it was already
   * revoked; NOT_FOUND when unknown. Audited as API_TOKEN_REVOKED with `by=CLI`.
   */
  async revokeByOperator(id: string): Promise<boolean> {
    const at = this.deps.now();
    const token = await this.store.findById(id);
    if (!token) throw new NotFoundError("ApiToken", id);
    if (!(await this.store.revoke(id, "revoked", new Date(at)))) return false;
    await this.revoked(token.userId, id, at, { by: "CLI" });
    return true;
  }

  /** Tells every instance that a token is revoked, then logs and audits it. */
  private async revoked(userId: string, id: string, at: number, origin: Origin): Promise<void> {
    await this.deps.revocations.apiTokensRevoked([id], at, "revoked");
    this.deps.logger.info({ userId, apiTokenId: id, by: origin.by }, "API token revoked");
    await this.deps.audit.record({
      type: AuditEventType.API_TOKEN_REVOKED,
      userId,
      sessionId: origin.sessionId,
      detail: auditDetail({ apiToken: id, by: origin.by }),
      client: origin.client,
    });
  }

  /**
   * Revokes every live token of a user (revokeUserSessions, setUserDisabled), published to every
   * instance; returns their ids. Auditing is the caller's: its own event names why.
   */
  async revokeAllOf(userId: string, reason: ApiTokenRevokeReason): Promise<string[]> {
    const at = this.deps.now();
    const ids = await this.store.revokeAllOf(userId, reason, new Date(at));
    if (ids.length === 0) return ids;
    this.deps.logger.info({ userId, reason, apiTokenIds: ids }, "API tokens revoked");
    await this.deps.revocations.apiTokensRevoked(ids, at, reason);
    return ids;
  }
}

/** The budget key of a write that takes control back: the caller's session (API tokens cannot call these). */
function perCredential(principal: Principal): string {
  return principal.kind === "session" ? perSession(principal.sessionId) : principal.userId;
}

/**
 * Who made or revoked a token, for the log and the audit row: a caller's session (with the owner's
 * user id as `by` of a revocation), or the operator at the machine (`by` CLI, no session or client).
 */
interface Origin {
  by?: string;
  sessionId?: string;
  client?: ClientInfo;
}

/** A stored token with its owner. */
type OwnedApiToken = ApiToken & { userId: string };

/** Seconds of an `expiresIn`; BAD_USER_INPUT unless it is a positive duration of at most 365 days. */
function lifetimeOf(expiresIn: string): number {
  const lifetime = parseDuration(expiresIn);
  if (lifetime === undefined || lifetime > API_TOKEN_MAX_LIFETIME_SECONDS) {
    throw new BadUserInputError([
      {
        field: "expiresIn",
        rule: "maxLifetime",
        message: "must be a positive duration of at most 365 days (for example 90d)",
      },
    ]);
  }
  return lifetime;
}

/** FORBIDDEN (SCOPE), naming the scope and the role, for a scope `roles` can never use. */
function refuseUnbacked(roles: readonly Role[], scopes: readonly Scope[]): void {
  const unbacked = unbackedScope(roles, scopes);
  if (!unbacked) return;
  throw new ForbiddenError(
    ErrorReason.SCOPE,
    `The scope ${unbacked.scope} needs the ${unbacked.role} role, which this account does not have: ` +
      `create the token without ${unbacked.scope}.`,
  );
}

function sessionEnded(): Error {
  return new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this token is gone or disabled.");
}

function accountInactive(): Error {
  return new BadUserInputError([
    { field: "userId", rule: "activeAccount", message: "the account is disabled or gone: enable it first" },
  ]);
}
