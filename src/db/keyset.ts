import { type SelectQueryBuilder, sql } from "kysely";

/** Where a keyset page starts: the sort column's value and the id of the last item of the previous page. */
export interface KeysetPosition {
  readonly at: Date | string;
  readonly id: string | number;
}

/** One window of a list, as graphql/pagination.ts's Page gives it (db/ sits below graphql/). */
export interface KeysetWindow {
  readonly first: number;
  readonly offset: number;
}

/**
 * Orders `query` by `(column, id)` in `direction` and takes one window of it: the rows after
 * `after` in that order when given (a row-value comparison, which SQLite and PostgreSQL both answer
 * by seeking through an index on `(…, column, id)`), else skipping `window.offset`; then
 * `window.first` rows. Every list's store pages through this, so the shape the list-plan test
 * checks (test/db/list-plans.test.ts) is written once.
 */
export function keysetPage<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  window: KeysetWindow,
  after: KeysetPosition | undefined,
  order: { readonly column: "created_at" | "at"; readonly direction: "asc" | "desc" },
): SelectQueryBuilder<DB, TB, O> {
  const column = sql.ref(order.column);
  const id = sql.ref("id");
  const past = order.direction === "desc" ? sql`<` : sql`>`;
  return query
    .$if(after !== undefined, (q) => q.where(sql<boolean>`(${column}, ${id}) ${past} (${after!.at}, ${after!.id})`))
    .orderBy(column, order.direction)
    .orderBy(id, order.direction)
    .limit(window.first)
    .offset(window.offset);
}
