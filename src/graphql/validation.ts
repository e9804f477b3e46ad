import { ValidateBy, validateSync, type ValidationError } from "class-validator";

import { BadUserInputError, type FieldProblem } from "../errors.js";

/** type-graphql hands its `validateFn` the field's resolver data; only the coerced arguments are read. */
interface ArgumentsOf {
  args?: Record<string, unknown>;
}

/**
 * type-graphql's `validateFn`, called once for every argument of every field before its resolver
 * runs (scalars like `id: ID!` and `refreshToken: String!` included): refuses text that is not
 * well-formed UTF-16 anywhere in the field's arguments ({@link malformedText}), then runs
 * class-validator over an input object. Every failure goes into one BAD_USER_INPUT error whose
 * `extensions.fields` names each failing field and rule. Values are never echoed back, so a
 * rejected password does not appear in a response or a log. Called without resolver data (by a
 * service checking its own input), the value's own fields are checked for malformed text.
 */
export function validateArgument(argValue: unknown, _argType?: unknown, resolverData?: ArgumentsOf): void {
  const problems = malformedText(resolverData ? (resolverData.args ?? {}) : { input: argValue });
  if (argValue !== null && typeof argValue === "object") {
    const errors = validateSync(argValue, {
      skipMissingProperties: true,
      forbidUnknownValues: false,
      validationError: { target: false, value: false },
    });
    problems.push(...flatten(errors, ""));
  }
  if (problems.length > 0) throw new BadUserInputError(problems);
}

/** The rule name in `extensions.fields` for text holding a lone surrogate. */
export const WELL_FORMED_RULE = "wellFormedText";
// With the `u` flag a proper pair is one code point, so only an unpaired half is a Cs code point:
// the same test as String.prototype.isWellFormed (ES2024, newer than this project's `lib`).
const LONE_SURROGATE = /\p{Cs}/u;
const WELL_FORMED_MESSAGE = "must be well-formed Unicode text (no unpaired UTF-16 surrogate)";

/**
 * Every string in a field's arguments that holds a lone UTF-16 surrogate (half of a pair, or a
 * pair in the wrong order). JSON can carry one (`"\ud800"`), but it is not Unicode text: SQLite
 * would store it as invalid UTF-8 and PostgreSQL as U+FFFD, argon2 would hash it as U+FFFD, so
 * the same input would mean different things in different places. It is refused in every argument
 * alike. Fields are named as class-validator names them: an input object's fields by their own
 * name (`title`, `username`), a scalar argument by the argument's (`id`, `refreshToken`).
 */
export function malformedText(args: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const visit = (value: unknown, field: string): void => {
    if (typeof value === "string") {
      if (LONE_SURROGATE.test(value)) problems.push({ field, rule: WELL_FORMED_RULE, message: WELL_FORMED_MESSAGE });
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, `${field}.${index}`));
    } else if (value !== null && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) visit(item, field === "" ? key : `${field}.${key}`);
    }
  };
  for (const [name, value] of Object.entries(args)) {
    // An input object's fields go without the argument's name, like class-validator's paths.
    visit(value, value !== null && typeof value === "object" && !Array.isArray(value) ? "" : name);
  }
  return problems;
}

function flatten(errors: ValidationError[], prefix: string): FieldProblem[] {
  return errors.flatMap((error) => {
    const field = prefix + error.property;
    const own = Object.entries(error.constraints ?? {}).map(([rule, message]) => ({ field, rule, message }));
    return [...own, ...flatten(error.children ?? [], `${field}.`)];
  });
}

/**
 * class-validator rule: no U+0000. PostgreSQL cannot store it in text, and the same input must get the
 * same answer on SQLite, so it is refused on both rather than failing on one of them.
 */
export function HasNoNul(): PropertyDecorator {
  return ValidateBy({
    name: "hasNoNul",
    validator: {
      validate: (value) => typeof value === "string" && !value.includes("\u0000"),
      defaultMessage: () => "must not contain the NUL character (U+0000)",
    },
  });
}

// C0 controls but NUL (which HasNoNul names) and tab, LF and CR, which text may hold.
// eslint-disable-next-line no-control-regex -- finding control characters is the rule's purpose
const CONTROL_CHARACTER = /[\u0001-\u0008\u000B\u000C\u000E-\u001F]/;

/**
 * class-validator rule: no C0 control character (U+0001 to U+001F) other than tab, line feed and
 * carriage return; NUL has its own rule ({@link HasNoNul}). They are not text anyone writes, and
 * JSON escapes each as six bytes (`\u0001`), so a field of them would answer six times its length.
 */
export function HasNoControlCharacters(): PropertyDecorator {
  return ValidateBy({
    name: "hasNoControlCharacters",
    validator: {
      validate: (value) => typeof value === "string" && !CONTROL_CHARACTER.test(value),
      defaultMessage: () =>
        "must not contain control characters (U+0001 to U+001F) other than tab, line feed and carriage return",
    },
  });
}

/** class-validator rule: at least one character that is not white space. */
export function IsNotBlank(): PropertyDecorator {
  return ValidateBy({
    name: "isNotBlank",
    validator: {
      validate: (value) => typeof value === "string" && value.trim().length > 0,
      defaultMessage: () => "must not be blank",
    },
  });
}
