import { EventEmitter } from "node:events";

import type { PubSub } from "type-graphql";

/**
 * The events subscriptions listen to, as type-graphql's `@Subscription` reads them: a topic, and
 * optionally an id within it (`publish(topic, id, payload)` reaches only `subscribe(topic, id)`).
 */
export type EventBus = PubSub;

/** Events kept for a subscriber that has not taken them yet, by default; past this, the oldest are dropped. */
export const MAX_QUEUED_EVENTS = 20;

export interface LocalPubSubOptions {
  /** Events kept per subscriber (SUBSCRIPTION_MAX_QUEUED_EVENTS); default {@link MAX_QUEUED_EVENTS}. */
  maxQueuedEvents?: number;
  /** Told each time a subscriber's oldest event is dropped to make room (a metric); must not throw. */
  onDropped?: () => void;
}

/** The channel a topic, or one id within it, is delivered on. */
export function channelOf(topic: string, id?: unknown): string {
  return id === undefined ? topic : `${topic}:${JSON.stringify(id)}`;
}

/**
 * The in-process event bus: an EventEmitter, with one async iterator per subscriber that queues
 * at most `maxQueuedEvents` events it has not taken yet (a subscriber waiting for a delivery slot
 * or a slow socket; the newest events win, since a post's latest state supersedes the ones before).
 * Publishing only queues: it never waits for, nor runs, a subscriber's selection. Enough for one
 * instance (SQLite); across instances, PostgreSQL's bus forwards into one of these.
 */
export class LocalPubSub implements EventBus {
  private readonly emitter = new EventEmitter();
  private readonly maxQueuedEvents: number;
  private readonly onDropped: () => void;

  constructor(options: LocalPubSubOptions = {}) {
    this.maxQueuedEvents = options.maxQueuedEvents ?? MAX_QUEUED_EVENTS;
    this.onDropped = options.onDropped ?? (() => undefined);
    // One listener per active subscription: the per-connection cap bounds them, not a fixed number.
    this.emitter.setMaxListeners(0);
  }

  /** `publish(topic, payload)`, or `publish(topic, id, payload)` for the subscribers of that id only. */
  publish(topic: string, ...args: unknown[]): void {
    if (args.length > 1) this.emitter.emit(channelOf(topic, args[0]), args[1]);
    else this.emitter.emit(topic, args[0]);
  }

  subscribe(topic: string, id?: unknown): AsyncIterable<unknown> {
    const channel = channelOf(topic, id);
    // Events not yet taken by the subscriber (its socket is slow), oldest first.
    const queue: unknown[] = [];
    let waiting: ((result: IteratorResult<unknown>) => void) | undefined;
    let done = false;
    const listener = (payload: unknown) => {
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ done: false, value: payload });
        return;
      }
      queue.push(payload);
      if (queue.length > this.maxQueuedEvents) {
        queue.shift();
        this.onDropped();
      }
    };
    this.emitter.on(channel, listener);
    // A hand-written iterator, not `events.on` (whose two fixed queues cost about 32 KB per
    // subscriber on Node 20) nor an async generator (whose `return()` would wait for the next event
    // while it waits for one, so an ended subscription would keep its listener until then).
    const iterator: AsyncIterableIterator<unknown> = {
      next: () => {
        if (queue.length > 0) return Promise.resolve({ done: false, value: queue.shift() });
        if (done) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => {
        if (!done) {
          done = true;
          this.emitter.off(channel, listener);
          queue.length = 0;
          waiting?.({ done: true, value: undefined });
          waiting = undefined;
        }
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** How many subscribers listen on a channel; for tests and diagnostics. */
  listenerCount(topic: string, id?: unknown): number {
    return this.emitter.listenerCount(channelOf(topic, id));
  }
}
