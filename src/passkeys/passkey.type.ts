import "reflect-metadata";

import { Field, ID, ObjectType } from "type-graphql";

import { Bounded } from "../graphql/query-cost.js";
import { PASSKEY_NAME_MAX } from "./webauthn.js";

export { GraphQLJSON } from "graphql-scalars";

@ObjectType("Passkey", {
  description:
    "A passkey (WebAuthn credential) of the caller's: it signs in without a password (assurance AAL2) and is a second " +
    "factor after one. Its keys never leave the authenticator; only the public key and signature counter are stored.",
})
export class Passkey {
  @Field(() => ID)
  id!: string;

  @Field({ description: `What the owner called it (1 to ${PASSKEY_NAME_MAX} characters), to tell passkeys apart.` })
  @Bounded(PASSKEY_NAME_MAX)
  name!: string;

  @Field()
  createdAt!: Date;

  @Field(() => Date, {
    nullable: true,
    description: "When it last signed in or proved a second factor; null when never.",
  })
  lastUsedAt!: Date | null;
}
