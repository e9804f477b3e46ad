// postCreated(after: ID): what a reconnecting client missed, replayed oldest first, then the live
// feed, with no gap and no duplicate between the two, also when posts are created during the switch.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { LocalPubSub } from "../../src/graphql/pub-sub.js";
import { ResumeAfter, withReplays } from "../../src/graphql/replay.js";
import { registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed, untilLive } from "../helpers/ws.js";

const RESUME = `subscription($after: ID) { postCreated(after: $after) { id title } }`;

async function createPost(t: TestApp, token: string, title: string): Promise<string> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
    token,
    variables: { input: { title, body: "body" } },
  });
  assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
  return res.body.data.createPost.id;
}

/** Every post's id, oldest first, as the database orders them (the `posts` list, reversed). */
async function allPostIds(t: TestApp): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await t.gql(`query($after: ID) { posts(first: 100, after: $after) { id } }`, { variables: { after } });
    const page: Array<{ id: string }> = res.body.data.posts;
    ids.push(...page.map((p) => p.id));
    if (page.length < 100) return ids.reverse();
    after = page.at(-1)!.id;
  }
}

const idsOf = (feed: Feed): string[] => feed.results.map((r) => r.data.postCreated.id);

describe("withReplays: the switch from replay to live, step by step", () => {
  const next = (iterator: AsyncIterator<unknown>) => iterator.next().then((r) => (r.done ? "done" : r.value));

  it("listens before it reads: an event published during the read is delivered once, whether the read saw it or not, and the one named never", async () => {
    const bus = new LocalPubSub();
    let finishRead!: (events: Array<{ id: string }>) => void;
    const replaying = withReplays(
      bus,
      {
        T: {
          read: () => new Promise((resolve) => (finishRead = resolve)),
          key: (e) => (e as { id: string }).id,
          max: 100,
        },
      },
      20,
    );
    const iterator = replaying.subscribe("T", new ResumeAfter("0"))[Symbol.asyncIterator]();
    const first = next(iterator);
    // Published while the read runs: the one named (late, as NOTIFY can be on another instance),
    // one the read then returns too, and one after the read.
    bus.publish("T", { id: "0" });
    bus.publish("T", { id: "1" });
    bus.publish("T", { id: "2" });
    finishRead([{ id: "0.5" }, { id: "1" }]);
    assert.deepEqual(await first, { id: "0.5" });
    assert.deepEqual(await next(iterator), { id: "1" });
    assert.deepEqual(await next(iterator), { id: "2" });
    bus.publish("T", { id: "3" });
    assert.deepEqual(await next(iterator), { id: "3" });
    await iterator.return!();
    assert.equal(bus.listenerCount("T"), 0);
  });

  it("a failed read rejects the first next() with its error and stops listening", async () => {
    const bus = new LocalPubSub();
    const refused = new Error("names no post");
    const replaying = withReplays(bus, { T: { read: () => Promise.reject(refused), key: String, max: 100 } }, 20);
    const iterator = replaying.subscribe("T", new ResumeAfter("x"))[Symbol.asyncIterator]();
    assert.equal(bus.listenerCount("T"), 1);
    await assert.rejects(iterator.next(), refused);
    assert.equal(bus.listenerCount("T"), 0);
    assert.equal(await next(iterator), "done");
  });

  it("ended while reading: done, and the read's events are never delivered", async () => {
    const bus = new LocalPubSub();
    let finishRead!: (events: string[]) => void;
    const replaying = withReplays(
      bus,
      { T: { read: () => new Promise((r) => (finishRead = r)), key: String, max: 100 } },
      20,
    );
    const iterator = replaying.subscribe("T", new ResumeAfter("0"))[Symbol.asyncIterator]();
    const first = next(iterator);
    await iterator.return!();
    finishRead(["a"]);
    assert.equal(await first, "done");
    assert.equal(bus.listenerCount("T"), 0);
  });

  it("reads a page at a time, the next only once the last is delivered, and stops at the replay's max", async () => {
    const bus = new LocalPubSub();
    const stored = Array.from({ length: 30 }, (_, i) => String(i + 1));
    const reads: Array<[string, number]> = [];
    const read = async (after: string, limit: number) => {
      reads.push([after, limit]);
      const from = stored.indexOf(after) + 1;
      return stored.slice(from, from + limit);
    };
    const replaying = withReplays(bus, { T: { read, key: String, max: 7 } }, 3);
    const iterator = replaying.subscribe("T", new ResumeAfter("10"))[Symbol.asyncIterator]();
    assert.equal(await next(iterator), "11");
    // One page of three read, not the whole replay: what a resuming subscriber holds is bounded.
    assert.deepEqual(reads, [["10", 3]]);
    assert.equal(await next(iterator), "12");
    assert.equal(await next(iterator), "13");
    assert.deepEqual(reads, [["10", 3]]);
    const rest = [];
    for (let i = 0; i < 4; i++) rest.push(await next(iterator));
    assert.deepEqual(rest, ["14", "15", "16", "17"]);
    // Pages of 3, 3, then 1: seven in all, the max; then live, where a replayed one is skipped.
    assert.deepEqual(reads, [
      ["10", 3],
      ["13", 3],
      ["16", 1],
    ]);
    bus.publish("T", "15");
    bus.publish("T", "31");
    assert.equal(await next(iterator), "31");
    await iterator.return!();
  });

  it("without a ResumeAfter id the bus is the plain bus, and a topic with no replay refuses to resume", () => {
    const bus = new LocalPubSub();
    const replaying = withReplays(bus, {}, 20);
    replaying.subscribe("T", "some-id")[Symbol.asyncIterator]();
    assert.equal(bus.listenerCount("T", "some-id"), 1);
    assert.throws(() => replaying.subscribe("U", new ResumeAfter("1")), /cannot be resumed/);
  });
});

