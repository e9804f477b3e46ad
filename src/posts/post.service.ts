import { randomUUID } from "node:crypto";

import type { Logger } from "pino";

import type { Principal } from "../access/principal.js";
import { Role } from "../access/roles.js";
import { BadUserInputError, ErrorReason, ForbiddenError, NotFoundError } from "../errors.js";
import { requestBatcher } from "../graphql/loaders.js";
import { type Page, pageOf, unknownAfter } from "../graphql/pagination.js";
import type { FloodLimit } from "../rate-limits/index.js";
import { POSTS_DEFAULT, USER_POSTS_DEFAULT } from "./post.input.js";
import type { PostStore } from "./post.store.js";
import type { Post } from "./post.type.js";
import type { PostEvents } from "./post-events.js";

/** The most posts `postCreated(after)` replays; a client away for longer reloads `posts` instead. */
export const REPLAY_MAX = 100;

/** The blog's rules: anyone reads, signed-in users write, only the author or an ADMIN changes a post. */
export class PostService {
  constructor(
    private readonly deps: {
      posts: PostStore;
      /** CREATE_POST_MAX_PER_USER: posts one user may create per hour. */
      creations: FloodLimit;
      /** UPDATE_POST_MAX_PER_USER: updatePost calls one user may make per hour. */
      updates: FloodLimit;
      /** WRITES_MAX_PER_USER: the budget deletePost shares with the user's other writes. */
      writes: FloodLimit;
      /** Where created and updated posts are announced, for subscriptions on every instance. */
      events: PostEvents;
      now: () => number;
      logger: Logger;
    },
  ) {}

  /** A page of every post, newest first; BAD_USER_INPUT when `after` names no post. */
  async list(args: { first?: number | null; offset?: number | null; after?: string | null }): Promise<Post[]> {
    const posts = await this.deps.posts.list(pageOf(args, POSTS_DEFAULT));
    if (!posts) throw unknownAfter("post");
    return posts;
  }

  /**
   * What `postCreated(after)` replays before going live: the posts created after the post `after`,
   * oldest first, at most `limit` (and {@link REPLAY_MAX}); BAD_USER_INPUT when `after` names no post.
   */
  async createdAfter(after: string, limit: number = REPLAY_MAX): Promise<Post[]> {
    const posts = await this.deps.posts.listCreatedAfter(after, Math.min(limit, REPLAY_MAX));
    if (!posts) throw unknownAfter("post");
    return posts;
  }

  async get(id: string): Promise<Post | undefined> {
    return this.deps.posts.findById(id);
  }

  /**
   * A page of one author's posts, newest first; `first` defaults to 20 and `offset` to 0, and
   * BAD_USER_INPUT when `after` names no post. The calls of one request (`scope`, its context) in
   * the same tick share one query per distinct page, so `users { posts { … } }` does not query
   * once per user.
   */
  listByAuthorInRequest(
    scope: object,
    authorId: string,
    args: { first?: number | null; offset?: number | null; after?: string | null } = {},
  ): Promise<Post[]> {
    return this.loadAuthorPage(scope, { authorId, ...pageOf(args, USER_POSTS_DEFAULT) });
  }

  private readonly loadAuthorPage = requestBatcher(
    async (keys: ReadonlyArray<Page & { authorId: string }>): Promise<Array<Post[] | Error>> => {
      // Aliases may ask for different pages in one tick: one query for each page asked for.
      const pageKey = ({ first, offset, after }: Page) => JSON.stringify([first, offset, after ?? null]);
      const pages = new Map<string, { page: Page; authorIds: string[] }>();
      for (const { authorId, ...page } of keys) {
        const group = pages.get(pageKey(page)) ?? { page, authorIds: [] };
        group.authorIds.push(authorId);
        pages.set(pageKey(page), group);
      }
      const results = new Map<string, Map<string, Post[]> | Error>();
      await Promise.all(
        [...pages].map(async ([id, { page, authorIds }]) => {
          const posts = await this.deps.posts.listByAuthors(authorIds, page);
          if (!posts) return void results.set(id, unknownAfter("post"));
          const byAuthor = new Map(authorIds.map((authorId) => [authorId, [] as Post[]]));
          // The store returns them newest first, so each author's list stays in that order.
          for (const post of posts) byAuthor.get(post.authorId)?.push(post);
          results.set(id, byAuthor);
        }),
      );
      return keys.map(({ authorId, ...page }) => {
        const result = results.get(pageKey(page))!;
        return result instanceof Error ? result : result.get(authorId)!;
      });
    },
  );

  /** RATE_LIMITED once the actor has created CREATE_POST_MAX_PER_USER posts within the hour. */
  async create(actor: Principal, input: { title: string; body: string }): Promise<Post> {
    const post = await this.deps.creations.spend(actor.userId, () =>
      this.deps.posts.insert({
        id: randomUUID(),
        authorId: actor.userId,
        title: input.title,
        body: input.body,
        now: new Date(this.deps.now()),
      }),
    );
    this.deps.events.created(post);
    return post;
  }

  /**
   * NOT_FOUND when missing, FORBIDDEN unless the actor wrote it or is an ADMIN. RATE_LIMITED once
   * the actor has made UPDATE_POST_MAX_PER_USER updates within the hour (every update is an event
   * that each `postUpdated` subscriber runs its selection for); refused updates do not count.
   */
  async update(actor: Principal, id: string, input: { title?: string | null; body?: string | null }): Promise<Post> {
    const changes = {
      ...(input.title != null ? { title: input.title } : {}),
      ...(input.body != null ? { body: input.body } : {}),
    };
    if (Object.keys(changes).length === 0) {
      throw new BadUserInputError([{ field: "input", rule: "notEmpty", message: "must change title or body" }]);
    }
    const updated = await this.deps.updates.spend(actor.userId, async () => {
      await this.authorize(actor, id);
      const post = await this.deps.posts.update(id, changes, new Date(this.deps.now()));
      if (!post) throw new NotFoundError("Post", id);
      return post;
    });
    this.deps.events.updated(updated);
    return updated;
  }

  /**
   * NOT_FOUND when missing, FORBIDDEN unless the actor wrote it or is an ADMIN; charged to the
   * actor's WRITES_MAX_PER_USER (refused deletes are not).
   */
  async delete(actor: Principal, id: string): Promise<true> {
    await this.deps.writes.spend(actor.userId, async () => {
      await this.authorize(actor, id);
      if (!(await this.deps.posts.delete(id))) throw new NotFoundError("Post", id);
    });
    this.deps.logger.info({ actorId: actor.userId, postId: id }, "post deleted");
    return true;
  }

  private async authorize(actor: Principal, id: string): Promise<void> {
    const post = await this.deps.posts.findById(id);
    if (!post) throw new NotFoundError("Post", id);
    if (post.authorId !== actor.userId && !actor.roles.includes(Role.ADMIN)) {
      throw new ForbiddenError(ErrorReason.OWNERSHIP, "Only the author of this post or an ADMIN may change it.");
    }
  }
}
