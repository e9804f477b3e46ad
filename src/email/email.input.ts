import "reflect-metadata";

import { IsBoolean, IsOptional, IsString, MaxLength } from "class-validator";
import { Field, InputType } from "type-graphql";

import { IsPassword } from "../users/index.js";

/** Longest `mfaCode` read: a TOTP is 6 digits, a recovery code a few groups of characters. */
const MFA_CODE_MAX_LENGTH = 64;

@InputType("ResetPasswordInput", { description: "A new password set with the token of a reset link." })
export class ResetPasswordInput {
  @Field({ description: "The token of the reset link (the part after `token=`), as the mail gave it." })
  token!: string;

  @Field({ description: "8 to 128 characters; no composition rules." })
  @IsPassword()
  newPassword!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "A TOTP or recovery code, for an account with a second factor (without a valid one such an account gets " +
      "FORBIDDEN, reason MFA_REQUIRED, and the token stays usable). Ignored for other accounts.",
  })
  @IsOptional()
  @IsString()
  @MaxLength(MFA_CODE_MAX_LENGTH, { message: `must be at most ${MFA_CODE_MAX_LENGTH} characters` })
  mfaCode?: string | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description:
      "Deliver the refresh token as an HttpOnly, SameSite=Strict cookie instead of in the response " +
      "(AuthPayload.refreshToken is then null), exactly as login's useCookie.",
  })
  @IsOptional()
  @IsBoolean()
  useCookie?: boolean | null;
}
