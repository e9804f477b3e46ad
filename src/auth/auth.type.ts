import { Field, Int, ObjectType } from "type-graphql";

import { User } from "../users/user.type.js";

@ObjectType({ description: "What `register` and `login` return." })
export class AuthPayload {
  @Field({ description: "Send as `Authorization: Bearer <accessToken>`." })
  accessToken!: string;

  @Field({ description: 'Always "Bearer".' })
  tokenType!: string;

  @Field(() => Int, { description: "Seconds until the access token expires." })
  expiresIn!: number;

  @Field(() => User)
  user!: User;
}
