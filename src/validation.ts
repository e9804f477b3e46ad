import { type ValidationError, ValidateBy, validateSync } from "class-validator";

import { checkPasswordRules } from "./auth/password-rules.js";
import { BadUserInputError, type FieldProblem } from "./errors.js";

/**
 * type-graphql's `validateFn`: runs class-validator over each input object and turns failures into
 * one BAD_USER_INPUT error whose `extensions.fields` names every failing field and rule.
 * Values are never echoed back, so a rejected password does not appear in a response or a log.
 */
export function validateArgument(argValue: unknown): void {
  if (argValue === null || typeof argValue !== "object") return;
  const errors = validateSync(argValue, {
    skipMissingProperties: true,
    forbidUnknownValues: false,
    validationError: { target: false, value: false },
  });
  if (errors.length > 0) throw new BadUserInputError(flatten(errors, ""));
}

function flatten(errors: ValidationError[], prefix: string): FieldProblem[] {
  return errors.flatMap((error) => {
    const field = prefix + error.property;
    const own = Object.entries(error.constraints ?? {}).map(([rule, message]) => ({ field, rule, message }));
    return [...own, ...flatten(error.children ?? [], `${field}.`)];
  });
}

/** class-validator rule for passwords: the contract's length bounds, counted in characters. */
export function IsPassword(): PropertyDecorator {
  return ValidateBy({
    name: "isPassword",
    validator: {
      validate: (value) => typeof value === "string" && checkPasswordRules(value) === undefined,
      defaultMessage: (args) => (typeof args?.value === "string" && checkPasswordRules(args.value)) || "must be a string",
    },
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
