import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Closer, Housekeeping, HOUSEKEEPING_INTERVAL_MS } from "../src/lifecycle.js";

describe("the closer", () => {
  it("stops every part in the reverse order of registration, the first registered last", async () => {
    const closer = new Closer();
    const stopped: string[] = [];
    closer.add("database", () => void stopped.push("database"));
    closer.add("audit log", async () => void stopped.push("audit log"));
    closer.add("listener", () => void stopped.push("listener"));
    await closer.close();
    assert.deepEqual(stopped, ["listener", "audit log", "database"]);
  });

  it("runs every stop when one fails, then throws that failure", async () => {
    const closer = new Closer();
    const stopped: string[] = [];
    closer.add("database", () => void stopped.push("database"));
    closer.add("listener", () => Promise.reject(new Error("listener would not stop")));
    closer.add("timer", () => void stopped.push("timer"));
    await assert.rejects(closer.close(), { message: "listener would not stop" });
    assert.deepEqual(stopped, ["timer", "database"]);
  });

  it("throws an AggregateError naming the parts when several stops fail", async () => {
    const closer = new Closer();
    closer.add("database", () => {
      throw new Error("database");
    });
    closer.add("listener", () => Promise.reject(new Error("listener")));
    await assert.rejects(closer.close(), (error: unknown) => {
      assert.ok(error instanceof AggregateError);
      assert.equal(error.message, "stopping listener, database failed");
      assert.deepEqual(
        error.errors.map((cause: Error) => cause.message),
        ["listener", "database"],
      );
      return true;
    });
  });

  it("stops each part once: a second close returns the first one's promise", async () => {
    const closer = new Closer();
    let stops = 0;
    closer.add("database", () => void (stops += 1));
    const first = closer.close();
    assert.equal(closer.close(), first);
    await first;
    await closer.close();
    assert.equal(stops, 1);
  });

  it("refuses a part registered once closing has begun", async () => {
    const closer = new Closer();
    await closer.close();
    assert.throws(() => closer.add("late timer", () => undefined), {
      message: "cannot register late timer: already closing",
    });
  });
});

describe("the housekeeping", () => {
  it("runs nothing before start, then every task once in order, then each on its interval until closed", async (t) => {
    t.mock.timers.enable({ apis: ["setInterval"] });
    const housekeeping = new Housekeeping();
    const runs: string[] = [];
    housekeeping.add(async () => void runs.push("prune audit"));
    housekeeping.add(async () => void runs.push("clear counters"));
    assert.deepEqual(runs, []);

    const closer = new Closer();
    await housekeeping.start(closer);
    assert.deepEqual(runs, ["prune audit", "clear counters"]);

    t.mock.timers.tick(HOUSEKEEPING_INTERVAL_MS);
    assert.deepEqual(runs, ["prune audit", "clear counters", "prune audit", "clear counters"]);

    await closer.close();
    t.mock.timers.tick(HOUSEKEEPING_INTERVAL_MS * 3);
    assert.equal(runs.length, 4, "no task runs after the closer cleared its timer");
  });

  it("fails the start when a task's first run fails", async () => {
    const housekeeping = new Housekeeping();
    housekeeping.add(() => Promise.reject(new Error("the audit table is gone")));
    const closer = new Closer();
    await assert.rejects(housekeeping.start(closer), { message: "the audit table is gone" });
    await closer.close();
  });
});
