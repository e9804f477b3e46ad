import { ValidateBy } from "class-validator";

import { BadUserInputError } from "../errors.js";

// The rules an e-mail address must meet, for register, changeEmail, requestPasswordReset and the
// login field that takes a username or an address.

/** RFC 5321's limit on a path (254 characters once the angle brackets are taken off). */
export const EMAIL_MAX_LENGTH = 254;
/** RFC 5321's limit on a local part. */
const LOCAL_MAX_LENGTH = 64;
// The local part: RFC 5322's dot-atom (no quoted strings); the domain: DNS labels of letters, digits
// and inner hyphens, at least two, the last alphabetic. ASCII only: no address a mail server would
// need SMTPUTF8 for, and no look-alike characters in a domain.
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const TOP_LABEL = /^[A-Za-z]{2,63}$/;

/** Why `email` is not an address this service accepts, or undefined when it is. */
export function checkEmailRules(email: string): string | undefined {
  if (email.length > EMAIL_MAX_LENGTH) return `must be at most ${EMAIL_MAX_LENGTH} characters`;
  const at = email.lastIndexOf("@");
  if (at <= 0) return "must be an e-mail address (name@example.com)";
  const local = email.slice(0, at);
  const labels = email.slice(at + 1).split(".");
  if (local.length > LOCAL_MAX_LENGTH) return `must have at most ${LOCAL_MAX_LENGTH} characters before the @`;
  if (!LOCAL.test(local) || labels.length < 2 || !labels.every((label) => LABEL.test(label))) {
    return "must be an e-mail address (name@example.com)";
  }
  if (!TOP_LABEL.test(labels[labels.length - 1]!)) return "must end in a top-level domain of letters";
  return undefined;
}

/** class-validator rule for an e-mail address (rule name `isEmailAddress`, as clients see it). */
export function IsEmailAddress(): PropertyDecorator {
  return ValidateBy({
    name: "isEmailAddress",
    validator: {
      validate: (value) => typeof value === "string" && checkEmailRules(value) === undefined,
      defaultMessage: (args) => (typeof args?.value === "string" && checkEmailRules(args.value)) || "must be a string",
    },
  });
}

/** Whether a login's `username` holds an address: usernames cannot contain `@`. */
export function looksLikeEmail(value: string): boolean {
  return value.includes("@");
}

/** `email` when it is an acceptable address; BAD_USER_INPUT on `field` (a scalar argument) otherwise. */
export function requireEmailAddress(email: string, field: string): string {
  const problem = checkEmailRules(email);
  if (problem) throw new BadUserInputError([{ field, rule: "isEmailAddress", message: problem }]);
  return email;
}
