import "reflect-metadata";

import { Length } from "class-validator";
import { ArgsType, Field, InputType } from "type-graphql";

import { FIRST_MAX, OFFSET_MAX, pageArgs } from "../graphql/pagination.js";
import { HasNoControlCharacters, HasNoNul, IsNotBlank } from "../graphql/validation.js";

export const TITLE_MAX = 200;
export const BODY_MAX = 20_000;

@InputType("CreatePostInput")
export class CreatePostInput {
  @Field({ description: `1 to ${TITLE_MAX} characters, not blank.` })
  @Length(1, TITLE_MAX, { message: `must be 1 to ${TITLE_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  @HasNoControlCharacters()
  title!: string;

  @Field({ description: `1 to ${BODY_MAX} characters, not blank.` })
  @Length(1, BODY_MAX, { message: `must be 1 to ${BODY_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  @HasNoControlCharacters()
  body!: string;
}

@InputType("UpdatePostInput", { description: "The fields to change; at least one." })
export class UpdatePostInput {
  @Field({ nullable: true, description: `1 to ${TITLE_MAX} characters, not blank.` })
  @Length(1, TITLE_MAX, { message: `must be 1 to ${TITLE_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  @HasNoControlCharacters()
  title?: string;

  @Field({ nullable: true, description: `1 to ${BODY_MAX} characters, not blank.` })
  @Length(1, BODY_MAX, { message: `must be 1 to ${BODY_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  @HasNoControlCharacters()
  body?: string;
}

export const POSTS_DEFAULT = 50;
export const USER_POSTS_DEFAULT = 20;

@ArgsType()
export class PostsArgs extends pageArgs({
  defaultFirst: POSTS_DEFAULT,
  nullable: false,
  describe: {
    first: `How many posts, 1 to ${FIRST_MAX}.`,
    offset: `How many of the newest posts to skip, 0 to ${OFFSET_MAX}; 0 when \`after\` is given.`,
    after:
      "The id of the last post of the previous page: this page is the posts after it, newest first. BAD_USER_INPUT when no post has that id.",
  },
}) {}

/** `User.posts`: nullable with defaults, so null means the default. */
@ArgsType()
export class UserPostsArgs extends pageArgs({
  defaultFirst: USER_POSTS_DEFAULT,
  nullable: true,
  describe: {
    first: `How many posts, 1 to ${FIRST_MAX} (null means ${USER_POSTS_DEFAULT}).`,
    offset: `How many of this user's newest posts to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
    after:
      "The id of the last post of the previous page: this page is this user's posts after it, newest first (any post's id marks a place in that order). BAD_USER_INPUT when no post has that id.",
  },
}) {}
