import { type Kysely, sql } from "kysely";
import type pg from "pg";
import type { Logger } from "pino";

import { PgListener } from "../db/pg-listener.js";
import type { Database } from "../db/schema.js";
import { OutageLog } from "../db/unavailable.js";
import type { EventBus } from "../graphql/pub-sub.js";
import type { PostStore } from "./post.store.js";
import type { Post } from "./post.type.js";

/** The topics of post events: `postCreated` listens to CREATED, `postUpdated(id)` to UPDATED with the post's id. */
export const PostTopic = {
  CREATED: "POST_CREATED",
  UPDATED: "POST_UPDATED",
} as const;
type PostTopic = (typeof PostTopic)[keyof typeof PostTopic];

/**
 * Where PostService announces created and updated posts, for the subscribers of every instance.
 * Never throws and never waits: an event that cannot be sent is logged, and the write it announces
 * stands.
 */
export interface PostEvents {
  created(post: Post): void;
  updated(post: Post): void;
}

/** One instance (SQLite): straight into this instance's event bus. */
export class LocalPostEvents implements PostEvents {
  constructor(private readonly bus: EventBus) {}

  created(post: Post): void {
    this.bus.publish(PostTopic.CREATED, post);
  }

  updated(post: Post): void {
    this.bus.publish(PostTopic.UPDATED, post.id, post);
  }
}

/**
 * Every instance on one PostgreSQL database: a post event is a NOTIFY on the schema's
 * `post_events_<schema>` channel carrying only the topic and the post's id (a post's body can be
 * larger than NOTIFY's 8,000 bytes); each instance, the sender included, LISTENs, reads the post
 * once and publishes it to its own subscribers. NOTIFY is sent after the write commits, so the read
 * sees it. Notifications sent while an instance's listener is reconnecting are not replayed: a
 * subscription is a live feed, not a log.
 */
export class PostgresPostEvents implements PostEvents {
  private readonly channel: string;
  private readonly listener: PgListener;
  private readonly sendOutage: OutageLog;

  constructor(
    private readonly deps: {
      db: Kysely<Database>;
      connection: pg.ClientConfig;
      schema: string | undefined;
      bus: EventBus;
      posts: PostStore;
      logger: Logger;
    },
  ) {
    this.channel = `post_events_${deps.schema ?? "public"}`;
    this.sendOutage = new OutageLog(deps.logger, "sending post events (NOTIFY)");
    this.listener = new PgListener({
      connection: deps.connection,
      channels: [this.channel],
      onNotification: (_channel, payload) => void this.deliver(payload),
      outage: new OutageLog(deps.logger, "the post events listener's PostgreSQL connection"),
    });
  }

  /** Whether the LISTEN connection is up; for tests and diagnostics. */
  get listening(): boolean {
    return this.listener.listening;
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }

  created(post: Post): void {
    this.send(PostTopic.CREATED, post.id);
  }

  updated(post: Post): void {
    this.send(PostTopic.UPDATED, post.id);
  }

  private send(topic: PostTopic, id: string): void {
    sql`select pg_notify(${this.channel}, ${JSON.stringify({ topic, id })})`.execute(this.deps.db).then(
      () => this.sendOutage.recovered(),
      (error: unknown) => this.sendOutage.failed(error),
    );
  }

  private async deliver(payload: string | undefined): Promise<void> {
    let event: { topic?: unknown; id?: unknown };
    try {
      event = JSON.parse(payload ?? "") as typeof event;
    } catch {
      return;
    }
    if (typeof event.id !== "string" || (event.topic !== PostTopic.CREATED && event.topic !== PostTopic.UPDATED))
      return;
    let post;
    try {
      post = await this.deps.posts.findById(event.id);
    } catch (error) {
      this.deps.logger.warn({ err: error, postId: event.id }, "a post event was dropped: reading the post failed");
      return;
    }
    // Deleted since: nothing to tell.
    if (!post) return;
    if (event.topic === PostTopic.CREATED) this.deps.bus.publish(PostTopic.CREATED, post);
    else this.deps.bus.publish(PostTopic.UPDATED, post.id, post);
  }
}
