import { Arg, Ctx, Mutation, Resolver } from "type-graphql";

import type { Context } from "../context.js";
import { RegisterInput, LoginInput } from "./auth.input.js";
import type { AuthService } from "./auth.service.js";
import { AuthPayload } from "./auth.type.js";

@Resolver()
export class AuthResolver {
  constructor(private readonly auth: AuthService) {}

  @Mutation(() => AuthPayload, { description: "Create an account (role USER) and sign in. The access token is fresh." })
  register(@Arg("input") input: RegisterInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.register(input, { ip: ctx.ip, userAgent: ctx.userAgent });
  }

  @Mutation(() => AuthPayload, {
    description: "Sign in. Unknown usernames and wrong passwords get the same UNAUTHENTICATED error. The access token is fresh.",
  })
  login(@Arg("input") input: LoginInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.login(input, { ip: ctx.ip, userAgent: ctx.userAgent });
  }
}
