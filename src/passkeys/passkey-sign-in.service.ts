import { createHmac, randomBytes } from "node:crypto";

import type { AuthenticationResponseJSON } from "@simplewebauthn/server";
import { generateAuthenticationOptions, verifyAuthenticationResponse } from "@simplewebauthn/server";
import type { Logger } from "pino";

import type { ClientInfo, RefreshCookie, SessionPrincipal } from "../access/principal.js";
import { auditDetail, AuditEventType, type AuditService } from "../audit/index.js";
import type { DatabaseHandle } from "../db/database.js";
import { BadUserInputError, ErrorReason, UnauthenticatedError } from "../errors.js";
import type { MetricsRecorder } from "../metrics.js";
import type { FloodLimit } from "../rate-limits/index.js";
import type { AuthPayload, SessionService } from "../sessions/index.js";
import { toPublicUser, type UserStore } from "../users/index.js";
import { type ChallengeFilter, ChallengeStore } from "./challenge.store.js";
import type { RelyingParty } from "./passkey.service.js";
import { userHandleOf } from "./passkey.service.js";
import { type PasskeyRecord, PasskeyStore } from "./passkey.store.js";
import { CHALLENGE_TTL_MS, failureOf, hashChallenge, type ProofFailure, readResponse } from "./webauthn.js";

/** The longest `username` startPasskeySignIn reads (an e-mail address's most); longer is BAD_USER_INPUT. */
export const SIGN_IN_USERNAME_MAX = 254;

export interface PasskeySignInServiceDeps {
  database: DatabaseHandle;
  users: UserStore;
  sessions: SessionService;
  audit: AuditService;
  metrics: MetricsRecorder;
  /** PASSKEY_CHALLENGES_MAX_PER_IP: challenges issued per client IP per hour. */
  challengesPerIp: FloodLimit;
  relyingParty: RelyingParty;
  now: () => number;
  logger: Logger;
}

/** A refused proof: one answer to the client whatever the cause (the cause goes to the audit log). */
class ProofRefused extends Error {
  constructor(
    readonly reason: ProofFailure,
    readonly userId?: string,
  ) {
    super(reason);
  }
}

/**
 * Passkey sign-in (finishPasskeySignIn: a passkey with user verification is AAL2 on its own, amr
 * passkey) and a passkey as the second factor of a password session (verifyMfaWithPasskey: user
 * verification preferred, the same session raised to AAL2). Both answer a challenge of
 * startPasskeySignIn, spent by one conditional write before anything is verified; every refusal is
 * UNAUTHENTICATED with reason BAD_CREDENTIALS, and its cause is audited as MFA_FAILED.
 */
export class PasskeySignInService {
  private readonly passkeys: PasskeyStore;
  private readonly challenges: ChallengeStore;
  /** Keys the decoy credential of an unknown username, so that asking twice gives the same answer. */
  private readonly decoyKey = randomBytes(32);

  constructor(private readonly deps: PasskeySignInServiceDeps) {
    this.passkeys = new PasskeyStore(deps.database.db);
    this.challenges = new ChallengeStore(deps.database.db);
  }

  /**
   * PublicKeyCredentialRequestOptionsJSON, its challenge stored (as a hash) for five minutes, for
   * finishPasskeySignIn or verifyMfaWithPasskey: with `username`, that user's passkeys allowed (an
   * unknown username, or one without passkeys, gets a decoy credential that looks the same, the
   * same one each time), otherwise none (discoverable: the authenticator offers its passkeys for
   * this site); user verification required. Public, and it never reads the caller: a session that
   * owes its second factor calls it without its token (the MFA gate refuses it with one).
   * BAD_USER_INPUT for a `username` over 254 characters; RATE_LIMITED past PASSKEY_CHALLENGES_MAX_PER_IP.
   */
  async start(username: string | null | undefined, client: ClientInfo): Promise<unknown> {
    if (username != null && [...username].length > SIGN_IN_USERNAME_MAX) {
      throw new BadUserInputError([
        { field: "username", rule: "maxLength", message: `must be at most ${SIGN_IN_USERNAME_MAX} characters` },
      ]);
    }
    return this.deps.challengesPerIp.spend(client.ip ?? "unknown", async () => {
      // An empty name is no name: a discoverable sign-in.
      const named = username ? await this.deps.users.findByUsername(username) : undefined;
      // The same queries whether or not the name is known, so the answer takes the same time.
      const passkeys = username ? await this.passkeys.allOf(named?.id ?? "") : [];
      const decoy = Boolean(username) && passkeys.length === 0;
      const options = await generateAuthenticationOptions({
        rpID: this.deps.relyingParty.rpId,
        allowCredentials: decoy
          ? [this.decoy(username!)]
          : passkeys.map((p) => ({ id: p.credentialId, transports: p.transports as never })),
        userVerification: "required",
        timeout: CHALLENGE_TTL_MS,
      });
      await this.storeChallenge(options.challenge, passkeys.length > 0 ? named!.id : null, decoy);
      return options;
    });
  }

