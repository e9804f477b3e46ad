import { randomUUID } from "node:crypto";

import { generateRegistrationOptions, verifyRegistrationResponse } from "@simplewebauthn/server";
import type { Logger } from "pino";

import type { ClientInfo, SessionPrincipal } from "../access/principal.js";
import { hasSecondFactor } from "../access/second-factors.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { DatabaseHandle } from "../db/database.js";
import { BadUserInputError, ErrorReason, ForbiddenError, NotFoundError, UnauthenticatedError } from "../errors.js";
import { pageOf, unknownAfter } from "../graphql/pagination.js";
import type { MetricsRecorder } from "../metrics.js";
import { type FloodLimit, perSession } from "../rate-limits/index.js";
import type { SessionService } from "../sessions/index.js";
import type { UserRecord, UserStore } from "../users/index.js";
import { ChallengeStore } from "./challenge.store.js";
import { type PasskeyRecord, PasskeyStore } from "./passkey.store.js";
import type { Passkey } from "./passkey.type.js";
import {
  CHALLENGE_TTL_MS,
  hashChallenge,
  PASSKEY_NAME_MAX,
  PASSKEYS_MAX_PER_USER,
  readResponse,
  RP_NAME,
} from "./webauthn.js";

/** Who the passkeys are for: WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS. */
export interface RelyingParty {
  readonly rpId: string;
  readonly origins: readonly string[];
}

export interface PasskeyServiceDeps {
  database: DatabaseHandle;
  users: UserStore;
  sessions: SessionService;
  audit: AuditService;
  metrics: MetricsRecorder;
  /** WRITES_MAX_PER_USER: a registration's start is charged to the account, a removal to the session. */
  writes: FloodLimit;
  relyingParty: RelyingParty;
  now: () => number;
  logger: Logger;
}

/** The user handle a passkey is registered under: the user's id, as bytes (nothing personal). */
export function userHandleOf(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId, "utf8"));
}

/** What a client sees of a stored passkey. */
export function toPasskey(record: PasskeyRecord): Passkey {
  return { id: record.id, name: record.name, createdAt: record.createdAt, lastUsedAt: record.lastUsedAt };
}

function tooManyPasskeys(): BadUserInputError {
  return new BadUserInputError([
    {
      field: "passkeys",
      rule: "maxPasskeys",
      message: `an account may hold at most ${PASSKEYS_MAX_PER_USER} passkeys: remove one first`,
    },
  ]);
}

/** BAD_USER_INPUT on `response`: a registration that could not be verified (nothing is stored). */
function unverifiedRegistration(message = "could not be verified: start the registration again"): BadUserInputError {
  return new BadUserInputError([{ field: "response", rule: "verified", message }]);
}

/** The name rule: 1 to 64 characters, not blank, no NUL. */
function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || [...name].length > PASSKEY_NAME_MAX || name.includes("\u0000")) {
    throw new BadUserInputError([
      { field: "name", rule: "length", message: `must be 1 to ${PASSKEY_NAME_MAX} characters, not blank` },
    ]);
  }
  return name;
}

/**
 * A user's passkeys: registering one (a challenge bound to the session, verified by
 * @simplewebauthn/server), listing and removing them. The first second factor of a user raises the
 * registering session to AAL2 and ends the user's other sessions (they were proven by a password
 * alone); removing a passkey ends the other sessions too. Sign-in is passkey-sign-in.service.ts's.
 */
export class PasskeyService {
  private readonly passkeys: PasskeyStore;
  private readonly challenges: ChallengeStore;

  constructor(private readonly deps: PasskeyServiceDeps) {
    this.passkeys = new PasskeyStore(deps.database.db);
    this.challenges = new ChallengeStore(deps.database.db);
  }

