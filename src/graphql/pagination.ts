/** Most items one list field returns: every `first` argument is 1 to this. */
export const FIRST_MAX = 100;

/** class-validator messages shared by every list's `first` and `offset`. */
export const PAGE_MESSAGES = {
  firstMin: "must be at least 1",
  firstMax: `must be at most ${FIRST_MAX}`,
  offsetMin: "must not be negative",
} as const;

/** One window of a list, newest or oldest first as the list says: skip `offset`, take `first`. */
export interface Page {
  readonly first: number;
  readonly offset: number;
}

/**
 * The page a list's arguments ask for. The arguments are nullable with defaults, and an explicit
 * `null` means the default too (`offset` 0), so a client can pass an unset variable through.
 */
export function pageOf(args: { first?: number | null; offset?: number | null }, defaultFirst: number): Page {
  return { first: args.first ?? defaultFirst, offset: args.offset ?? 0 };
}