  /** A credential that looks like a real one (32 bytes, a platform authenticator's), the same each time for a name. */
  private decoy(username: string) {
    const id = createHmac("sha256", this.decoyKey).update(username.toLowerCase()).digest("base64url");
    return { id, transports: ["internal" as const, "hybrid" as const] };
  }

  /**
   * Stores a challenge's hash. A `decoy` (the options of a name without passkeys) is written the
   * same way but under a hash no answer can match, so that it signs in nobody: otherwise answering
   * it with one's own passkey would tell an unknown name (accepted) from a known one (refused).
   */
  private async storeChallenge(challenge: string, userId: string | null, decoy: boolean): Promise<void> {
    const now = this.deps.now();
    await this.challenges.insert({
      hash: hashChallenge(decoy ? `decoy:${challenge}` : challenge),
      purpose: "authentication",
      userId,
      sessionId: null,
      now: new Date(now),
      expiresAt: new Date(now + CHALLENGE_TTL_MS),
    });
  }

  /**
   * Signs in with a passkey: a new AAL2 session (amr passkey) for its owner, its tokens in the
   * payload or, with `cookie`, the refresh token in it. The challenge must be a sign-in's (bound to
   * the user when started with a username), the origin one of WEBAUTHN_ORIGINS, the RP ID
   * WEBAUTHN_RP_ID, the user verified, and the signature counter must move forwards.
   * UNAUTHENTICATED: BAD_CREDENTIALS for any refusal, ACCOUNT_DISABLED for a disabled account.
   */
  async signIn(value: unknown, client: ClientInfo, cookie?: RefreshCookie): Promise<AuthPayload> {
    const read = this.read(value);
    try {
      const passkey = await this.prove(read.response, read.challenge, { kind: "sign-in" }, true);
      const user = await this.deps.users.findById(passkey.userId);
      if (!user) throw new ProofRefused("UNKNOWN_CREDENTIAL", passkey.userId);
      const { payload, sessionId } = await this.deps.sessions.start(toPublicUser(user), client, cookie, ["passkey"]);
      await this.verified(AuditEventType.LOGIN_SUCCEEDED, user.id, sessionId, passkey, client);
      return payload;
    } catch (error) {
      throw await this.refusal(error, client);
    }
  }

  /**
   * The caller's session proves a passkey of its user as its second factor and becomes AAL2: its
   * earlier refresh tokens are spent and new tokens returned (a refresh cookie the request carries
   * gets the new refresh token). The challenge must come from startPasskeySignIn, for this user or
   * for nobody in particular (discoverable); user verification is not required (the password was
   * the first factor). UNAUTHENTICATED, BAD_CREDENTIALS for any refusal.
   */
  async verifySecondFactor(
    principal: SessionPrincipal,
    value: unknown,
    client: ClientInfo,
    cookie?: RefreshCookie,
  ): Promise<AuthPayload> {
    const read = this.read(value);
    const filter: ChallengeFilter = { kind: "second-factor", userId: principal.userId };
    try {
      const passkey = await this.prove(read.response, read.challenge, filter, false);
      if (passkey.userId !== principal.userId) throw new ProofRefused("WRONG_USER", principal.userId);
      const payload = await this.deps.sessions.raise(principal, "passkey", client, cookie);
      await this.verified(AuditEventType.MFA_VERIFIED, principal.userId, principal.sessionId, passkey, client);
      return payload;
    } catch (error) {
      throw await this.refusal(error, client, principal.userId);
    }
  }

