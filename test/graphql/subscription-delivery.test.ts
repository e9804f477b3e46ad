import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { LocalPubSub } from "../../src/graphql/pub-sub.js";
import { DeliveryLimiter } from "../../src/graphql/subscription-delivery.js";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("DeliveryLimiter", () => {
  it("never runs more than its concurrency at once, grants in arrival order, and never in the tick that asked", async () => {
    const waiting: number[] = [];
    const limiter = new DeliveryLimiter(3, (count) => waiting.push(count));
    const order: number[] = [];
    const releases: Array<() => void> = [];
    let grantedSync = false;
    for (let i = 0; i < 10; i++)
      void limiter.acquire().then((release) => {
        order.push(i);
        releases.push(release);
      });
    await Promise.resolve();
    grantedSync = order.length > 0;
    assert.equal(grantedSync, false, "nothing is granted before the next turn of the event loop");
    await nextTurn();
    assert.deepEqual(order, [0, 1, 2]);
    assert.equal(limiter.running, 3);
    assert.equal(waiting.at(-1), 7);
    // Releasing twice gives back one slot.
    releases[0]!();
    releases[0]!();
    await nextTurn();
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(limiter.running, 3);
    while (order.length < 10) {
      for (const release of releases.splice(0)) release();
      await nextTurn();
      assert.ok(limiter.running <= 3);
    }
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(waiting.at(-1), 0);
  });
});

describe("LocalPubSub's queue per subscriber", () => {
  it("keeps the newest maxQueuedEvents events for a subscriber that has not taken them, and reports each dropped one", async () => {
    let dropped = 0;
    const bus = new LocalPubSub({ maxQueuedEvents: 3, onDropped: () => dropped++ });
    const iterator = bus.subscribe("T", "1")[Symbol.asyncIterator]();
    for (let i = 1; i <= 5; i++) bus.publish("T", "1", i);
    await nextTurn();
    assert.equal(dropped, 2);
    const taken = [];
    for (let i = 0; i < 3; i++) taken.push((await iterator.next()).value);
    assert.deepEqual(taken, [3, 4, 5]);
    await iterator.return!();
    assert.equal(bus.listenerCount("T", "1"), 0);
  });
});

describe("LocalPubSub's fan-out", () => {
  it("publish only enqueues: no subscriber hears of the event in the publisher's turn, every one does after, in order", async () => {
    const bus = new LocalPubSub({ sliceSize: 4 });
    const iterators = Array.from({ length: 10 }, () => bus.subscribe("T")[Symbol.asyncIterator]());
    const received: unknown[][] = iterators.map(() => []);
    const reading = iterators.map(async (iterator, i) => {
      for (let n = 0; n < 2; n++) received[i]!.push((await iterator.next()).value);
    });
    bus.publish("T", "a");
    bus.publish("T", "b");
    assert.equal(bus.pendingEvents, 2);
    // Every microtask of this turn has run: with a synchronous emit every subscriber would have "a" now.
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    await Promise.resolve();
    assert.deepEqual(received.flat(), []);
    await Promise.all(reading);
    assert.deepEqual(
      received,
      iterators.map(() => ["a", "b"]),
    );
    assert.equal(bus.pendingEvents, 0);
  });

  it("hands an event to sliceSize subscribers per turn of the event loop", async () => {
    const bus = new LocalPubSub({ sliceSize: 3 });
    const heard: number[] = [];
    for (let i = 0; i < 8; i++) {
      const iterator = bus.subscribe("T")[Symbol.asyncIterator]();
      void iterator.next().then(() => heard.push(i));
    }
    bus.publish("T", "x");
    const perTurn = [];
    while (heard.length < 8) {
      await nextTurn();
      perTurn.push(heard.length);
    }
    assert.deepEqual(perTurn, [3, 6, 8]);
    assert.deepEqual(heard, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("keeps at most maxPendingEvents published events waiting, drops the oldest and reports it; without subscribers nothing waits", async () => {
    let dropped = 0;
    const bus = new LocalPubSub({ maxPendingEvents: 2, onPendingDropped: () => dropped++ });
    bus.publish("T", "nobody listens");
    assert.equal(bus.pendingEvents, 0);
    const iterator = bus.subscribe("T")[Symbol.asyncIterator]();
    for (const event of ["1", "2", "3", "4"]) bus.publish("T", event);
    assert.equal(dropped, 2);
    assert.equal(bus.pendingEvents, 2);
    assert.deepEqual([(await iterator.next()).value, (await iterator.next()).value], ["3", "4"]);
  });

  it("a subscriber that ends while an event is being handed out gets nothing more and keeps nothing", async () => {
    const bus = new LocalPubSub({ sliceSize: 1 });
    const first = bus.subscribe("T")[Symbol.asyncIterator]();
    const second = bus.subscribe("T")[Symbol.asyncIterator]();
    bus.publish("T", "x");
    await nextTurn();
    // The first has "x"; the second's turn is next, and it ends before.
    await second.return!();
    await nextTurn();
    assert.deepEqual(await first.next(), { done: false, value: "x" });
    assert.deepEqual(await second.next(), { done: true, value: undefined });
    assert.equal(bus.listenerCount("T"), 1);
  });
});
