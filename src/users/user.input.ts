import "reflect-metadata";

import { Max, Min } from "class-validator";
import { ArgsType, Field, ID, Int } from "type-graphql";

import { FIRST_MAX, NoOffsetWithAfter, OFFSET_MAX, PAGE_MESSAGES } from "../graphql/pagination.js";

export const USERS_DEFAULT = 50;

/** `users`: nullable with defaults, so null means the default. */
@ArgsType()
export class UsersArgs {
  @Field(() => Int, {
    nullable: true,
    defaultValue: USERS_DEFAULT,
    description: `How many users, 1 to ${FIRST_MAX} (null means ${USERS_DEFAULT}).`,
  })
  @Min(1, { message: PAGE_MESSAGES.firstMin })
  @Max(FIRST_MAX, { message: PAGE_MESSAGES.firstMax })
  first!: number | null;

  @Field(() => Int, {
    nullable: true,
    defaultValue: 0,
    description: `How many of the oldest users to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
  })
  @Min(0, { message: PAGE_MESSAGES.offsetMin })
  @Max(OFFSET_MAX, { message: PAGE_MESSAGES.offsetMax })
  @NoOffsetWithAfter()
  offset!: number | null;

  @Field(() => ID, {
    nullable: true,
    description:
      "The id of the last user of the previous page: this page is the users after them, oldest first. BAD_USER_INPUT when no user has that id.",
  })
  after?: string | null;
}
