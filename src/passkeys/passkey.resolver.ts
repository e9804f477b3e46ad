import "reflect-metadata";

import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";

import { CredentialMutation } from "../access/credential-operations.js";
import { CurrentSession } from "../access/current-principal.js";
import { clientOf, type Context, cookieMode, sessionCookie, type SessionPrincipal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { Bounded } from "../graphql/query-cost.js";
import { AuthPayload } from "../sessions/index.js";
import type { PasskeyService } from "./passkey.service.js";
import { GraphQLJSON, Passkey, PasskeysArgs } from "./passkey.type.js";
import type { PasskeySignInService } from "./passkey-sign-in.service.js";
import { OPTIONS_MAX_LENGTH, PASSKEYS_MAX_PER_USER, WEBAUTHN_RESPONSE_MAX_BYTES } from "./webauthn.js";

const RESPONSE_RULES =
  `\`response\` is the JSON @simplewebauthn/browser returns, at most ${WEBAUTHN_RESPONSE_MAX_BYTES} bytes ` +
  "(BAD_USER_INPUT on `response` otherwise, or when it is not shaped like one).";

@Resolver(() => Passkey)
export class PasskeyResolver {
  constructor(
    private readonly service: PasskeyService,
    private readonly signIns: PasskeySignInService,
  ) {}

  @Query(() => [Passkey], {
    description: `Your passkeys, oldest first (at most ${PASSKEYS_MAX_PER_USER}), a page at a time.`,
  })
  @Requires({ session: true })
  passkeys(@Args() page: PasskeysArgs, @CurrentSession() session: SessionPrincipal): Promise<Passkey[]> {
    return this.service.list(session, page);
  }

  @Mutation(() => GraphQLJSON, {
    description:
      "Begin adding a passkey: PublicKeyCredentialCreationOptionsJSON for @simplewebauthn/browser's startRegistration, " +
      "answerable by this session within 5 minutes. BAD_USER_INPUT on `passkeys` when you hold " +
      `${PASSKEYS_MAX_PER_USER} already.`,
  })
  @Bounded(OPTIONS_MAX_LENGTH)
  @Requires({ session: true, fresh: true })
  startPasskeyRegistration(@CurrentSession() session: SessionPrincipal): Promise<unknown> {
    return this.service.startRegistration(session);
  }

  @Mutation(() => Passkey, {
    description:
      "Finish adding a passkey with the browser's answer to startPasskeyRegistration, named `name` (1 to 64 " +
      `characters). ${RESPONSE_RULES} An answer that does not verify (another session's or a spent or expired ` +
      "challenge, a wrong origin or RP ID) is BAD_USER_INPUT on `response`. Your first second factor makes this " +
      "session AAL2 and ends your other sessions. Audited as PASSKEY_ADDED (and MFA_ENROLLED for the first factor).",
  })
  @Requires({ session: true })
  finishPasskeyRegistration(
    @Arg("response", () => GraphQLJSON) response: unknown,
    @Arg("name") name: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<Passkey> {
    return this.service.finishRegistration(session, response, name, clientOf(ctx));
  }

  @Mutation(() => GraphQLJSON, {
    description:
      "Begin a passkey sign-in: PublicKeyCredentialRequestOptionsJSON for @simplewebauthn/browser's " +
      "startAuthentication, answerable within 5 minutes. With `username`, that account's passkeys are offered; " +
      "without, the authenticator offers its own (discoverable). The answer goes to finishPasskeySignIn, or to " +
      "verifyMfaWithPasskey for a session that owes its second factor (call this without that session's token: " +
      "such a session may call only the fields it needs to prove it). RATE_LIMITED past PASSKEY_CHALLENGES_MAX_PER_IP " +
      "per hour.",
  })
  @Bounded(OPTIONS_MAX_LENGTH)
  startPasskeySignIn(
    @Arg("username", () => String, { nullable: true }) username: string | null | undefined,
    @Ctx() ctx: Context,
  ): Promise<unknown> {
    return this.signIns.start(username, clientOf(ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Sign in with a passkey: the browser's answer to startPasskeySignIn. The authenticator must have verified " +
      `the user (PIN, biometrics); the session is AAL2. ${RESPONSE_RULES} Any refusal is UNAUTHENTICATED, reason ` +
      "BAD_CREDENTIALS (the cause is audited as MFA_FAILED); a disabled account is reason ACCOUNT_DISABLED.",
  })
  @CredentialMutation({ ignoresAuthorization: true })
  finishPasskeySignIn(
    @Arg("response", () => GraphQLJSON) response: unknown,
    @Arg("useCookie", () => Boolean, { nullable: true, defaultValue: false }) useCookie: boolean | null,
    @Ctx() ctx: Context,
  ): Promise<AuthPayload> {
    return this.signIns.signIn(response, clientOf(ctx), cookieMode(useCookie === true, ctx));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Prove a passkey as the second factor of this session: the browser's answer to startPasskeySignIn (for your " +
      "username, or without one). User verification is not required here. The session becomes AAL2; its earlier refresh tokens stop " +
      `working and new tokens are returned. ${RESPONSE_RULES} Any refusal is UNAUTHENTICATED, reason ` +
      "BAD_CREDENTIALS. Audited as MFA_VERIFIED.",
  })
  @CredentialMutation()
  @Requires({ session: true })
  verifyMfaWithPasskey(
    @Arg("response", () => GraphQLJSON) response: unknown,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<AuthPayload> {
    return this.signIns.verifySecondFactor(session, response, clientOf(ctx), sessionCookie(ctx));
  }

  @Mutation(() => Boolean, {
    description:
      "Remove one of your passkeys; your other sessions end. NOT_FOUND for an unknown id, FORBIDDEN (OWNERSHIP) " +
      "for someone else's. Audited as PASSKEY_REMOVED.",
  })
  @Requires({ session: true, fresh: true, aal: 2 })
  removePasskey(
    @Arg("id", () => ID) id: string,
    @CurrentSession() session: SessionPrincipal,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.service.remove(session, id, clientOf(ctx));
  }
}
