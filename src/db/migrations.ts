// Kysely's migration guide types migrations as Kysely<any>: a step sees the database as it was when
// the step was written, not as today's schema.ts describes it.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { type Kysely, type Migration, type MigrationProvider, sql } from "kysely";

import { emailAccounts } from "./migration-0009.js";
import { multiFactor } from "./migration-0010.js";
import { retentionIndexes } from "./migration-0011.js";
import { activeAdminsIndex } from "./migration-0012.js";
import type { Dialect } from "./schema.js";

/**
 * The schema's history, oldest first. The same steps run on SQLite and PostgreSQL; only the
 * timestamp column type differs (ISO text on SQLite, timestamptz on PostgreSQL).
 * Never edit a step that has shipped: add a new one.
 */
export function createMigrationProvider(dialect: Dialect): MigrationProvider {
  const ts = dialect === "postgres" ? "timestamptz" : "text";
  const migrations: Record<string, Migration> = {
    "0001_users_posts_sessions": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("users")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("username", "text", (c) => c.notNull())
          .addColumn("username_normalized", "text", (c) => c.notNull().unique())
          .addColumn("password_hash", "text", (c) => c.notNull())
          .addColumn("roles", "text", (c) => c.notNull())
          .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("updated_at", sql.raw(ts), (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("posts")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("author_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
          .addColumn("title", "text", (c) => c.notNull())
          .addColumn("body", "text", (c) => c.notNull())
          .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("updated_at", sql.raw(ts), (c) => c.notNull())
          .execute();
        await db.schema.createIndex("posts_created_at_idx").on("posts").columns(["created_at", "id"]).execute();
        await db.schema.createIndex("posts_author_idx").on("posts").columns(["author_id", "created_at"]).execute();
        await db.schema
          .createTable("sessions")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
          .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("last_used_at", sql.raw(ts))
          .addColumn("expires_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("user_agent", "text")
          .addColumn("ip", "text")
          .addColumn("revoked_at", sql.raw(ts))
          .addColumn("revoked_reason", "text")
          .execute();
        await db.schema.createIndex("sessions_user_idx").on("sessions").column("user_id").execute();
      },
    },
    "0002_refresh_tokens_and_revocation": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("refresh_tokens")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("session_id", "text", (c) => c.notNull().references("sessions.id").onDelete("cascade"))
          .addColumn("token_hash", "text", (c) => c.notNull().unique())
          .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("rotated_at", sql.raw(ts))
          .execute();
        await db.schema.createIndex("refresh_tokens_session_idx").on("refresh_tokens").column("session_id").execute();
        await db.schema.createIndex("sessions_revoked_at_idx").on("sessions").column("revoked_at").execute();
        await db.schema.alterTable("users").addColumn("roles_changed_at", sql.raw(ts)).execute();
        await db.schema.createIndex("users_roles_changed_at_idx").on("users").column("roles_changed_at").execute();
      },
    },
    "0003_audit_events": {
      async up(db: Kysely<any>) {
        // An increasing id orders events written within the same millisecond. No foreign keys:
        // events outlive the users and sessions they name, and a failed login may name nobody.
        await db.schema
          .createTable("audit_events")
          .addColumn("id", dialect === "postgres" ? "bigserial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("user_id", "text")
          .addColumn("username", "text")
          .addColumn("ip", "text")
          .addColumn("user_agent", "text")
          .addColumn("session_id", "text")
          .addColumn("detail", "text")
          .addColumn("at", sql.raw(ts), (c) => c.notNull())
          .execute();
        await db.schema.createIndex("audit_events_at_idx").on("audit_events").columns(["at", "id"]).execute();
      },
    },
    "0004_refresh_chain_key": {
      async up(db: Kysely<any>) {
        // The key each session's refresh tokens are derived with (see sessions/refresh-chain.ts).
        // Sessions started before this step have none and keep strict single use.
        await db.schema.alterTable("sessions").addColumn("chain_key", "text").execute();
      },
    },
    "0006_api_tokens": {
      async up(db: Kysely<any>) {
        // Scoped API tokens (src/api-tokens/): only the SHA-256 of each token's secret is stored.
        await db.schema
          .createTable("api_tokens")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("scopes", "text", (c) => c.notNull())
          .addColumn("secret_hash", "text", (c) => c.notNull())
          .addColumn("created_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("expires_at", sql.raw(ts), (c) => c.notNull())
          .addColumn("last_used_at", sql.raw(ts))
          .addColumn("revoked_at", sql.raw(ts))
          .addColumn("revoked_reason", "text")
          .execute();
        await db.schema
          .createIndex("api_tokens_user_idx")
          .on("api_tokens")
          .columns(["user_id", "created_at"])
          .execute();
        await db.schema.createIndex("api_tokens_revoked_at_idx").on("api_tokens").column("revoked_at").execute();
      },
    },
    // Named after 0006 (which shipped first): Kysely refuses a new step that sorts before one that ran.
    "0007_account_control": {
      async up(db: Kysely<any>) {
        await db.schema.alterTable("users").addColumn("disabled_at", sql.raw(ts)).execute();
        // Tombstones of the sessions and API tokens of deleted accounts (see RevokedCredentialsTable).
        await db.schema
          .createTable("revoked_credentials")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("revoked_at", sql.raw(ts), (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("revoked_credentials_revoked_at_idx")
          .on("revoked_credentials")
          .column("revoked_at")
          .execute();
      },
    },
    "0008_keyset_list_indexes": {
      async up(db: Kysely<any>) {
        // Every list is read in the order of one of these indexes, so a page (`first` after a
        // keyset `after`, or a bounded `offset`) reads only its own rows, at any table size.
        // Plain CREATE INDEX, in the migration's transaction: on PostgreSQL it blocks writes to the
        // table while it builds. CONCURRENTLY cannot run in a transaction, and Kysely's migrator
        // takes its lock with pg_advisory_xact_lock, which only a transaction holds, so turning its
        // transactions off would let two instances migrate at once. A large deployment can build
        // these beforehand with CREATE INDEX CONCURRENTLY under the same names: `if not exists`
        // then skips them here (docs/operations.md).
        await db.schema
          .createIndex("posts_author_created_id_idx")
          .ifNotExists()
          .on("posts")
          .columns(["author_id", "created_at", "id"])
          .execute();
        // Its prefix: the new index serves every query it served, the cascade from users included.
        await db.schema.dropIndex("posts_author_idx").ifExists().execute();
        await db.schema
          .createIndex("users_created_id_idx")
          .ifNotExists()
          .on("users")
          .columns(["created_at", "id"])
          .execute();
        // Only live rows are listed; ended sessions and revoked tokens stay out of these indexes,
        // so however many a user has ended, a page never steps over them.
        await db.schema
          .createIndex("sessions_user_live_idx")
          .ifNotExists()
          .on("sessions")
          .columns(["user_id", "created_at", "id"])
          .where(sql.ref("revoked_at"), "is", null)
          .execute();
        await db.schema
          .createIndex("api_tokens_user_live_idx")
          .ifNotExists()
          .on("api_tokens")
          .columns(["user_id", "created_at", "id"])
          .where(sql.ref("revoked_at"), "is", null)
          .execute();
        // auditEvents filtered by type or by user (unfiltered, it reads audit_events_at_idx).
        await db.schema
          .createIndex("audit_events_type_at_idx")
          .ifNotExists()
          .on("audit_events")
          .columns(["type", "at", "id"])
          .execute();
        await db.schema
          .createIndex("audit_events_user_at_idx")
          .ifNotExists()
          .on("audit_events")
          .columns(["user_id", "at", "id"])
          .execute();
      },
    },
    "0009_email_accounts": emailAccounts(ts),
    "0010_multi_factor": multiFactor(ts),
    "0011_retention_indexes": retentionIndexes(),
    "0012_active_admins_index": activeAdminsIndex(),
  };
  return { getMigrations: async () => migrations };
}
