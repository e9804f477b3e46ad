/**
 * The cost of the operations running at once, over every client: each operation holds its cost
 * (src/graphql/query-cost.ts, which prices text by its declared length) from the moment it is
 * checked until its answer is ready, and one that would take the total past the budget waits its
 * turn. The cost limit bounds what one operation builds in memory before its answer is measured;
 * this bounds what all of them build together, so that many concurrent requests each just under
 * the limits cannot add up to more heap than the server has (on PostgreSQL, where reads overlap,
 * 64 concurrent answers of 10 MB each took the heap to 86 of npm start's 96 MB before this).
 *
 * Fair by construction: one client address may hold at most half of the budget, so a single
 * client running the most expensive operations back to back leaves the other half to everyone
 * else; waiters are admitted in order, except that a waiter over its own address's share does not
 * hold back the others. A waiter that is not admitted within `maxWaitMs`, or arrives when
 * `maxWaiters` already wait, is refused at once.
 */
export class CostBudget {
  private inFlight = 0;
  private readonly byClient = new Map<string, number>();
  private readonly waiters: Array<{ cost: number; client: string; admit: () => void }> = [];

  constructor(
    /** The most cost held at once. */
    readonly budget: number,
    readonly options: { readonly maxWaitMs: number; readonly maxWaiters: number },
  ) {}

  /** The cost held now; for tests and metrics. */
  get held(): number {
    return this.inFlight;
  }

  /**
   * Takes `cost` for `client` (an address): resolves with the function that gives it back (call it
   * once), or with undefined when the budget stays full for longer than `maxWaitMs` or too many
   * already wait. A cost over the budget is held as the whole budget, so it waits for a quiet moment.
   */
  acquire(cost: number, client: string): Promise<(() => void) | undefined> {
    const amount = Math.min(Math.max(0, cost), this.budget);
    if (this.waiters.length >= this.options.maxWaiters) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        resolve(undefined);
      }, this.options.maxWaitMs);
      const waiter = {
        cost: amount,
        client,
        admit: () => {
          clearTimeout(timer);
          resolve(this.take(amount, client));
        },
      };
      this.waiters.push(waiter);
      // In order, as when a cost is given back: admitted at once when it fits and nobody ahead does.
      this.admitWaiters();
    });
  }

  /**
   * Takes `cost` for `client` at once, as {@link acquire} would without waiting: the function that
   * gives it back, or undefined when it does not fit now or others already wait (they go first).
   * Never queues; the compiled lane (compiled-lane.ts) hands such a request to Apollo, which waits.
   */
  tryAcquire(cost: number, client: string): (() => void) | undefined {
    const amount = Math.min(Math.max(0, cost), this.budget);
    if (this.waiters.length > 0 || !this.fits(amount, client)) return undefined;
    return this.take(amount, client);
  }

  private fits(cost: number, client: string): boolean {
    const share = Math.max(this.budget / 2, 1);
    const own = this.byClient.get(client) ?? 0;
    // Alone, an address may use the whole budget; its share only stops it while it holds some already.
    return this.inFlight + cost <= this.budget && (own === 0 || own + cost <= share);
  }

  private take(cost: number, client: string): () => void {
    this.inFlight += cost;
    this.byClient.set(client, (this.byClient.get(client) ?? 0) + cost);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.inFlight -= cost;
      const left = (this.byClient.get(client) ?? 0) - cost;
      if (left > 0) this.byClient.set(client, left);
      else this.byClient.delete(client);
      this.admitWaiters();
    };
  }

  private admitWaiters(): void {
    for (let i = 0; i < this.waiters.length;) {
      const waiter = this.waiters[i]!;
      if (this.inFlight + waiter.cost > this.budget) break;
      if (!this.fits(waiter.cost, waiter.client)) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      waiter.admit();
    }
  }
}
