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
   * At most `limit` events after the one keyed `after`, oldest first; rejects with a client error
   * when `after` names nothing (that error becomes the subscription's error message).
   */
  read(after: string, limit: number): Promise<readonly unknown[]>;
  /** What identifies an event, so that one both read and received live is delivered once. */
  key(event: unknown): string;
  /** The most events one resume replays; past them the subscription goes live. */
  readonly max: number;
}

/**
 * `bus`, with the topics in `replays` resumable: subscribing to such a topic with a
 * {@link ResumeAfter} id listens live first, then reads what was missed, delivers it, and then
 * the live events, skipping any it has just replayed. Listening before reading is what leaves no
 * gap: an event published while a read runs waits in the live queue, and is either in the read
 * (skipped when it comes live) or after it (delivered). Order is the replay's (oldest first), then
 * the bus's. Replays are read `pageSize` events at a time, the next page only once the last is
 * delivered, so a resuming subscriber holds no more events than its live queue may
 * (SUBSCRIPTION_MAX_QUEUED_EVENTS), however many subscribers resume at once.
 */
export function withReplays(bus: EventBus, replays: Readonly<Record<string, Replay>>, pageSize: number): EventBus {
  return {
    publish: (topic, ...args) => bus.publish(topic, ...args),
    subscribe: (topic, id) => {
      if (!(id instanceof ResumeAfter)) return bus.subscribe(topic, id);
      const replay = replays[topic];
      if (!replay) throw new Error(`The topic ${topic} cannot be resumed: no replay is registered for it.`);
      return replayThenLive(bus.subscribe(topic), id.after, replay, Math.max(1, pageSize));
    },
  };
}

/**
 * The replayed events, page by page, then the live ones without those already replayed nor the
 * one named `after` (which the client has; on PostgreSQL its event may still be on its way to this
 * instance when the client resumes on it). The first read starts at the first `next()` (graphql-js
 * asks for it at once); a failed read ends the live subscription too and rejects that `next()`,
 * which graphql-ws answers with an error message for this subscription only.
 */
function replayThenLive(
  live: AsyncIterable<unknown>,
  after: string,
  replay: Replay,
  pageSize: number,
): AsyncIterableIterator<unknown> {
  const liveEvents = live[Symbol.asyncIterator]();
  // Keys of replayed events not yet seen live; each is skipped once, then forgotten.
  const pending = new Set<string>([after]);
  let page: readonly unknown[] = [];
  let position = 0;
  let cursor: string | undefined = after;
  let replayed = 0;
  let ended = false;
  const end = async (): Promise<IteratorResult<unknown>> => {
    ended = true;
    await liveEvents.return?.();
    return { done: true, value: undefined };
  };
  const readPage = async (from: string): Promise<void> => {
    const limit = Math.min(pageSize, replay.max - replayed);
    try {
      page = await replay.read(from, limit);
    } catch (error) {
      await end();
      throw error;
    }
    position = 0;
    replayed += page.length;
    for (const event of page) pending.add(replay.key(event));
    // A short page, or the cap reached: nothing more to replay.
    cursor = page.length < limit || replayed >= replay.max ? undefined : replay.key(page[page.length - 1]);
  };
  const iterator: AsyncIterableIterator<unknown> = {
    next: async () => {
      if (ended) return { done: true, value: undefined };
      if (position >= page.length && cursor !== undefined) await readPage(cursor);
      if (ended) return { done: true, value: undefined };
      if (position < page.length) return { done: false, value: page[position++] };
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
