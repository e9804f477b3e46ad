// The posts feature's face: the blog (posts, their authors' lists, their subscriptions) and its build.
import { postgresConnectionOptions } from "../db/database.js";
import { type Basics, defineFeature } from "../feature.js";
import type { EventBus } from "../graphql/pub-sub.js";
import type { Replay } from "../graphql/replay.js";
import { type CounterStore, createFloodLimit, type FloodLimit } from "../rate-limits/index.js";
import type { UserService } from "../users/index.js";
import { PostResolver } from "./post.resolver.js";
import { PostService, REPLAY_MAX } from "./post.service.js";
import { PostStore } from "./post.store.js";
import type { Post } from "./post.type.js";
import { LocalPostEvents, type PostEvents, PostgresPostEvents, PostTopic } from "./post-events.js";
import { UserPostsResolver } from "./user-posts.resolver.js";

export { PostService } from "./post.service.js";
export { Post } from "./post.type.js";

/** What the posts feature is built from. */
export interface PostsNeeds extends Basics {
  readonly counters: CounterStore;
  readonly events: EventBus;
  readonly writes: FloodLimit;
  /** Post.author's lookups. */
  readonly users: UserService;
}

/**
 * Where created and updated posts are announced. Subscribers listen on this instance's bus; on
 * PostgreSQL, a server announces through NOTIFY so that every instance's posts reach it.
 */
async function postEventsOf(needs: PostsNeeds, posts: PostStore): Promise<PostEvents> {
  const { config, background, database, events, logger, closer } = needs;
  if (!config.databaseUrl || !background) return new LocalPostEvents(events);
  const pgEvents = new PostgresPostEvents({
    db: database.db,
    connection: postgresConnectionOptions(config),
    schema: config.databaseSchema,
    bus: events,
    posts,
    logger,
  });
  await pgEvents.start();
  closer.add("the post events' listener", () => pgEvents.stop());
  return pgEvents;
}

/** postCreated(after)'s replay: the posts created after the one named, keyed by id. */
function createdReplay(posts: PostService): Replay {
  return {
    read: (after, limit) => posts.createdAfter(after, limit),
    key: (post) => (post as Post).id,
    max: REPLAY_MAX,
  };
}

async function buildPosts(needs: PostsNeeds) {
  const { config, database, counters, metrics, writes, users, now, logger } = needs;
  const creations = await createFloodLimit(
    counters,
    "post:user",
    config.floodLimits.postsPerUserPerHour,
    "Too many posts were created by this account",
    () => metrics.rateLimited("CREATE_POST_MAX_PER_USER"),
  );
  const updates = await createFloodLimit(
    counters,
    "post-update:user",
    config.userBudgets.postUpdatesPerHour,
    "Too many post updates were made by this account",
    () => metrics.rateLimited("UPDATE_POST_MAX_PER_USER"),
  );
  const store = new PostStore(database.db, database.dialect);
  const events = await postEventsOf(needs, store);
  const posts = new PostService({ posts: store, creations, updates, writes, events, now, logger });
  return {
    services: { posts },
    resolvers: [new PostResolver(posts, users), new UserPostsResolver(posts)],
    // postCreated(after): what a reconnecting client missed, read back before the live events.
    replays: { [PostTopic.CREATED]: createdReplay(posts) },
  };
}

export const postsFeature = defineFeature({
  name: "posts",
  resolvers: [PostResolver, UserPostsResolver],
  build: buildPosts,
});
