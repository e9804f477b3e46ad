import "reflect-metadata";

import { Field, Int, ObjectType } from "type-graphql";

import { MAX_TOKEN_LENGTH } from "../access/tokens.js";
import { Bounded } from "../graphql/query-cost.js";
import { User } from "../users/index.js";
import { REFRESH_TOKEN_LENGTH } from "./refresh-chain.js";

@ObjectType("AuthPayload", { description: "What `register`, `login` and `refreshToken` return." })
export class AuthPayload {
  @Field({ description: "Send as `Authorization: Bearer <accessToken>`." })
  @Bounded(MAX_TOKEN_LENGTH)
  accessToken!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "Opaque; exchange it with `refreshToken` for new tokens. Single use: each exchange returns the next one, and " +
      "presenting a spent one ends the session, except the one just exchanged, which within " +
      "REFRESH_TOKEN_REUSE_INTERVAL returns the same current token again. Null in cookie mode (`useCookie`), " +
      "where it travels as an HttpOnly cookie instead.",
  })
  @Bounded(REFRESH_TOKEN_LENGTH)
  refreshToken!: string | null;

  @Field({ description: 'Always "Bearer".' })
  @Bounded("Bearer".length)
  tokenType!: string;

  @Field(() => Int, { description: "Seconds until the access token expires." })
  expiresIn!: number;

  @Field(() => User)
  user!: User;
}