  private read(value: unknown) {
    return readResponse(value, "authentication", () => this.deps.metrics.limitReached("WEBAUTHN_RESPONSE_MAX_BYTES"));
  }

  /**
   * Spends the challenge, finds the passkey and verifies the assertion with @simplewebauthn/server,
   * then moves the stored counter forwards; the passkey that proved it, or {@link ProofRefused}.
   */
  private async prove(
    response: AuthenticationResponseJSON,
    challenge: string,
    filter: ChallengeFilter,
    requireUserVerification: boolean,
  ): Promise<PasskeyRecord> {
    const now = new Date(this.deps.now());
    const spent = await this.challenges.spend(hashChallenge(challenge), filter, now);
    const passkey = await this.passkeys.findByCredentialId(response.id);
    // A replayed or expired answer is audited against the passkey's owner when it names a known one.
    if (!spent) throw new ProofRefused("CHALLENGE_INVALID", passkey?.userId);
    if (!passkey) throw new ProofRefused("UNKNOWN_CREDENTIAL", spent.userId ?? undefined);
    const handle = response.response.userHandle;
    const ownHandle = Buffer.from(userHandleOf(passkey.userId)).toString("base64url");
    if ((spent.userId !== null && spent.userId !== passkey.userId) || (handle !== undefined && handle !== ownHandle))
      throw new ProofRefused("WRONG_USER", passkey.userId);
    // The library is given counter 0 so that it checks the signature first; the counter is checked
    // after it (a forged response must not be able to claim a regression), below and in the UPDATE.
    const verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: [...this.deps.relyingParty.origins],
      expectedRPID: this.deps.relyingParty.rpId,
      credential: { id: passkey.credentialId, publicKey: passkey.publicKey, counter: 0 },
      requireUserVerification,
    }).catch((error: unknown) => {
      throw new ProofRefused(failureOf(error), passkey.userId);
    });
    if (!verified.verified) throw new ProofRefused("BAD_SIGNATURE", passkey.userId);
    const used = await this.passkeys.recordUse(passkey.id, {
      counter: verified.authenticationInfo.newCounter,
      backedUp: verified.authenticationInfo.credentialBackedUp,
      at: now,
    });
    if (!used) throw new ProofRefused("COUNTER_REGRESSION", passkey.userId);
    return passkey;
  }

  private async verified(
    type: typeof AuditEventType.LOGIN_SUCCEEDED | typeof AuditEventType.MFA_VERIFIED,
    userId: string,
    sessionId: string,
    passkey: PasskeyRecord,
    client: ClientInfo,
  ): Promise<void> {
    this.deps.metrics.mfa("passkey", "verified");
    this.deps.logger.info({ userId, sessionId, passkeyId: passkey.id }, "passkey verified");
    const detail = auditDetail({ method: "passkey", passkey: passkey.id });
    await this.deps.audit.record({ type, userId, sessionId, detail, client });
  }

  /**
   * A refused proof becomes BAD_CREDENTIALS, counted and audited as MFA_FAILED; other errors pass.
   * A counter regression (made with the passkey's own key: a cloned authenticator) is recorded
   * before the answer; the rest are coalesced, since anybody can send them at any rate.
   */
  private async refusal(error: unknown, client: ClientInfo, caller?: string): Promise<unknown> {
    if (!(error instanceof ProofRefused)) return error;
    const userId = error.userId ?? caller;
    this.deps.metrics.mfa("passkey", "failed");
    this.deps.logger.info({ userId, reason: error.reason }, "passkey refused");
    const pairs = { method: "passkey", reason: error.reason };
    if (error.reason === "COUNTER_REGRESSION") {
      await this.deps.audit.record({ type: AuditEventType.MFA_FAILED, userId, detail: auditDetail(pairs), client });
    } else {
      this.deps.audit.recordCoalesced({ type: AuditEventType.MFA_FAILED, userId, client }, pairs);
    }
    return new UnauthenticatedError(ErrorReason.BAD_CREDENTIALS, "The passkey could not be verified.");
  }
}
