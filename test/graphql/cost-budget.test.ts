import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CostBudget } from "../../src/graphql/cost-budget.js";

const QUEUE = { maxWaitMs: 1_000, maxWaiters: 10 };

describe("CostBudget: the cost of operations running at once", () => {
  it("admits operations while their costs fit, and the next one as soon as one gives its cost back", async () => {
    const budget = new CostBudget(100, QUEUE);
    const a = await budget.acquire(60, "10.0.0.1");
    const b = await budget.acquire(40, "10.0.0.2");
    assert.ok(a && b);
    assert.equal(budget.held, 100);
    let admitted = false;
    const c = budget.acquire(30, "10.0.0.3").then((release) => ((admitted = true), release));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(admitted, false, "waits while the budget is full");
    a();
    const release = await c;
    assert.ok(release);
    assert.equal(budget.held, 70);
    a();
    assert.equal(budget.held, 70, "giving back twice gives back once");
    b();
    release();
    assert.equal(budget.held, 0);
  });

  it("keeps one address to half of the budget once it holds some, so others keep the rest", async () => {
    const budget = new CostBudget(100, QUEUE);
    const first = await budget.acquire(40, "attacker");
    assert.ok(first);
    let second: (() => void) | undefined | "waiting" = "waiting";
    void budget.acquire(40, "attacker").then((release) => (second = release));
    // The attacker's second operation waits, but does not hold back another address behind it.
    const bystander = await budget.acquire(50, "bystander");
    assert.ok(bystander);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(second, "waiting");
    first();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(typeof second, "function", "admitted once its address holds nothing");
  });

  it("refuses with undefined after maxWaitMs, and at once when maxWaiters already wait", async () => {
    const budget = new CostBudget(10, { maxWaitMs: 50, maxWaiters: 1 });
    const held = await budget.acquire(10, "a");
    assert.ok(held);
    const waited = budget.acquire(5, "b");
    assert.equal(await budget.acquire(5, "c"), undefined, "the queue is full");
    const started = Date.now();
    assert.equal(await waited, undefined);
    assert.ok(Date.now() - started >= 40);
    held();
    assert.equal(budget.held, 0);
    assert.ok(await budget.acquire(5, "b"), "an empty budget admits at once");
  });

  it("holds a cost over the whole budget as the whole budget, so it runs alone rather than never", async () => {
    const budget = new CostBudget(100, QUEUE);
    const big = await budget.acquire(500, "a");
    assert.ok(big);
    assert.equal(budget.held, 100);
    big();
  });
});
