import "reflect-metadata";

import { Field, Int, ObjectType, registerEnumType } from "type-graphql";

import { MAX_TOKEN_LENGTH } from "../access/tokens.js";
import { Bounded } from "../graphql/query-cost.js";
import { User } from "../users/index.js";
import { REFRESH_TOKEN_LENGTH } from "./refresh-chain.js";

/** How strongly a session was proven (NIST SP 800-63B's authenticator assurance levels). */
export enum AuthenticatorAssurance {
  AAL1 = "AAL1",
  AAL2 = "AAL2",
}

registerEnumType(AuthenticatorAssurance, {
  name: "AuthenticatorAssurance",
  description:
    "AAL1: a password (or a reset link) alone. AAL2: a second factor was proven (TOTP, a recovery code, or a passkey).",
});

@ObjectType("AuthPayload", {
  description:
    "What every sign-in returns: `register`, `login`, `refreshToken`, `resetPassword`, `verifyMfa`, passkey sign-in.",
})
export class AuthPayload {
  @Field({ description: "Send as `Authorization: Bearer <accessToken>`." })
  @Bounded(MAX_TOKEN_LENGTH)
  accessToken!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "Opaque; exchange it with `refreshToken` for new tokens. Single use: each exchange returns the next one, and " +
      "presenting a spent one ends the session, except the one just exchanged, which within " +
      "REFRESH_TOKEN_REUSE_INTERVAL returns the same current token again. Null in cookie mode (`useCookie`), " +
      "where it travels as an HttpOnly cookie instead.",
  })
  @Bounded(REFRESH_TOKEN_LENGTH)
  refreshToken!: string | null;

  @Field({ description: 'Always "Bearer".' })
  @Bounded("Bearer".length)
  tokenType!: string;

  @Field(() => Int, { description: "Seconds until the access token expires." })
  expiresIn!: number;

  @Field(() => AuthenticatorAssurance, {
    description: "The session's assurance. A refresh keeps it; only verifyMfa or verifyMfaWithPasskey raise it.",
  })
  assurance!: AuthenticatorAssurance;

  @Field({
    description:
      "True while the session owes its user's second factor: until verifyMfa or verifyMfaWithPasskey, every field but " +
      "me, verifyMfa, verifyMfaWithPasskey, logout and refreshToken answers FORBIDDEN, reason MFA_REQUIRED.",
  })
  mfaRequired!: boolean;

  @Field(() => User)
  user!: User;
}
