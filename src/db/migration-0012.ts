// Kysely's migration guide types migrations as Kysely<any>: a step sees the database as it was when
// the step was written, not as today's schema.ts describes it.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { type Kysely, type Migration, sql } from "kysely";

/**
 * 0012: a partial index of the active ADMINs (issue 28), so that the last-admin check (users/
 * user.store.ts's activeAdminCount) reads the few admins' rows, in id order, instead of every
 * user's roles. The predicate is written out literally and the query repeats it word for word:
 * SQLite and PostgreSQL use a partial index only for a query whose WHERE they can prove implies
 * the index's, and neither proves it from a bound parameter. Plain CREATE INDEX in the migration's
 * transaction, as in 0008 (migrations.ts says why not CONCURRENTLY): a large deployment builds it
 * beforehand under this name and `if not exists` skips it (docs/operations.md).
 */
export function activeAdminsIndex(): Migration {
  return {
    async up(db: Kysely<any>) {
      await sql`create index if not exists users_active_admin_idx on users (id)
        where roles like '%"ADMIN"%' and disabled_at is null`.execute(db);
    },
  };
}
