import "reflect-metadata";

import { ArgsType } from "type-graphql";

import { FIRST_MAX, OFFSET_MAX, pageArgs } from "../graphql/pagination.js";

export const USERS_DEFAULT = 50;

/** `users`: nullable with defaults, so null means the default. */
@ArgsType()
export class UsersArgs extends pageArgs({
  defaultFirst: USERS_DEFAULT,
  nullable: true,
  describe: {
    first: `How many users, 1 to ${FIRST_MAX} (null means ${USERS_DEFAULT}).`,
    offset: `How many of the oldest users to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
    after:
      "The id of the last user of the previous page: this page is the users after them, oldest first. BAD_USER_INPUT when no user has that id.",
  },
}) {}
