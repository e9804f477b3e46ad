import type { Kysely } from "kysely";

import { hashOpaqueSecret, mintOpaqueToken, OPAQUE_SECRET_PATTERN } from "../access/opaque-token.js";
import type { ClientInfo, SessionPrincipal } from "../access/principal.js";
import { auditDetail, AuditEventType } from "../audit/index.js";
import type { Database } from "../db/schema.js";
import { BadUserInputError, ErrorReason, UnauthenticatedError } from "../errors.js";
import { type MetricsRecorder, NO_METRICS } from "../metrics.js";
import { normalizeEmail, type UserRecord } from "../users/index.js";
import { emailChangingMail, linkWith, verifyEmailMail } from "./email.templates.js";
import type { EmailFlowDeps } from "./mail-requests.js";

/** The prefix of a verification token. */
export const VERIFICATION_TOKEN_PREFIX = "evt_";
const VERIFICATION_TOKEN_SHAPE = new RegExp(`^${VERIFICATION_TOKEN_PREFIX}${OPAQUE_SECRET_PATTERN}$`);

/** The services' shared needs: an address needs nothing more. */
export type EmailAddressDeps = EmailFlowDeps;

/**
 * An account's address: stored unverified at registration, verified by a mailed link, changed
 * (the new one counts only once verified). No answer says whether another account has an address:
 * every valid address is accepted and mailed, and only verifying one that another account verified
 * first fails (users_verified_email_idx decides).
 */
export class EmailAddressService {
  private readonly metrics: MetricsRecorder;

  constructor(private readonly deps: EmailAddressDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
  }

  /**
   * For register with an address, before any work: EMAIL_NOT_CONFIGURED in production without
   * SMTP, RATE_LIMITED past EMAIL_REQUESTS_MAX_PER_IP.
   */
  admitRegistration(client: ClientInfo): Promise<void> {
    return this.deps.requests.admit(client);
  }

  /** Gives back what {@link admitRegistration} charged, for a registration turned away with SERVICE_UNAVAILABLE. */
  readmitRegistration(client: ClientInfo): Promise<void> {
    return this.deps.requests.readmit(client);
  }

  /**
   * Runs `create` (which inserts the account, with `email` unverified, in `trx`) and writes the
   * verification link and its mail in the same transaction. Like every link mail, it is taken from
   * the address's allowance: past it the account is still created, with a suppressed row instead of
   * the mail, so that registrations from many IPs cannot flood one inbox.
   */
  async createWithAddress(email: string, create: (trx: Kysely<Database>) => Promise<UserRecord>): Promise<UserRecord> {
    const allowed = await this.deps.requests.allowance(email);
    return this.deps.db.transaction().execute(async (trx) => {
      const user = await create(trx);
      await this.sendVerification(trx, user, email, allowed);
      return user;
    });
  }

  /**
   * Sends a new link for the caller's address waiting for verification: a changed one, else an
   * unverified one. BAD_USER_INPUT (field `email`) when there is none. Past the address's allowance
   * it answers the same and sends nothing.
   */
  async requestVerification(principal: SessionPrincipal, client: ClientInfo): Promise<true> {
    await this.deps.requests.admit(client);
    const user = await this.userOf(principal);
    const pending = await this.deps.tokens.pendingAddress(user.id, new Date(this.deps.now()));
    const address = pending ?? (user.email !== null && !user.emailVerified ? user.email : undefined);
    if (address === undefined) {
      throw new BadUserInputError([
        { field: "email", rule: "nothingToVerify", message: "has no address waiting for verification" },
      ]);
    }
    const allowed = await this.deps.requests.allowance(address);
    await this.deps.db.transaction().execute((trx) => this.sendVerification(trx, user, address, allowed));
    return true;
  }

