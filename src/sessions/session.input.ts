import "reflect-metadata";

import { ArgsType } from "type-graphql";

import { FIRST_MAX, OFFSET_MAX, pageArgs } from "../graphql/pagination.js";

/** Sessions a page holds by default: more than a person has devices, so one page still shows them all. */
export const SESSIONS_DEFAULT = 50;

/** `sessions`: nullable with defaults, so null means the default. */
@ArgsType()
export class SessionsArgs extends pageArgs({
  defaultFirst: SESSIONS_DEFAULT,
  nullable: true,
  describe: {
    first: `How many sessions, 1 to ${FIRST_MAX} (null means ${SESSIONS_DEFAULT}).`,
    offset: `How many of the newest sessions to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
    after:
      "The id of the last session of the previous page: this page is your live sessions after it, newest first (it may have ended since). BAD_USER_INPUT when it is not one of your sessions.",
  },
}) {}
