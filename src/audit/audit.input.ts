import { Max, Min } from "class-validator";
import { ArgsType, Field, Int } from "type-graphql";

/** Most events one `auditEvents` call returns. */
export const AUDIT_EVENTS_MAX = 500;
export const AUDIT_EVENTS_DEFAULT = 50;

@ArgsType()
export class AuditEventsArgs {
  @Field(() => Int, {
    nullable: true,
    defaultValue: AUDIT_EVENTS_DEFAULT,
    description: `How many of the newest events, 1 to ${AUDIT_EVENTS_MAX} (null means ${AUDIT_EVENTS_DEFAULT}).`,
  })
  @Min(1, { message: "must be at least 1" })
  @Max(AUDIT_EVENTS_MAX, { message: `must be at most ${AUDIT_EVENTS_MAX}` })
  first!: number | null;
}
