import { EventEmitter } from "node:events";

import type { PubSub } from "type-graphql";

/**
 * The events subscriptions listen to, as type-graphql's `@Subscription` reads them: a topic, and
 * optionally an id within it (`publish(topic, id, payload)` reaches only `subscribe(topic, id)`).
 */
export type EventBus = PubSub;

/** Events kept for a subscriber that has not taken them yet, by default; past this, the oldest are dropped. */
export const MAX_QUEUED_EVENTS = 20;

/**
 * Events published and not yet handed to their subscribers (the bus's own queue, before each
 * subscriber's): past this, the oldest waiting event is dropped, whole, for every subscriber.
 */
export const MAX_PENDING_EVENTS = 1000;

/**
 * Subscribers an event is handed to in one turn of the event loop; the next slice waits for
 * `setImmediate`, so that HTTP requests and socket I/O are served between slices.
 */
export const DELIVERY_SLICE = 256;

export interface LocalPubSubOptions {
  /** Events kept per subscriber (SUBSCRIPTION_MAX_QUEUED_EVENTS); default {@link MAX_QUEUED_EVENTS}. */
  maxQueuedEvents?: number;
  /** Told each time a subscriber's oldest event is dropped to make room (a metric); must not throw. */
  onDropped?: () => void;
  /** Published events waiting for their turn; default {@link MAX_PENDING_EVENTS}. */
  maxPendingEvents?: number;
  /** Told each time a published event is dropped because that many wait (a metric); must not throw. */
  onPendingDropped?: () => void;
  /** Subscribers handed an event per turn of the event loop; default {@link DELIVERY_SLICE}. */
  sliceSize?: number;
}

/** The channel a topic, or one id within it, is delivered on. */
export function channelOf(topic: string, id?: unknown): string {
  return id === undefined ? topic : `${topic}:${JSON.stringify(id)}`;
}

type Listener = (payload: unknown) => void;

/** The event being handed out: its subscribers as they were when its turn came, and how far it got. */
interface Delivery {
  listeners: Listener[];
  payload: unknown;
  position: number;
}

/**
 * The in-process event bus: an EventEmitter, with one async iterator per subscriber that queues
 * at most `maxQueuedEvents` events it has not taken yet (a subscriber waiting for a delivery slot
 * or a slow socket; the newest events win, since a post's latest state supersedes the ones before).
 *
 * Publishing only enqueues the event, once, whatever the number of subscribers: the mutation that
 * published answers before any subscriber hears of it. The events are handed out later, in the
 * order they were published, `sliceSize` subscribers per turn of the event loop (each subscriber's
 * iterator and what type-graphql and graphql-js chain onto it run in that turn), so that a post
 * with 10,000 subscribers costs the requests beside it one slice at a time, not the whole loop.
 * An event reaches the subscribers listening when its turn comes. At most `maxPendingEvents` wait;
 * past that the oldest waiting one is dropped (`onPendingDropped`). Enough for one instance
 * (SQLite); across instances, PostgreSQL's bus forwards into one of these.
 */
export class LocalPubSub implements EventBus {
  private readonly emitter = new EventEmitter();
  private readonly maxQueuedEvents: number;
  private readonly onDropped: () => void;
  private readonly maxPendingEvents: number;
  private readonly onPendingDropped: () => void;
  private readonly sliceSize: number;
  private readonly pending: Array<{ channel: string; payload: unknown }> = [];
  private current: Delivery | undefined;
  private scheduled = false;

  constructor(options: LocalPubSubOptions = {}) {
    this.maxQueuedEvents = options.maxQueuedEvents ?? MAX_QUEUED_EVENTS;
    this.onDropped = options.onDropped ?? (() => undefined);
    this.maxPendingEvents = Math.max(1, options.maxPendingEvents ?? MAX_PENDING_EVENTS);
    this.onPendingDropped = options.onPendingDropped ?? (() => undefined);
    this.sliceSize = Math.max(1, options.sliceSize ?? DELIVERY_SLICE);
    // One listener per active subscription: the per-connection cap bounds them, not a fixed number.
    this.emitter.setMaxListeners(0);
  }

  /** `publish(topic, payload)`, or `publish(topic, id, payload)` for the subscribers of that id only. */
  publish(topic: string, ...args: unknown[]): void {
    const channel = args.length > 1 ? channelOf(topic, args[0]) : topic;
    // Nobody listens: nothing to hand out.
    if (this.emitter.listenerCount(channel) === 0) return;
    if (this.pending.length >= this.maxPendingEvents) {
      this.pending.shift();
      this.onPendingDropped();
    }
    this.pending.push({ channel, payload: args.length > 1 ? args[1] : args[0] });
    this.schedule();
  }

  /** Events published and not yet handed to all their subscribers; for tests and diagnostics. */
  get pendingEvents(): number {
    return this.pending.length + (this.current ? 1 : 0);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.deliverSlice());
  }

  /** Hands out up to `sliceSize` deliveries, then leaves the rest for the next turn. */
  private deliverSlice(): void {
    this.scheduled = false;
    let budget = this.sliceSize;
    while (budget > 0) {
      if (!this.current) {
        const next = this.pending.shift();
        if (!next) return;
        this.current = {
          listeners: this.emitter.listeners(next.channel) as Listener[],
          payload: next.payload,
          position: 0,
        };
      }
      const delivery = this.current;
      const end = Math.min(delivery.listeners.length, delivery.position + budget);
      budget -= end - delivery.position;
      while (delivery.position < end) delivery.listeners[delivery.position++]!(delivery.payload);
      if (delivery.position >= delivery.listeners.length) this.current = undefined;
    }
    if (this.current || this.pending.length > 0) this.schedule();
  }

  subscribe(topic: string, id?: unknown): AsyncIterable<unknown> {
    const channel = channelOf(topic, id);
    // Events not yet taken by the subscriber (its socket is slow), oldest first.
    const queue: unknown[] = [];
    let waiting: ((result: IteratorResult<unknown>) => void) | undefined;
    let done = false;
    const listener = (payload: unknown) => {
      // Ended after this event's turn began (its subscribers were taken then): nothing to keep.
      if (done) return;
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
