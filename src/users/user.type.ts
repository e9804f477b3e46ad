import "reflect-metadata";

import { Field, ID, ObjectType } from "type-graphql";

import { Role } from "../access/roles.js";
import { Bounded } from "../graphql/query-cost.js";
import { USERNAME_MAX_LENGTH } from "./account-rules.js";

@ObjectType("User", { description: "A registered account." })
export class User {
  @Field(() => ID)
  id!: string;

  @Field({ description: "As registered; unique without regard to case." })
  @Bounded(USERNAME_MAX_LENGTH)
  username!: string;

  @Field(() => [Role])
  roles!: Role[];

  @Field()
  createdAt!: Date;

  /** Exposed by UserResolver, to the user and to ADMINs only. */
  disabled!: boolean;

  /** The account's address (verified or not); exposed by UserResolver to the user and ADMINs, null to others. */
  email!: string | null;

  /** Whether `email` is verified; exposed by UserResolver to the user and ADMINs, false to others. */
  emailVerified!: boolean;

  /**
   * Set on the user of an AuthPayload: the account the response itself just signed in, which may
   * read its own fields although the request carried no token.
   */
  signedInByThisResponse?: true;

  // Not a GraphQL field. (`posts` is resolved by UserPostsResolver.)
  updatedAt!: Date;
}
