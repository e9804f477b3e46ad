import { randomUUID } from "node:crypto";

import type { Logger } from "pino";

import type { ClientInfo, RefreshCookie, SessionPrincipal } from "../access/principal.js";
import { Role } from "../access/roles.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import { type EmailAddressService, looksLikeEmail, type PasswordResetService } from "../email/index.js";
import {
  ACCOUNT_DISABLED_MESSAGE,
  ErrorReason,
  INVALID_CREDENTIALS_MESSAGE,
  RateLimitedError,
  ServiceUnavailableError,
  UnauthenticatedError,
} from "../errors.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { type FloodLimit, type LoginAttempt, type LoginThrottle, perSession } from "../rate-limits/index.js";
import type { AuthPayload, SessionService } from "../sessions/index.js";
import {
  normalizeEmail,
  type PasswordHasher,
  toPublicUser,
  UsernameTakenError,
  usernameTakenError,
  type UserRecord,
  type UserStore,
} from "../users/index.js";
import { checkAndHash } from "./password-change.js";

type AllowedAttempt = Extract<LoginAttempt, { allowed: true }>;

export interface AuthServiceDeps {
  users: UserStore;
  sessions: SessionService;
  passwords: PasswordHasher;
  throttle: LoginThrottle;
  /** REGISTER_MAX_PER_IP: successful registrations per client IP per hour. */
  registrations: FloodLimit;
  /** LOGIN_MAX_PER_USER: logins with the right password per account per hour. */
  logins: FloodLimit;
  /** WRITES_MAX_PER_USER: changePassword attempts are charged to the caller (each checks a password). */
  writes: FloodLimit;
  audit: AuditService;
  /** Register with an address: its mail limits, and the verification written with the account. */
  emailAddresses: EmailAddressService;
  /** Voids the user's reset links once the password proved known (a login) or changed. */
  passwordResets: Pick<PasswordResetService, "voidLinks">;
  now: () => number;
  logger: Logger;
  /** Logins by outcome, registrations, login-throttle hits. Default: recorded nowhere. */
  metrics?: MetricsRecorder;
}

/** What register takes: a new account's credentials and, optionally, its address. */
export interface NewAccountInput {
  username: string;
  password: string;
  email?: string | null;
}

/** Registration, sign-in and password changes: everything that checks or sets a password. */
export class AuthService {
  private readonly metrics: MetricsRecorder;

  constructor(private readonly deps: AuthServiceDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
  }

  /**
   * Creates a USER account and signs it in. A taken username (in any letter case, also when two
   * registrations race) is BAD_USER_INPUT on `username`. Once the client's IP has had
   * REGISTER_MAX_PER_IP successful registrations within the hour, RATE_LIMITED before any hashing;
   * a registration that fails does not count. With an address, the e-mail limits come first
   * (EMAIL_NOT_CONFIGURED in production without SMTP, EMAIL_REQUESTS_MAX_PER_IP), and the address
   * is stored unverified with its verification link and mail in the account's transaction.
   */
  async register(input: NewAccountInput, client: ClientInfo, cookie?: RefreshCookie): Promise<AuthPayload> {
    if (input.email) await this.deps.emailAddresses.admitRegistration(client);
    try {
      return await this.deps.registrations.spend(client.ip ?? "unknown", () =>
        this.createAccount(input, client, cookie),
      );
    } catch (error) {
      // Turned away before any work (the password queue was full, an outage): a retry costs nothing.
      if (input.email && error instanceof ServiceUnavailableError) {
        await this.deps.emailAddresses.readmitRegistration(client);
      }
      if (error instanceof RateLimitedError) {
        // Anybody can repeat this at any rate: one row per client IP per minute, with a count.
        this.deps.audit.recordCoalesced(
          { type: AuditEventType.REGISTRATION_THROTTLED, client },
          { limit: "REGISTER_MAX_PER_IP" },
        );
        this.deps.logger.debug(
          { reqId: client.requestId, retryAfter: error.extensions.retryAfter },
          "registration throttled",
        );
      }
      throw error;
    }
  }

