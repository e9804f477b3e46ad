import { Length, Matches } from "class-validator";
import { Field, InputType } from "type-graphql";

import { IsPassword } from "../validation.js";

const USERNAME_CHARS = /^[A-Za-z0-9_.-]*$/;

@InputType({ description: "A new account. The username is unique without regard to case." })
export class RegisterInput {
  @Field({ description: "3 to 32 characters of a-z A-Z 0-9 _ . -" })
  @Length(3, 32, { message: "must be 3 to 32 characters" })
  @Matches(USERNAME_CHARS, { message: "may contain only a-z A-Z 0-9 _ . -" })
  username!: string;

  @Field({ description: "8 to 128 characters; no composition rules." })
  @IsPassword()
  password!: string;
}

@InputType()
export class LoginInput {
  @Field()
  @Length(3, 32, { message: "must be 3 to 32 characters" })
  @Matches(USERNAME_CHARS, { message: "may contain only a-z A-Z 0-9 _ . -" })
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
