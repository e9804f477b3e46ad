import { createSourceEventStream, execute, type ExecutionArgs, type ExecutionResult } from "graphql";

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
  return new LimitedResults(stream[Symbol.asyncIterator](), args, limiter, contextOfEvent);
}

const finished: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** The results of one subscription: each event of `source` executed under a slot of `limiter`. */
class LimitedResults implements AsyncGenerator<ExecutionResult> {
  private slot: (() => void) | undefined;
  private executing = false;
  private done = false;
  // The result handed out last. graphql-ws's `for await` keeps it referenced while it waits for the
  // next one, which over thousands of idle subscribers is thousands of results (up to the selection
  // cost's worth of post bodies each): once the consumer asks for the next event, the last one has
  // been serialised and sent, so it is emptied.
  private last: { data?: unknown; errors?: unknown; extensions?: unknown } | undefined;

  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly args: ExecutionArgs,
    private readonly limiter: DeliveryLimiter,
    private readonly contextOfEvent: (subscriptionContext: unknown) => unknown,
  ) {}

  async next(): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.release();
    if (this.done) return finished;
    const event = await this.source.next();
    if (event.done || this.done) return finished;
    const granted = await this.limiter.acquire();
    if (this.done) {
      granted();
      return finished;
    }
    this.slot = granted;
    this.executing = true;
    try {
      const result = await execute({
        ...this.args,
        rootValue: event.value,
        contextValue: this.contextOfEvent(this.args.contextValue),
      });
      if (this.done) this.release();
      else this.last = result;
      return { done: false, value: result };
    } catch (error) {
      this.release();
      throw error;
    } finally {
      this.executing = false;
    }
  }

  async return(): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.done = true;
    // An execution under way keeps its slot until it ends (next() gives it back then).
    if (!this.executing) this.release();
    await this.source.return?.();
    return finished;
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult, undefined>> {
    await this.return();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private release(): void {
    this.slot?.();
    this.slot = undefined;
    if (this.last) {
      delete this.last.data;
      delete this.last.errors;
      delete this.last.extensions;
      this.last = undefined;
    }
  }
}
