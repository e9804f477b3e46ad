import "reflect-metadata";

import { Field, ID, ObjectType, registerEnumType } from "type-graphql";

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

  @Field(() => String, { nullable: true })
  userAgent!: string | null;

  @Field(() => String, { nullable: true, description: "Client address at login." })
  ip!: string | null;

  @Field({ description: "True for the session of the token making this request." })
  current!: boolean;
}
