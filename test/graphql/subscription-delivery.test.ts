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
    assert.equal(dropped, 2);
    const taken = [];
    for (let i = 0; i < 3; i++) taken.push((await iterator.next()).value);
    assert.deepEqual(taken, [3, 4, 5]);
    await iterator.return!();
    assert.equal(bus.listenerCount("T", "1"), 0);
  });
});
