import { Length, Matches, ValidateBy } from "class-validator";

import { type CrossRule, isSet } from "../config.js";
import { BadUserInputError } from "../errors.js";

// Every rule an account must meet, in one place: the GraphQL inputs (auth/auth.input.ts), the
// operator's `users create` and ADMIN_USERNAME/ADMIN_PASSWORD (config, through load-config.ts) all
// check these.

/** Username bounds from the public contract, and the characters allowed. */
export const USERNAME_MIN_LENGTH = 3;
export const USERNAME_MAX_LENGTH = 32;
const USERNAME_CHARS = /^[A-Za-z0-9_.-]*$/;
const USERNAME_LENGTH_MESSAGE = `must be ${USERNAME_MIN_LENGTH} to ${USERNAME_MAX_LENGTH} characters`;
const USERNAME_CHARS_MESSAGE = "may contain only a-z A-Z 0-9 _ . -";

/** Why `username` breaks the rules, or undefined when it is acceptable. */
export function checkUsernameRules(username: string): string | undefined {
  return usernameLengthProblem(username) ?? usernameCharsProblem(username);
}

/** Why `username`'s length breaks the rules (rule `isLength`), or undefined. */
export function usernameLengthProblem(username: string): string | undefined {
  return username.length < USERNAME_MIN_LENGTH || username.length > USERNAME_MAX_LENGTH
    ? USERNAME_LENGTH_MESSAGE
    : undefined;
}

/**
 * Why `username`'s characters break the rules (rule `matches`), or undefined. They never include
 * `@`, so a login name with one is an e-mail address.
 */
export function usernameCharsProblem(username: string): string | undefined {
  return USERNAME_CHARS.test(username) ? undefined : USERNAME_CHARS_MESSAGE;
}

/** class-validator rules for a username (rule names `isLength` and `matches`, as clients see them). */
export function IsUsername(): PropertyDecorator {
  const length = Length(USERNAME_MIN_LENGTH, USERNAME_MAX_LENGTH, { message: USERNAME_LENGTH_MESSAGE });
  const chars = Matches(USERNAME_CHARS, { message: USERNAME_CHARS_MESSAGE });
  return (target, property) => {
    length(target, property);
    chars(target, property);
  };
}

/** Length bounds from the public contract, in characters (Unicode code points). */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

/**
 * Why `password` breaks the contract's rules, or undefined when it is acceptable.
 * No composition rules (NIST SP 800-63B); the upper bound exists so that huge inputs are refused
 * before any hashing work is spent on them, and nothing is ever silently truncated.
 */
export function checkPasswordRules(password: string): string | undefined {
  // Count code points so that an emoji counts once, as a person would count it.
  let length = 0;
  for (const _ of password) {
    length += 1;
    if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  }
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  return undefined;
}

/** class-validator rule for passwords: the contract's length bounds, counted in characters. */
export function IsPassword(): PropertyDecorator {
  return ValidateBy({
    name: "isPassword",
    validator: {
      validate: (value) => typeof value === "string" && checkPasswordRules(value) === undefined,
      defaultMessage: (args) =>
        (typeof args?.value === "string" && checkPasswordRules(args.value)) || "must be a string",
    },
  });
}

/** A new account's credentials, as an operator or a registration gives them. */
export class NewAccount {
  @IsUsername()
  username!: string;

  @IsPassword()
  password!: string;
}

/** The answer to a username that exists already (without regard to case). */
export function usernameTakenError(): BadUserInputError {
  return new BadUserInputError([{ field: "username", rule: "unique", message: "is already taken" }]);
}

/** The answer to an empty role list: every account has at least one role. */
export function noRolesError(): BadUserInputError {
  return new BadUserInputError([{ field: "roles", rule: "notEmpty", message: "must contain at least one role" }]);
}

/** ADMIN_USERNAME and ADMIN_PASSWORD are set together or not at all. */
export const adminPairProblem: CrossRule = (_config, env) =>
  isSet(env, "ADMIN_USERNAME") !== isSet(env, "ADMIN_PASSWORD")
    ? "ADMIN_USERNAME and ADMIN_PASSWORD must be set together"
    : undefined;
