import "reflect-metadata";

import { IsBoolean, IsOptional } from "class-validator";
import { Field, InputType } from "type-graphql";

import { IsPassword, IsUsername } from "../users/index.js";

/** The one description of `useCookie`, on both inputs that take it. */
const USE_COOKIE_DESCRIPTION =
  "Deliver the refresh token as an HttpOnly, SameSite=Strict cookie instead of in the response " +
  "(AuthPayload.refreshToken is then null); for browser apps, so page scripts never see it.";

@InputType("RegisterInput", { description: "A new account. The username is unique without regard to case." })
export class RegisterInput {
  @Field({ description: "3 to 32 characters of a-z A-Z 0-9 _ . -" })
  @IsUsername()
  username!: string;

  @Field({ description: "8 to 128 characters; no composition rules." })
  @IsPassword()
  password!: string;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: USE_COOKIE_DESCRIPTION,
  })
  @IsOptional()
  @IsBoolean()
  useCookie?: boolean | null;
}

@InputType("LoginInput")
export class LoginInput {
  @Field()
  @IsUsername()
  username!: string;

  @Field()
  @IsPassword()
  password!: string;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: USE_COOKIE_DESCRIPTION,
  })
  @IsOptional()
  @IsBoolean()
  useCookie?: boolean | null;
}

@InputType("ChangePasswordInput")
export class ChangePasswordInput {
  @Field()
  @IsPassword()
  currentPassword!: string;

  @Field({ description: "8 to 128 characters; no composition rules." })
  @IsPassword()
  newPassword!: string;
}
