import { EventEmitter, on } from "node:events";

import type { PubSub } from "type-graphql";

/**
 * The events subscriptions listen to, as type-graphql's `@Subscription` reads them: a topic, and
 * optionally an id within it (`publish(topic, id, payload)` reaches only `subscribe(topic, id)`).
 */
export type EventBus = PubSub;

/** The channel a topic, or one id within it, is delivered on. */
export function channelOf(topic: string, id?: unknown): string {
  return id === undefined ? topic : `${topic}:${JSON.stringify(id)}`;
}

/**
 * The in-process event bus: an EventEmitter, with one async iterator per subscriber (Node's
 * `events.on`). Enough for one instance (SQLite); across instances, PostgreSQL's bus forwards
 * into one of these.
 */
export class LocalPubSub implements EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per active subscription: the per-connection cap bounds them, not a fixed number.
    this.emitter.setMaxListeners(0);
  }

  /** `publish(topic, payload)`, or `publish(topic, id, payload)` for the subscribers of that id only. */
  publish(topic: string, ...args: unknown[]): void {
    if (args.length > 1) this.emitter.emit(channelOf(topic, args[0]), args[1]);
    else this.emitter.emit(topic, args[0]);
  }

  subscribe(topic: string, id?: unknown): AsyncIterable<unknown> {
    const events = on(this.emitter, channelOf(topic, id));
    // A hand-written iterator rather than an async generator: `return()` on a generator waiting for
    // its next event would itself wait for that event, so an ended subscription would keep its
    // listener until the topic's next publish. `events.on`'s own return() removes it at once.
    const iterator: AsyncIterableIterator<unknown> = {
      async next() {
        const result = await events.next();
        return result.done ? result : { done: false, value: (result.value as unknown[])[0] };
      },
      async return() {
        await events.return?.();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** How many subscribers listen on a channel; for tests and diagnostics. */
  listenerCount(topic: string, id?: unknown): number {
    return this.emitter.listenerCount(channelOf(topic, id));
  }
}
