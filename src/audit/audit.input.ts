import "reflect-metadata";

import { IsIn } from "class-validator";
import { ArgsType, Field, ID } from "type-graphql";

import { FIRST_MAX, OFFSET_MAX, pageArgs } from "../graphql/pagination.js";
import { AuditEventType } from "./audit.type.js";

export const AUDIT_EVENTS_DEFAULT = 50;

const TYPES = Object.values(AuditEventType);

/** `auditEvents`: a page of the newest events, optionally only of one type or one user. */
@ArgsType()
export class AuditEventsArgs extends pageArgs({
  defaultFirst: AUDIT_EVENTS_DEFAULT,
  nullable: true,
  describe: {
    first: `How many of the newest events, 1 to ${FIRST_MAX} (null means ${AUDIT_EVENTS_DEFAULT}).`,
    offset: `How many of the newest matching events to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
    after:
      "The id of the last event of the previous page: this page is the matching events after it, newest first (any event's id marks a place in that order). BAD_USER_INPUT when no event has that id.",
  },
}) {
  @Field(() => String, {
    nullable: true,
    description: "Only events of this type (see `AuditEvent.type`); null means every type.",
  })
  @IsIn(TYPES, { message: `must be one of ${TYPES.join(", ")}` })
  type?: string | null;

  @Field(() => ID, {
    nullable: true,
    description: "Only events concerning this user (`AuditEvent.userId`); null means everybody.",
  })
  userId?: string | null;
}
