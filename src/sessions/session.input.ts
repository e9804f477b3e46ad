import "reflect-metadata";

import { Max, Min } from "class-validator";
import { ArgsType, Field, ID, Int } from "type-graphql";

import { FIRST_MAX, NoOffsetWithAfter, OFFSET_MAX, PAGE_MESSAGES } from "../graphql/pagination.js";

/** Sessions a page holds by default: more than a person has devices, so one page still shows them all. */
export const SESSIONS_DEFAULT = 50;

/** `sessions`: nullable with defaults, so null means the default. */
@ArgsType()
export class SessionsArgs {
  @Field(() => Int, {
    nullable: true,
    defaultValue: SESSIONS_DEFAULT,
    description: `How many sessions, 1 to ${FIRST_MAX} (null means ${SESSIONS_DEFAULT}).`,
  })
  @Min(1, { message: PAGE_MESSAGES.firstMin })
  @Max(FIRST_MAX, { message: PAGE_MESSAGES.firstMax })
  first!: number | null;

  @Field(() => Int, {
    nullable: true,
    defaultValue: 0,
    description: `How many of the newest sessions to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
  })
  @Min(0, { message: PAGE_MESSAGES.offsetMin })
  @Max(OFFSET_MAX, { message: PAGE_MESSAGES.offsetMax })
  @NoOffsetWithAfter()
  offset!: number | null;

  @Field(() => ID, {
    nullable: true,
    description:
      "The id of the last session of the previous page: this page is your live sessions after it, newest first (it may have ended since). BAD_USER_INPUT when it is not one of your sessions.",
  })
  after?: string | null;
}
