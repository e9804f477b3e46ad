import "reflect-metadata";

import { Field, ID, ObjectType } from "type-graphql";

import { Bounded } from "../graphql/query-cost.js";
import { BODY_MAX, TITLE_MAX } from "./post.input.js";

@ObjectType("Post", { description: "A blog post." })
export class Post {
  @Field(() => ID)
  id!: string;

  @Field()
  @Bounded(TITLE_MAX)
  title!: string;

  @Field()
  @Bounded(BODY_MAX)
  body!: string;

  // Not a GraphQL field: `author` is resolved from it by PostResolver.
  authorId!: string;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}
