import "reflect-metadata";

import { Field, Int, ObjectType } from "type-graphql";

import { User } from "../users/user.type.js";

@ObjectType({ description: "What `register`, `login` and `refreshToken` return." })
export class AuthPayload {
  @Field({ description: "Send as `Authorization: Bearer <accessToken>`." })
  accessToken!: string;

  @Field({
    description:
      "Opaque; exchange it with `refreshToken` for new tokens before the access token expires. Single use: each exchange returns a new one, and presenting a spent one ends the session.",
  })
  refreshToken!: string;

  @Field({ description: 'Always "Bearer".' })
  tokenType!: string;

  @Field(() => Int, { description: "Seconds until the access token expires." })
  expiresIn!: number;

  @Field(() => User)
  user!: User;
}
