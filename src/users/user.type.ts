import "reflect-metadata";

import { Field, ID, ObjectType } from "type-graphql";

import { Role } from "../access/roles.js";

@ObjectType({ description: "A registered account." })
export class User {
  @Field(() => ID)
  id!: string;

  @Field({ description: "As registered; unique without regard to case." })
  username!: string;

  @Field(() => [Role])
  roles!: Role[];

  @Field()
  createdAt!: Date;

  // Not a GraphQL field: `posts` is resolved by UserResolver.
  updatedAt!: Date;
}
