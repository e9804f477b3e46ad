/** How often the housekeeping tasks run (deleting old audit events, expired counters, ended sessions). */
export const HOUSEKEEPING_INTERVAL_MS = 60 * 60 * 1000;

/** A part's way to let go of what it holds: timers, connections, worker threads, buffered writes. */
export type Stop = () => void | Promise<void>;

/**
 * Where each built part of the app registers its stop, as it is built. {@link close} stops them in
 * the reverse order of registration, so a part stops before whatever it was built on (the database,
 * registered first, closes last). It is the one place a failed start and a normal shutdown release
 * what was opened.
 */
export class Closer {
  private readonly stops: Array<{ readonly name: string; readonly stop: Stop }> = [];
  private closing: Promise<void> | undefined;

  /** Registers `stop` under `name` (which failure messages name). Refused once closing has begun. */
  add(name: string, stop: Stop): void {
    if (this.closing) throw new Error(`cannot register ${name}: already closing`);
    this.stops.push({ name, stop });
  }

  /**
   * Stops every registered part, last registered first. A stop that fails does not keep the others
   * from running; the failure is thrown once all have run (an AggregateError when several failed).
   * Later calls return the first call's promise.
   */
  close(): Promise<void> {
    this.closing ??= this.stopAll();
    return this.closing;
  }

  private async stopAll(): Promise<void> {
    const failures: Array<{ name: string; error: unknown }> = [];
    for (const { name, stop } of this.stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        failures.push({ name, error });
      }
    }
    this.stops.length = 0;
    if (failures.length === 1) throw failures[0]!.error;
    if (failures.length > 1)
      throw new AggregateError(
        failures.map((failure) => failure.error),
        `stopping ${failures.map((failure) => failure.name).join(", ")} failed`,
      );
  }
}

/**
 * The recurring chores of a serving process: each task runs once when {@link start} is called (after
 * everything is built, so that each finds what it cleans, such as every rate-limit table) and then
 * every {@link HOUSEKEEPING_INTERVAL_MS}. A CLI command never starts them.
 */
export class Housekeeping {
  private readonly tasks: Array<() => Promise<unknown>> = [];

  /** Adds a task; it runs in the order added. */
  add(task: () => Promise<unknown>): void {
    this.tasks.push(task);
  }

  /**
   * Runs every task once (in order; a failure fails the start) and then on a timer each, which
   * `closer` clears. The timers never keep the process alive.
   */
  async start(closer: Closer, intervalMs = HOUSEKEEPING_INTERVAL_MS): Promise<void> {
    for (const task of this.tasks) {
      await task();
      const timer = setInterval(() => void task(), intervalMs);
      timer.unref();
      closer.add("a housekeeping timer", () => clearInterval(timer));
    }
  }
}
