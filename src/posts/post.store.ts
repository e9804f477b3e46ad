import { type Kysely, type Selectable, sql } from "kysely";

import { containsNul } from "../db/database.js";
import { type Database, type PostsTable, toDate } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";
import type { Post } from "./post.type.js";

/** The only code that reads or writes the `posts` table. */
export class PostStore {
  constructor(private readonly db: Kysely<Database>) {}

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

  /** Newest first. */
  async list(page: Page): Promise<Post[]> {
    const rows = await this.db
      .selectFrom("posts")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(page.first)
      .offset(page.offset)
      .execute();
    return rows.map(toPost);
  }

  /**
   * The same page of each of these authors' posts, newest first (ids with a NUL byte match
   * nothing). One query for all of them: each author's posts are numbered newest first, and only
   * the numbers inside the page leave the database.
   */
  async listByAuthors(authorIds: readonly string[], page: Page): Promise<Post[]> {
    const wanted = [...new Set(authorIds)].filter((id) => !containsNul(id));
    if (wanted.length === 0) return [];
    const rows = await this.db
      .selectFrom((db) =>
        db
          .selectFrom("posts")
          .selectAll()
          .select(
            sql<number>`row_number() over (partition by author_id order by created_at desc, id desc)`.as("position"),
          )
          .where("author_id", "in", wanted)
          .as("numbered"),
      )
      .selectAll()
      .where("position", ">", page.offset)
      .where("position", "<=", page.offset + page.first)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .execute();
    return rows.map(toPost);
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
