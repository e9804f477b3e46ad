import "reflect-metadata";

import { Max, Min } from "class-validator";
import { ArgsType, Field, Int } from "type-graphql";

import { FIRST_MAX, PAGE_MESSAGES } from "../graphql/pagination.js";

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
    description: "How many of the oldest users to skip (null means 0).",
  })
  @Min(0, { message: PAGE_MESSAGES.offsetMin })
  offset!: number | null;
}
