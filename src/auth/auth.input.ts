import "reflect-metadata";

import { IsBoolean, IsOptional, ValidateBy } from "class-validator";
import { Field, InputType } from "type-graphql";

import { checkEmailRules, EMAIL_MAX_LENGTH, IsEmailAddress, looksLikeEmail } from "../email/index.js";
import { IsPassword, IsUsername, usernameCharsProblem, usernameLengthProblem } from "../users/index.js";

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

  @Field(() => String, {
    nullable: true,
    description:
      `An e-mail address (at most ${EMAIL_MAX_LENGTH} characters), stored unverified; a verification link is ` +
      "mailed to it. Any valid address is accepted: this never says whether another account uses it, and the " +
      "address counts (sign-in, reset links) only once verified. Counts toward EMAIL_REQUESTS_MAX_PER_IP; in " +
      "production without SMTP_URL, FORBIDDEN with reason EMAIL_NOT_CONFIGURED.",
  })
  @IsOptional()
  @IsEmailAddress()
  email?: string | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: USE_COOKIE_DESCRIPTION,
  })
  @IsOptional()
  @IsBoolean()
  useCookie?: boolean | null;
}

/**
 * A login's name: a username (rules `isLength`, `matches`, as at registration) or, with an `@`,
 * which no username has, an e-mail address (rule `isEmailAddress`).
 */
function IsUsernameOrEmailAddress(): PropertyDecorator {
  const rule = (name: string, problem: (value: string) => string | undefined) =>
    ValidateBy({
      name,
      validator: {
        validate: (value) => typeof value === "string" && problem(value) === undefined,
        defaultMessage: (args) => (typeof args?.value === "string" && problem(args.value)) || "must be a string",
      },
    });
  const rules = [
    rule("isLength", (value) => (looksLikeEmail(value) ? undefined : usernameLengthProblem(value))),
    rule("matches", (value) => (looksLikeEmail(value) ? undefined : usernameCharsProblem(value))),
    rule("isEmailAddress", (value) => (looksLikeEmail(value) ? checkEmailRules(value) : undefined)),
  ];
  return (target, property) => {
    for (const apply of rules) apply(target, property);
  };
}

@InputType("LoginInput")
export class LoginInput {
  @Field({ description: "The username, or the account's verified e-mail address (an unverified one finds nobody)." })
  @IsUsernameOrEmailAddress()
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