  /** The caller's passkeys, oldest first. */
  async list(
    principal: SessionPrincipal,
    args: { first?: number | null; offset?: number | null; after?: string | null } = {},
  ): Promise<Passkey[]> {
    const page = await this.passkeys.listOf(principal.userId, pageOf(args, PASSKEYS_MAX_PER_USER));
    if (!page) throw unknownAfter("passkey");
    return page.map(toPasskey);
  }

  /**
   * PublicKeyCredentialCreationOptionsJSON for a new passkey of the caller, its challenge stored
   * (as a hash) for this session for five minutes. The caller's passkeys are excluded (an
   * authenticator that holds one says so instead of making a second); a discoverable credential is
   * required (it signs in without a username), user verification preferred. BAD_USER_INPUT on
   * `passkeys` when the account holds PASSKEYS_MAX_PER_USER already.
   */
  async startRegistration(principal: SessionPrincipal): Promise<unknown> {
    return this.deps.writes.spend(principal.userId, async () => {
      const user = await this.activeUser(principal.userId);
      const existing = await this.passkeys.allOf(user.id);
      if (existing.length >= PASSKEYS_MAX_PER_USER) {
        this.deps.metrics.limitReached("PASSKEYS_MAX_PER_USER");
        throw tooManyPasskeys();
      }
      const options = await generateRegistrationOptions({
        rpName: RP_NAME,
        rpID: this.deps.relyingParty.rpId,
        userName: user.username,
        userID: userHandleOf(user.id),
        userDisplayName: user.username,
        timeout: CHALLENGE_TTL_MS,
        attestationType: "none",
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports as never })),
        authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
      });
      await this.storeChallenge(options.challenge, principal);
      return options;
    });
  }

  private async storeChallenge(challenge: string, principal: SessionPrincipal): Promise<void> {
    const now = this.deps.now();
    await this.challenges.insert({
      hash: hashChallenge(challenge),
      purpose: "registration",
      userId: principal.userId,
      sessionId: principal.sessionId,
      now: new Date(now),
      expiresAt: new Date(now + CHALLENGE_TTL_MS),
    });
  }

  /**
   * Verifies the browser's answer to {@link startRegistration} and stores the passkey as `name`.
   * BAD_USER_INPUT on `name` (1 to 64 characters), on `response` for a response over
   * WEBAUTHN_RESPONSE_MAX_BYTES, of the wrong shape, or that does not verify (a challenge of
   * another session, spent or expired; a wrong origin or RP ID), on `passkeys` past the cap. When it
   * is the user's first second factor, this session becomes AAL2 in place (its refresh token stays;
   * the next refresh carries AAL2) and every other session of the user ends.
   */
  async finishRegistration(
    principal: SessionPrincipal,
    value: unknown,
    name: string,
    client: ClientInfo,
  ): Promise<Passkey> {
    checkName(name);
    const read = readResponse(value, "registration", () =>
      this.deps.metrics.limitReached("WEBAUTHN_RESPONSE_MAX_BYTES"),
    );
    const now = new Date(this.deps.now());
    const spent = await this.challenges.spend(
      hashChallenge(read.challenge),
      { kind: "registration", userId: principal.userId, sessionId: principal.sessionId },
      now,
    );
    if (!spent) throw unverifiedRegistration();
    const info = await verifyRegistrationResponse({
      response: read.response,
      expectedChallenge: read.challenge,
      expectedOrigin: [...this.deps.relyingParty.origins],
      expectedRPID: this.deps.relyingParty.rpId,
      requireUserVerification: false,
    }).then(
      (result) => (result.verified ? result.registrationInfo : undefined),
      () => undefined,
    );
    if (!info) throw unverifiedRegistration();
    const { stored, first } = await this.store(principal.userId, {
      id: randomUUID(),
      userId: principal.userId,
      credentialId: info.credential.id,
      publicKey: info.credential.publicKey,
      counter: info.credential.counter,
      transports: (read.response.response.transports ?? []).filter((t) => typeof t === "string").slice(0, 8),
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      name,
      createdAt: now,
    });
    await this.added(principal, stored, first, client);
    return toPasskey(stored);
  }

  /** Writes the passkey with the user's row held; `first` when the user had no second factor before it. */
  private async store(userId: string, passkey: Parameters<PasskeyStore["insert"]>[1]) {
    const result = await this.deps.database.db.transaction().execute(async (trx) => {
      if (!(await this.deps.users.isActiveLocked(trx, userId))) return "no-user" as const;
      const hadFactor = await hasSecondFactor(trx, userId);
      const inserted = await new PasskeyStore(trx).insert(trx, passkey, PASSKEYS_MAX_PER_USER);
      return typeof inserted === "string" ? inserted : { stored: inserted.stored, first: !hadFactor };
    });
    if (result === "no-user") throw sessionEnded();
    if (result === "too-many") {
      this.deps.metrics.limitReached("PASSKEYS_MAX_PER_USER");
      throw tooManyPasskeys();
    }
    if (result === "taken") throw unverifiedRegistration("is a passkey that is registered already");
    return result;
  }

  /** Audits a new passkey; for a first factor, raises this session and ends the others. */
  private async added(
    principal: SessionPrincipal,
    passkey: PasskeyRecord,
    first: boolean,
    client: ClientInfo,
  ): Promise<void> {
    const { userId, sessionId } = principal;
    this.deps.logger.info({ userId, passkeyId: passkey.id, first }, "passkey added");
    this.deps.metrics.mfa("passkey", "enrolled");
    const detail = auditDetail({ passkey: passkey.id, device: passkey.deviceType, backedUp: String(passkey.backedUp) });
    await this.deps.audit.record({ type: AuditEventType.PASSKEY_ADDED, userId, sessionId, detail, client });
    if (!first) return;
    // Raised in place: this mutation returns a Passkey, not tokens, so the session keeps its refresh
    // token and its next refresh carries AAL2.
    await this.deps.sessions.raiseAtEnrollment(principal, "passkey");
    await this.deps.sessions.endAllOf(userId, "mfa_enrolled", sessionId);
    await this.deps.audit.record({
      type: AuditEventType.MFA_ENROLLED,
      userId,
      sessionId,
      detail: auditDetail({ method: "passkey" }),
      client,
    });
  }

  /**
   * Removes one of the caller's passkeys and ends the user's other sessions. NOT_FOUND for an
   * unknown id; FORBIDDEN (OWNERSHIP) for someone else's. The step-up (AAL2) is the resolver's
   * `@Requires({ aal: 2 })`.
   */
  async remove(principal: SessionPrincipal, id: string, client: ClientInfo): Promise<boolean> {
    const removed = await this.deps.writes.spend(perSession(principal.sessionId), async () => {
      const passkey = await this.passkeys.findById(id);
      if (!passkey) throw new NotFoundError("Passkey", id);
      if (passkey.userId !== principal.userId)
        throw new ForbiddenError(ErrorReason.OWNERSHIP, "You can only remove your own passkeys.");
      return this.passkeys.delete(id, principal.userId);
    });
    if (!removed) throw new NotFoundError("Passkey", id);
    const { userId, sessionId } = principal;
    await this.deps.sessions.endAllOf(userId, "mfa_removed", sessionId);
    this.deps.logger.info({ userId, passkeyId: id }, "passkey removed");
    this.deps.metrics.mfa("passkey", "removed");
    await this.deps.audit.record({
      type: AuditEventType.PASSKEY_REMOVED,
      userId,
      sessionId,
      detail: auditDetail({ passkey: id }),
      client,
    });
    return true;
  }

  private async activeUser(userId: string): Promise<UserRecord> {
    const user = await this.deps.users.findById(userId);
    if (!user || user.disabled) throw sessionEnded();
    return user;
  }
}

function sessionEnded(): UnauthenticatedError {
  return new UnauthenticatedError(ErrorReason.SESSION_ENDED, "The account of this session is gone or disabled.");
}