  /**
   * Mails a verification link to `newEmail` and a notice to the current verified address; the
   * account's address changes when the link is used. BAD_USER_INPUT (field `newEmail`) when it is
   * the verified address already.
   */
  async change(principal: SessionPrincipal, newEmail: string, client: ClientInfo): Promise<true> {
    await this.deps.requests.admit(client);
    const user = await this.userOf(principal);
    const current = user.emailVerified && user.email !== null ? user.email : undefined;
    if (current !== undefined && normalizeEmail(current) === normalizeEmail(newEmail)) {
      throw new BadUserInputError([
        { field: "newEmail", rule: "different", message: "is the account's address already" },
      ]);
    }
    // The new address's allowance, like every link mail (the notice to the current one is not a link).
    const allowed = await this.deps.requests.allowance(newEmail);
    await this.deps.db.transaction().execute(async (trx) => {
      await this.sendVerification(trx, user, newEmail, allowed);
      if (current !== undefined) await this.deps.mailer.enqueue(trx, emailChangingMail(current, user.username));
    });
    await this.deps.audit.record({
      type: AuditEventType.EMAIL_CHANGED,
      userId: user.id,
      username: user.username,
      sessionId: principal.sessionId,
      client,
    });
    this.metrics.emailStep("email_changed");
    return true;
  }

  /**
   * Verifies the address of a verification token: one conditional write spends it (of concurrent
   * attempts exactly one succeeds), and the address becomes the account's. When it replaces another
   * address, every other session of the user ends (`keep`, the caller's own session, stays).
   * VERIFICATION_TOKEN_INVALID for an unknown, expired or spent token, and for an address another
   * account verified meanwhile (then nothing changes and the token stays unspent).
   */
  async verify(token: string, keep: SessionPrincipal | undefined, client: ClientInfo): Promise<true> {
    if (!VERIFICATION_TOKEN_SHAPE.test(token)) throw this.invalid();
    const hash = hashOpaqueSecret(token);
    const now = new Date(this.deps.now());
    const live = await this.deps.tokens.findLive(hash, "email_verification", now);
    const user = live && (await this.deps.users.findById(live.userId));
    if (!live || !user) throw this.invalid();
    await this.deps.db.transaction().execute(async (trx) => {
      const spent = await this.deps.tokens.spend(trx, hash, "email_verification", now);
      if (!spent) throw this.invalid();
      if ((await this.deps.users.setVerifiedEmail(trx, user.id, spent.email, now)) === "taken") throw this.invalid();
      await this.deps.tokens.voidAll(trx, user.id, "email_verification", now);
    });
    const changed = user.email !== null && normalizeEmail(user.email) !== normalizeEmail(live.email);
    const ended = changed
      ? await this.deps.sessions.endAllOf(
          user.id,
          "email_changed",
          keep?.userId === user.id ? keep.sessionId : undefined,
        )
      : [];
    await this.deps.audit.record({
      type: AuditEventType.EMAIL_VERIFIED,
      userId: user.id,
      username: user.username,
      detail: changed ? auditDetail({ changed: "true", ended: ended.length }) : undefined,
      client,
    });
    this.metrics.emailStep("verified");
    return true;
  }

  /**
   * Voids the user's earlier verification links and writes a new one for `address` with its mail;
   * past the address's allowance (`allowed` false) only a suppressed row, and earlier links stay.
   */
  private async sendVerification(
    trx: Kysely<Database>,
    user: UserRecord,
    address: string,
    allowed: boolean,
  ): Promise<void> {
    const { token, hash } = mintOpaqueToken(VERIFICATION_TOKEN_PREFIX);
    const ttl = this.deps.email.verificationTokenTtlSeconds;
    const mail = verifyEmailMail(address, user.username, linkWith(this.deps.email.verificationUrl, token), ttl);
    this.metrics.emailStep("verification_requested");
    if (!allowed) return this.deps.mailer.suppress(trx, mail);
    const now = new Date(this.deps.now());
    await this.deps.tokens.voidAll(trx, user.id, "email_verification", now);
    await this.deps.tokens.insert(trx, {
      userId: user.id,
      purpose: "email_verification",
      hash,
      email: address,
      now,
      expiresAt: new Date(now.getTime() + ttl * 1000),
    });
    await this.deps.mailer.enqueue(trx, mail);
  }

  private async userOf(principal: SessionPrincipal): Promise<UserRecord> {
    const user = await this.deps.users.findById(principal.userId);
    if (!user) throw new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this token no longer exists.");
    return user;
  }

  private invalid(): UnauthenticatedError {
    this.metrics.emailStep("verification_token_invalid");
    return new UnauthenticatedError(
      ErrorReason.VERIFICATION_TOKEN_INVALID,
      "This verification link is invalid, was used already, or has expired. Ask for a new one.",
    );
  }
}
