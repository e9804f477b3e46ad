import "reflect-metadata";

import { Field, InputType } from "type-graphql";

import { IsPassword, IsUsername } from "../users/account-rules.js";

@InputType({ description: "A new account. The username is unique without regard to case." })
export class RegisterInput {
  @Field({ description: "3 to 32 characters of a-z A-Z 0-9 _ . -" })
  @IsUsername()
  username!: string;

  @Field({ description: "8 to 128 characters; no composition rules." })
  @IsPassword()
  password!: string;
}

@InputType()
export class LoginInput {
  @Field()
  @IsUsername()
  username!: string;

  @Field()
  @IsPassword()
  password!: string;
}

@InputType()
export class ChangePasswordInput {
  @Field()
  @IsPassword()
  currentPassword!: string;

  @Field({ description: "8 to 128 characters; no composition rules." })
  @IsPassword()
  newPassword!: string;
}