  private async createAccount(
    input: NewAccountInput,
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<AuthPayload> {
    const passwordHash = await this.deps.passwords.hash(input.password);
    const email = input.email ?? undefined;
    const account = {
      id: randomUUID(),
      username: input.username,
      passwordHash,
      roles: [Role.USER],
      email,
      now: new Date(this.deps.now()),
    };
    let user: UserRecord;
    try {
      user = email
        ? await this.deps.emailAddresses.createWithAddress(email, (trx) => this.deps.users.insert(account, trx))
        : await this.deps.users.insert(account);
    } catch (error) {
      if (error instanceof UsernameTakenError) throw usernameTakenError();
      throw error;
    }
    const { payload, sessionId } = await this.deps.sessions.start(toPublicUser(user), client, cookie);
    await this.deps.audit.record({
      type: AuditEventType.REGISTERED,
      userId: user.id,
      username: user.username,
      sessionId,
      client,
    });
    this.metrics.registered();
    return payload;
  }

  /**
   * Checks a username and password and starts a session. An unknown username and a wrong password
   * fail identically (same code, same message, one argon2 verification each). The throttle is asked
   * first: a username that failed too often from this IP, or an IP that failed too often, is
   * RATE_LIMITED before any password work, whether or not the password is right. The right
   * password of a disabled account is UNAUTHENTICATED with reason ACCOUNT_DISABLED (a wrong one is
   * BAD_CREDENTIALS like any other, so the reason reveals nothing to someone without the password).
   * The right password is charged to the account's LOGIN_MAX_PER_USER: past it, RATE_LIMITED and no
   * session (a wrong password never is, so nobody without it can lock the owner out). A name with
   * an `@` (no username has one) is a verified e-mail address, throttled under the username it
   * finds, so that the name and the address share one count.
   */
  async login(
    input: { username: string; password: string },
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<AuthPayload> {
    const byEmail = looksLikeEmail(input.username);
    const found = byEmail ? await this.deps.users.findByVerifiedEmail(input.username) : undefined;
    const throttled = byEmail ? (found?.username ?? normalizeEmail(input.username)) : input.username;
    const attempt = await this.deps.throttle.begin(throttled, client.ip ?? "unknown");
    if (!attempt.allowed) return this.refuseThrottled(attempt, throttled, client);
    const user = byEmail ? found : await this.deps.users.findByUsername(input.username);
    const ok = await this.checkPassword(attempt, user?.passwordHash, input.password);
    if (!user || !ok) {
      this.metrics.login("failed");
      // The audit log is for administrators: it may say which of the two it was; the client never learns.
      await this.deps.audit.record({
        type: AuditEventType.LOGIN_FAILED,
        userId: user?.id,
        username: user?.username ?? input.username,
        detail: auditDetail({ reason: user ? "WRONG_PASSWORD" : "UNKNOWN_USER" }),
        client,
      });
      throw new UnauthenticatedError(ErrorReason.BAD_CREDENTIALS, INVALID_CREDENTIALS_MESSAGE);
    }
    // The password was right, so it does not count as a failure; the account still may not sign in.
    await attempt.succeeded();
    // Every login with the right password writes a session and a refresh token (and, for a disabled
    // account, an audit row): only someone who has the password can spend this budget.
    await this.deps.logins.charge(user.id);
    if (user.disabled) return this.refuseDisabled(user, client);
    let started: Awaited<ReturnType<SessionService["start"]>>;
    try {
      started = await this.deps.sessions.start(toPublicUser(user), client, cookie);
    } catch (error) {
      // Disabled while the password was being checked.
      if (error instanceof UnauthenticatedError && error.reason === ErrorReason.ACCOUNT_DISABLED) {
        return this.refuseDisabled(user, client);
      }
      throw error;
    }
    const { payload, sessionId } = started;
    // Whoever knows the password needs no reset: a link mailed before this login no longer works.
    await this.deps.passwordResets.voidLinks(user.id);
    await this.deps.audit.record({
      type: AuditEventType.LOGIN_SUCCEEDED,
      userId: user.id,
      username: user.username,
      sessionId,
      client,
    });
    this.metrics.login("succeeded");
    return payload;
  }

  /**
   * The login's password check. Refused because the queue of checks is full (SERVICE_UNAVAILABLE):
   * no password was checked, so the throttle gets its attempt back and nothing is audited.
   */
  private async checkPassword(attempt: AllowedAttempt, encoded: string | undefined, password: string) {
    try {
      return await this.deps.passwords.verify(encoded, password);
    } catch (error) {
      if (error instanceof ServiceUnavailableError) await attempt.notChecked();
      throw error;
    }
  }

  /** A login the throttle refused before any password work: RATE_LIMITED, counted, audited coalesced. */
  private refuseThrottled(
    attempt: Extract<LoginAttempt, { allowed: false }>,
    username: string,
    client: ClientInfo,
  ): never {
    this.metrics.login("throttled");
    this.metrics.rateLimited(
      attempt.limit === "USER_IP" ? "LOGIN_MAX_FAILURES_PER_USER_IP" : "LOGIN_MAX_FAILURES_PER_IP",
    );
    // Anybody can repeat this at any rate (932 rows a second from four connections, when each had
    // its own row): one row per client IP and limit per minute, with a count, and for USER_IP per
    // name tried too (at most LOGIN_MAX_FAILURES_PER_IP / LOGIN_MAX_FAILURES_PER_USER_IP names per
    // IP and window can get there). Per attempt, a debug line only.
    this.deps.audit.recordCoalesced(
      {
        type: AuditEventType.LOGIN_THROTTLED,
        username: attempt.limit === "USER_IP" ? username : undefined,
        client,
      },
      { limit: attempt.limit },
    );
    this.deps.logger.debug(
      { reqId: client.requestId, limit: attempt.limit, retryAfter: attempt.retryAfterSeconds },
      "login throttled",
    );
    throw new RateLimitedError(attempt.retryAfterSeconds);
  }

  /** The right password of a disabled account: ACCOUNT_DISABLED, audited as a failed login. */
  private async refuseDisabled(user: UserRecord, client: ClientInfo): Promise<never> {
    this.metrics.login("disabled");
    await this.deps.audit.record({
      type: AuditEventType.LOGIN_FAILED,
      userId: user.id,
      username: user.username,
      detail: auditDetail({ reason: "ACCOUNT_DISABLED" }),
      client,
    });
    throw new UnauthenticatedError(ErrorReason.ACCOUNT_DISABLED, ACCOUNT_DISABLED_MESSAGE);
  }

  /**
   * Replaces the caller's password after checking the current one, then ends every other session
   * of the user (this one stays). The caller's token must be fresh; the resolver's guard checks it.
   */
  async changePassword(
    principal: SessionPrincipal,
    input: { currentPassword: string; newPassword: string },
    client: ClientInfo,
  ): Promise<true> {
    // Charged to this session (a stolen one cannot use up the owner's), before the password check
    // and whatever its outcome: the check is the expensive part.
    const charged = perSession(principal.sessionId);
    await this.deps.writes.charge(charged);
    const user = await this.deps.users.findById(principal.userId);
    if (!user) throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this token no longer exists.");
    const newHash = await checkAndHash(this.deps.passwords, user.passwordHash, input).catch(async (error: unknown) => {
      // Turned away before the check (the password queue was full): the attempt is given back.
      if (error instanceof ServiceUnavailableError) await this.deps.writes.refund(charged);
      throw error;
    });
    await this.deps.users.setPasswordHash(user.id, newHash, new Date(this.deps.now()));
    const ended = await this.deps.sessions.endAllOf(user.id, "password_changed", principal.sessionId);
    await this.deps.passwordResets.voidLinks(user.id);
    await this.deps.audit.record({
      type: AuditEventType.PASSWORD_CHANGED,
      userId: user.id,
      username: user.username,
      sessionId: principal.sessionId,
      detail: auditDetail({ ended: ended.length }),
      client,
    });
    return true;
  }
}
