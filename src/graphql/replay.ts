import type { EventBus } from "./pub-sub.js";

/**
 * A subscription's topic id that asks for what it missed: the events after the one whose key is
 * `after`, replayed from storage, then the live ones. A resolver returns it from `topicId`
 * (`postCreated(after: ID)`); the bus of {@link withReplays} answers it.
 */
export class ResumeAfter {
  constructor(readonly after: string) {}
}

/** How one topic's missed events are found again. */
export interface Replay {
  /**
   * The events after the one keyed `after`, oldest first and bounded; rejects with a client error
   * when `after` names nothing (that error becomes the subscription's error message).
   */
  read(after: string): Promise<readonly unknown[]>;
  /** What identifies an event, so that one both read and received live is delivered once. */
  key(event: unknown): string;
}

/**
 * `bus`, with the topics in `replays` resumable: subscribing to such a topic with a
 * {@link ResumeAfter} id listens live first, then reads what was missed, delivers it, and then
 * the live events, skipping any it has just replayed. Listening before reading is what leaves no
 * gap: an event published while the read runs waits in the live queue, and is either in the read
 * (skipped when it comes live) or after it (delivered). Order is the replay's (oldest first), then
 * the bus's.
 */
export function withReplays(bus: EventBus, replays: Readonly<Record<string, Replay>>): EventBus {
  return {
    publish: (topic, ...args) => bus.publish(topic, ...args),
    subscribe: (topic, id) => {
      if (!(id instanceof ResumeAfter)) return bus.subscribe(topic, id);
      const replay = replays[topic];
      if (!replay) throw new Error(`The topic ${topic} cannot be resumed: no replay is registered for it.`);
      return replayThenLive(bus.subscribe(topic), id.after, replay);
    },
  };
}

/**
 * The replayed events, then the live ones without those already replayed nor the one named
 * `after` (which the client has; on PostgreSQL its event may still be on its way to this
 * instance when the client resumes on it). The read starts at the
 * first `next()` (graphql-js asks for it at once); a failed read ends the live subscription too and
 * rejects that `next()`, which graphql-ws answers with an error message for this subscription only.
 */
function replayThenLive(live: AsyncIterable<unknown>, after: string, replay: Replay): AsyncIterableIterator<unknown> {
  const liveEvents = live[Symbol.asyncIterator]();
  let replayed: readonly unknown[] | undefined;
  // Keys of replayed events not yet seen live; each is skipped once, then forgotten.
  let pending = new Set<string>();
  let position = 0;
  let ended = false;
  const end = async (): Promise<IteratorResult<unknown>> => {
    ended = true;
    await liveEvents.return?.();
    return { done: true, value: undefined };
  };
  const iterator: AsyncIterableIterator<unknown> = {
    next: async () => {
      if (ended) return { done: true, value: undefined };
      if (replayed === undefined) {
        try {
          replayed = await replay.read(after);
        } catch (error) {
          await end();
          throw error;
        }
        pending = new Set([after, ...replayed.map((event) => replay.key(event))]);
      }
      if (ended) return { done: true, value: undefined };
      if (position < replayed.length) return { done: false, value: replayed[position++] };
      for (;;) {
        const result = await liveEvents.next();
        if (result.done || !pending.delete(replay.key(result.value))) return result;
      }
    },
    return: end,
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