for (const kind of DATABASES) {
  describe(`[${kind}] postCreated(after)`, () => {
    const t = useTestApp(kind);

    it("replays the posts created after the one named, oldest first, then goes live, each once", async () => {
      const writer = await registerUser(t, `resume-writer-${kind}`);
      const reader = await registerUser(t, `resume-reader-${kind}`);
      const seen = await createPost(t, writer.accessToken, "seen");
      const missed = [];
      for (let i = 0; i < 5; i++) missed.push(await createPost(t, writer.accessToken, `missed ${i}`));
      const ws = connect(t.url, { token: reader.accessToken });
      try {
        await ws.connected;
        const feed = new Feed(ws.client, { query: RESUME, variables: { after: seen } });
        await feed.until((f) => f.results.length >= 5);
        assert.deepEqual(idsOf(feed), missed);
        const live = await createPost(t, writer.accessToken, "live");
        await feed.until((f) => f.results.length >= 6);
        assert.deepEqual(idsOf(feed), [...missed, live]);
        assert.equal(feed.error, undefined);
      } finally {
        await ws.client.dispose();
      }
    });

    it("an after that names no post is this subscription's BAD_USER_INPUT; the socket stays open", async () => {
      const reader = await registerUser(t, `resume-unknown-${kind}`);
      const ws = connect(t.url, { token: reader.accessToken });
      try {
        await ws.connected;
        const feed = new Feed(ws.client, { query: RESUME, variables: { after: "no-such-post" } });
        await feed.until((f) => f.error !== undefined);
        const errors = feed.error as Array<{ message: string; extensions: { code: string } }>;
        assert.equal(errors[0]!.extensions.code, "BAD_USER_INPUT", JSON.stringify(errors));
        assert.match(errors[0]!.message, /names no post/);
        // The connection serves the next subscription: another one on the same socket gets events.
        const other = new Feed(ws.client, { query: RESUME, variables: { after: null } });
        const writer = await registerUser(t, `resume-unknown-writer-${kind}`);
        await untilLive(other, () => createPost(t, writer.accessToken, "after the refusal"));
        assert.equal(other.results[0].data.postCreated.title, "after the refusal");
      } finally {
        await ws.client.dispose();
      }
    });

    it("the race: posts created while the client resumes are each delivered exactly once, in order (5 rounds)", async () => {
      const writer = await registerUser(t, `resume-race-writer-${kind}`);
      const reader = await registerUser(t, `resume-race-reader-${kind}`);
      for (let round = 0; round < 5; round++) {
        const from = await createPost(t, writer.accessToken, `round ${round} start`);
        // The writer keeps creating posts while the subscription is sent, read and switched to live.
        let writing = true;
        const writes = (async () => {
          for (let i = 0; writing || i < 10; i++) await createPost(t, writer.accessToken, `round ${round} #${i}`);
        })();
        await new Promise((resolve) => setTimeout(resolve, 5 + round * 7));
        const ws = connect(t.url, { token: reader.accessToken });
        try {
          await ws.connected;
          const feed = new Feed(ws.client, { query: RESUME, variables: { after: from } });
          await new Promise((resolve) => setTimeout(resolve, 100));
          writing = false;
          await writes;
          const all = await allPostIds(t);
          const expected = all.slice(all.indexOf(from) + 1);
          await feed.until((f) => f.results.length >= expected.length, 10_000);
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.deepEqual(idsOf(feed), expected, `round ${round}: every post after the one named, once, in order`);
          assert.equal(feed.error, undefined);
        } finally {
          await ws.client.dispose();
        }
      }
    });
  });
}
