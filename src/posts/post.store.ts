import { type Kysely, type Selectable, sql } from "kysely";

import { containsNul } from "../db/database.js";
import { keysetPage, type KeysetPosition } from "../db/keyset.js";
import { type Database, type Dialect, type PostsTable, toDate } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";
import type { Post } from "./post.type.js";

/** Every list of posts: newest first. */
const NEWEST = { column: "created_at", direction: "desc" } as const;
const OLDEST = { column: "created_at", direction: "asc" } as const;

/**
 * Authors one SQLite query pages at most, one UNION ALL arm each (SQLite allows 500 arms); a
 * batch of more authors takes several queries.
 */
const AUTHORS_PER_QUERY = 100;

/** The only code that reads or writes the `posts` table, but for deleting an account (accounts/account.store.ts). */
export class PostStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(post: { id: string; authorId: string; title: string; body: string; now: Date }): Promise<Post> {
    const at = post.now.toISOString();
    const row = await this.db
      .insertInto("posts")
      .values({
        id: post.id,
        author_id: post.authorId,
        title: post.title,
        body: post.body,
        created_at: at,
        updated_at: at,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toPost(row);
  }

  async findById(id: string): Promise<Post | undefined> {
    if (containsNul(id)) return undefined;
    const row = await this.db.selectFrom("posts").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toPost(row);
  }

  /**
   * A page of every post, newest first: after the post `page.after` when given (seeking through
   * posts_created_at_idx), else skipping `page.offset`. Undefined when no post has the id `after`.
   */
  async list(page: Page): Promise<Post[] | undefined> {
    const after = page.after === undefined ? undefined : await this.positionOf(page.after);
    if (page.after !== undefined && after === undefined) return undefined;
    const rows = await keysetPage(this.db.selectFrom("posts").selectAll(), page, after, NEWEST).execute();
    return rows.map(toPost);
  }

  /**
   * At most `limit` posts created after the post `afterId`, oldest first (seeking through
   * posts_created_at_idx, in the order `posts` lists them, reversed); undefined when no post has
   * that id. What `postCreated(after)` replays.
   */
  async listCreatedAfter(afterId: string, limit: number): Promise<Post[] | undefined> {
    const after = await this.positionOf(afterId);
    if (after === undefined) return undefined;
    const query = keysetPage(this.db.selectFrom("posts").selectAll(), { first: limit, offset: 0 }, after, OLDEST);
    return (await query.execute()).map(toPost);
  }

  /**
   * The same page of each of these authors' posts, newest first, after the post `page.after` when
   * given (any post's place in that order) or skipping `page.offset` (ids with a NUL byte match
   * nothing); undefined when no post has the id `after`. Each author's page is its own LIMITed
   * seek in posts_author_created_id_idx, so an author's other posts are never read: a LATERAL join
   * over the ids on PostgreSQL, one LIMITed subquery per author in a UNION ALL on SQLite.
   */
  async listByAuthors(authorIds: readonly string[], page: Page): Promise<Post[] | undefined> {
    const after = page.after === undefined ? undefined : await this.positionOf(page.after);
    if (page.after !== undefined && after === undefined) return undefined;
    const wanted = [...new Set(authorIds)].filter((id) => !containsNul(id));
    if (wanted.length === 0) return [];
    if (this.dialect === "postgres") {
      const keyset = after ? sql`and (p.created_at, p.id) < (${after.at}, ${after.id})` : sql``;
      const { rows } = await sql<Selectable<PostsTable>>`
        select p.* from unnest(${wanted}::text[]) as a(author_id)
        cross join lateral (
          select * from posts p where p.author_id = a.author_id ${keyset}
          order by p.created_at desc, p.id desc limit ${page.first} offset ${page.offset}
        ) as p
        order by p.created_at desc, p.id desc`.execute(this.db);
      return rows.map(toPost);
    }
    const rows: Array<Selectable<PostsTable>> = [];
    for (let i = 0; i < wanted.length; i += AUTHORS_PER_QUERY) {
      const arms = wanted
        .slice(i, i + AUTHORS_PER_QUERY)
        .map((authorId) =>
          this.db
            .selectFrom((db) =>
              keysetPage(db.selectFrom("posts").selectAll().where("author_id", "=", authorId), page, after, NEWEST).as(
                "page",
              ),
            )
            .selectAll(),
        );
      rows.push(
        ...(await arms
          .slice(1)
          .reduce((query, arm) => query.unionAll(arm), arms[0]!)
          .execute()),
      );
    }
    // Sorted here rather than by an ORDER BY on the union, for which SQLite sorts each arm's page
    // again in a temporary B-tree. SQLite's timestamps are ISO text, which sorts as time does.
    rows.sort((a, b) => compareText(b.created_at as string, a.created_at as string) || compareText(b.id, a.id));
    return rows.map(toPost);
  }

  /** Where the post `id` sits in the newest-first order; undefined when there is no such post. */
  private async positionOf(id: string): Promise<KeysetPosition | undefined> {
    if (containsNul(id)) return undefined;
    return this.db.selectFrom("posts").select(["created_at as at", "id"]).where("id", "=", id).executeTakeFirst();
  }

  /** Applies the given changes; undefined when the post no longer exists. */
  async update(id: string, changes: { title?: string; body?: string }, now: Date): Promise<Post | undefined> {
    if (containsNul(id)) return undefined;
    const row = await this.db
      .updateTable("posts")
      .set({ ...changes, updated_at: now.toISOString() })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
    return row && toPost(row);
  }

  /** True when a post was deleted. */
  async delete(id: string): Promise<boolean> {
    if (containsNul(id)) return false;
    const result = await this.db.deleteFrom("posts").where("id", "=", id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toPost(row: Selectable<PostsTable>): Post {
  return {
    id: row.id,
    authorId: row.author_id,
    title: row.title,
    body: row.body,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
