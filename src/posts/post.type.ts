import "reflect-metadata";

import { Field, ID, ObjectType } from "type-graphql";

@ObjectType("Post", { description: "A blog post." })
export class Post {
  @Field(() => ID)
  id!: string;

  @Field()
  title!: string;

  @Field()
  body!: string;

  // Not a GraphQL field: `author` is resolved from it by PostResolver.
  authorId!: string;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}
