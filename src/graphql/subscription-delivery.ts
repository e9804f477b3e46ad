import { type ExecutionArgs, type ExecutionResult, createSourceEventStream, execute } from "graphql";

/**
 * A bound on the subscribers' selections executing at once, over every connection: one event
 * published to N subscribers starts at most `concurrency` executions, and the others wait their
 * turn in arrival order. Slots are handed out from `setImmediate`, never in the tick that asked
 * for them, so the mutation that published an event answers before any selection runs, and
 * between two rounds of deliveries the event loop serves HTTP requests and socket I/O: a storm
 * of events delays subscribers, not bystanders.
 */
export class DeliveryLimiter {
  private active = 0;
  private readonly waiting: Array<(release: () => void) => void> = [];
  private scheduled = false;

  /** `onWaiting` hears how many wait after each change (a gauge). */
  constructor(
    private readonly concurrency: number,
    private readonly onWaiting: (count: number) => void = () => undefined,
  ) {}

  /** Resolves with the function that gives the slot back (calling it more than once is harmless). */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.onWaiting(this.waiting.length);
      this.pump();
    });
  }

  /** Executions under way now; for tests and diagnostics. */
  get running(): number {
    return this.active;
  }

  private pump(): void {
    if (this.scheduled || this.waiting.length === 0 || this.active >= this.concurrency) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.active < this.concurrency && this.waiting.length > 0) {
        this.active += 1;
        this.waiting.shift()!(this.releaser());
      }
      this.onWaiting(this.waiting.length);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.pump();
    };
  }
}

/**
 * graphql-js's `subscribe`, with each event's selection executed under `limiter`: the slot is taken
 * when the event arrives and given back when the consumer (graphql-ws) asks for the next one, that
 * is, once the result has been serialised and handed to the socket. So the results being built or
 * waiting to be sent are at most the limiter's concurrency, whatever the number of subscribers.
 * Events a subscriber has not taken yet wait in its queue of the event bus (SUBSCRIPTION_MAX_QUEUED_EVENTS).
 * Each event runs with `contextOfEvent(context)`, a context of its own: the per-request loaders
 * (graphql/loaders.ts) keep their last batch, answers included, for as long as their context
 * lives, which for a subscription's context would be its whole life.
 */
export async function subscribeWithLimit(
  args: ExecutionArgs,
  limiter: DeliveryLimiter,
  contextOfEvent: (subscriptionContext: unknown) => unknown = (context) => context,
): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream;
  const source = stream[Symbol.asyncIterator]();
  let slot: (() => void) | undefined;
  let executing = false;
  let done = false;
  // The result handed out last. graphql-ws's `for await` keeps it referenced while it waits for the
  // next one, which over thousands of idle subscribers is thousands of results (up to the selection
  // cost's worth of post bodies each): once the consumer asks for the next event, the last one has
  // been serialised and sent, so it is emptied.
  let last: { data?: unknown; errors?: unknown; extensions?: unknown } | undefined;
  const release = () => {
    slot?.();
    slot = undefined;
    if (last) {
      delete last.data;
      delete last.errors;
      delete last.extensions;
      last = undefined;
    }
  };
  const finished: IteratorReturnResult<undefined> = { done: true, value: undefined };
  const iterator: AsyncGenerator<ExecutionResult> = {
    async next() {
      release();
      if (done) return finished;
      const event = await source.next();
      if (event.done || done) return finished;
      const granted = await limiter.acquire();
      if (done) {
        granted();
        return finished;
      }
      slot = granted;
      executing = true;
      try {
        const result = await execute({
          ...args,
          rootValue: event.value,
          contextValue: contextOfEvent(args.contextValue),
        });
        if (done) release();
        else last = result;
        return { done: false, value: result };
      } catch (error) {
        release();
        throw error;
      } finally {
        executing = false;
      }
    },
    async return() {
      done = true;
      // An execution under way keeps its slot until it ends (next() gives it back then).
      if (!executing) release();
      await source.return?.();
      return finished;
    },
    async throw(error: unknown) {
      await iterator.return(undefined);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
