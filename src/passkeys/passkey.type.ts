import "reflect-metadata";

import { ArgsType, Field, ID, ObjectType } from "type-graphql";

import { FIRST_MAX, OFFSET_MAX, pageArgs } from "../graphql/pagination.js";
import { Bounded } from "../graphql/query-cost.js";
import { PASSKEY_NAME_MAX, PASSKEYS_MAX_PER_USER } from "./webauthn.js";

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

/** `passkeys`: like every list, a page at a time; the default page holds every passkey an account may have. */
@ArgsType()
export class PasskeysArgs extends pageArgs({
  defaultFirst: PASSKEYS_MAX_PER_USER,
  nullable: true,
  describe: {
    first: `How many passkeys, 1 to ${FIRST_MAX} (null means ${PASSKEYS_MAX_PER_USER}, an account's most).`,
    offset: `How many of the oldest passkeys to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
    after:
      "The id of the last passkey of the previous page: this page is your passkeys after it, oldest first. " +
      "BAD_USER_INPUT when it is not one of your passkeys.",
  },
}) {}
