import { Length, Max, Min } from "class-validator";
import { ArgsType, Field, InputType, Int } from "type-graphql";

import { HasNoNul, IsNotBlank } from "../validation.js";

export const TITLE_MAX = 200;
export const BODY_MAX = 20_000;

@InputType()
export class CreatePostInput {
  @Field({ description: `1 to ${TITLE_MAX} characters, not blank.` })
  @Length(1, TITLE_MAX, { message: `must be 1 to ${TITLE_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  title!: string;

  @Field({ description: `1 to ${BODY_MAX} characters, not blank.` })
  @Length(1, BODY_MAX, { message: `must be 1 to ${BODY_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  body!: string;
}

@InputType({ description: "The fields to change; at least one." })
export class UpdatePostInput {
  @Field({ nullable: true, description: `1 to ${TITLE_MAX} characters, not blank.` })
  @Length(1, TITLE_MAX, { message: `must be 1 to ${TITLE_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  title?: string;

  @Field({ nullable: true, description: `1 to ${BODY_MAX} characters, not blank.` })
  @Length(1, BODY_MAX, { message: `must be 1 to ${BODY_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  body?: string;
}

@ArgsType()
export class PostsArgs {
  @Field(() => Int, { defaultValue: 50, description: "How many posts, 1 to 100." })
  @Min(1, { message: "must be at least 1" })
  @Max(100, { message: "must be at most 100" })
  first!: number;

  @Field(() => Int, { defaultValue: 0, description: "How many of the newest posts to skip." })
  @Min(0, { message: "must not be negative" })
  offset!: number;
}
