import { Max, Min, ValidateBy } from "class-validator";
import { ArgsType, Field, ID, Int } from "type-graphql";

import { BadUserInputError } from "../errors.js";

/** Most items one list field returns: every `first` argument is 1 to this. */
export const FIRST_MAX = 100;

/**
 * Most items a list skips with `offset`. A database still reads every skipped row, so a deep
 * offset costs as much as returning them all; `after` pages on at any depth through an index.
 */
export const OFFSET_MAX = 10_000;

/** class-validator messages shared by every list's `first`, `offset` and `after`. */
export const PAGE_MESSAGES = {
  firstMin: "must be at least 1",
  firstMax: `must be at most ${FIRST_MAX}`,
  offsetMin: "must not be negative",
  offsetMax: `must be at most ${OFFSET_MAX} (page on with after)`,
} as const;

/** The rules a page's arguments can break, as `extensions.fields[].rule` names them. */
export const PAGE_RULES = {
  /** `offset` over 0 together with `after`: `after` alone says where the page starts. */
  offsetWithAfter: "offsetWithAfter",
  /** `after` names no item of the list (never did, or it was deleted or left the list since). */
  afterUnknown: "afterUnknown",
} as const;

/**
 * One window of a list, newest or oldest first as the list says: the items after the one whose id
 * is `after` when given (keyset: the database seeks to it through an index), else skip `offset`;
 * then take `first`.
 */
export interface Page {
  readonly first: number;
  readonly offset: number;
  readonly after?: string | undefined;
}

/**
 * The page a list's arguments ask for. The arguments are nullable with defaults, and an explicit
 * `null` means the default too (`offset` 0, no `after`), so a client can pass an unset variable through.
 */
export function pageOf(
  args: { first?: number | null; offset?: number | null; after?: string | null },
  defaultFirst: number,
): Page {
  return { first: args.first ?? defaultFirst, offset: args.offset ?? 0, after: args.after ?? undefined };
}

/**
 * class-validator rule for `offset`: 0 (or unset) whenever `after` is given. Skipping from a cursor
 * would be well defined but is never needed, and refusing it keeps one meaning per argument.
 */
export function NoOffsetWithAfter(): PropertyDecorator {
  return ValidateBy({
    name: PAGE_RULES.offsetWithAfter,
    validator: {
      validate: (value, args) => (args?.object as { after?: unknown }).after == null || !value,
      defaultMessage: () => "must be 0 when after is given: after alone says where the page starts",
    },
  });
}

/** BAD_USER_INPUT for an `after` that names no `item` of the list it was given to. */
export function unknownAfter(item: string): BadUserInputError {
  return new BadUserInputError([
    {
      field: "after",
      rule: PAGE_RULES.afterUnknown,
      message: `names no ${item} of this list (it may have been deleted since): start again without after`,
    },
  ]);
}

/** What distinguishes one list's page arguments from another's: its default size and its words. */
export interface PageArgsOptions {
  /** `first` when the client gives none (or null). */
  readonly defaultFirst: number;
  /** Whether `first` and `offset` take null for their defaults (every list's but `posts`, as first published). */
  readonly nullable: boolean;
  /** The schema descriptions of the three arguments. */
  readonly describe: { readonly first: string; readonly offset: string; readonly after: string };
}

/**
 * The `first`, `offset` and `after` arguments of one list, declared once for every list: `first`
 * 1 to {@link FIRST_MAX}, `offset` 0 to {@link OFFSET_MAX} and only without `after`, `after` an
 * id. A list's arguments class extends what this returns (`class SessionsArgs extends
 * pageArgs({...}) {}`), adding filters of its own where it has them.
 */
export function pageArgs(options: PageArgsOptions) {
  const nullable = options.nullable;
  @ArgsType()
  abstract class PageArgs {
    @Field(() => Int, { nullable, defaultValue: options.defaultFirst, description: options.describe.first })
    @Min(1, { message: PAGE_MESSAGES.firstMin })
    @Max(FIRST_MAX, { message: PAGE_MESSAGES.firstMax })
    first!: number | null;

    @Field(() => Int, { nullable, defaultValue: 0, description: options.describe.offset })
    @Min(0, { message: PAGE_MESSAGES.offsetMin })
    @Max(OFFSET_MAX, { message: PAGE_MESSAGES.offsetMax })
    @NoOffsetWithAfter()
    offset!: number | null;

    @Field(() => ID, { nullable: true, description: options.describe.after })
    after?: string | null;
  }
  return PageArgs;
}
