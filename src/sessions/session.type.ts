import "reflect-metadata";

import { Field, ID, ObjectType, registerEnumType } from "type-graphql";

import { Bounded } from "../graphql/query-cost.js";

/** Longest stored value of each text field a client chooses (its User-Agent, or the address a trusted proxy names). */
export const SESSION_FIELD_LIMITS = { userAgent: 256, ip: 64 } as const;

/** Which sessions `logout` ends. */
export enum LogoutScope {
  CURRENT = "CURRENT",
  OTHERS = "OTHERS",
  ALL = "ALL",
}

registerEnumType(LogoutScope, {
  name: "LogoutScope",
  description: "Which sessions `logout` ends.",
  valuesConfig: {
    CURRENT: { description: "The session of the token making the request." },
    OTHERS: { description: "Every other session of the user (for example after a lost phone)." },
    ALL: { description: "Every session of the user, this one included." },
  },
});

@ObjectType("Session", { description: "A signed-in device or client: one login, and every token refreshed from it." })
export class Session {
  @Field(() => ID, { description: "The `sid` claim of this session's access tokens." })
  id!: string;

  @Field()
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: "Last login or refresh." })
  lastUsedAt!: Date | null;

  @Field({ description: "After this the refresh token is refused and a new login is needed." })
  expiresAt!: Date;

  @Field(() => String, {
    nullable: true,
    description: `User-Agent header at login (at most ${SESSION_FIELD_LIMITS.userAgent} characters).`,
  })
  @Bounded(SESSION_FIELD_LIMITS.userAgent)
  userAgent!: string | null;

  @Field(() => String, { nullable: true, description: "Client address at login." })
  @Bounded(SESSION_FIELD_LIMITS.ip)
  ip!: string | null;

  @Field({ description: "True for the session of the token making this request." })
  current!: boolean;
}
