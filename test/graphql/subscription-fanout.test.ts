import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, it } from "node:test";

import { registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed, type WsConnection } from "../helpers/ws.js";

const SOCKETS_PER_1000 = 50;
const SUBSCRIPTIONS_PER_SOCKET = 20;

/** 1,000 subscribers from 127.0.0.1 on 50 sockets: the per-IP budgets raised to hold them. */
const FANOUT_ENV = {
  WS_MAX_CONNECTIONS_PER_IP: "200",
  WS_MAX_SUBSCRIPTIONS_PER_IP: "2000",
  WS_MAX_SUBSCRIPTIONS: "2000",
};

interface Subscribers {
  feeds: Feed[];
  sockets: WsConnection[];
}

/** `sockets` sockets signed in with `token`, each with 20 `postCreated { id }` subscriptions. */
async function subscribe(t: TestApp, token: string, sockets: number): Promise<Subscribers> {
  const opened = Array.from({ length: sockets }, () => connect(t.url, { token }));
  await Promise.all(opened.map((ws) => ws.connected));
  const feeds = opened.flatMap((ws) =>
    Array.from(
      { length: SUBSCRIPTIONS_PER_SOCKET },
      () => new Feed(ws.client, { query: "subscription { postCreated { id } }" }),
    ),
  );
  return { feeds, sockets: opened };
}

async function createPost(t: TestApp, token: string, title: string): Promise<string> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
    token,
    variables: { input: { title, body: "fan-out" } },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.data.createPost.id;
}

const received = (feed: Feed, id: string) => feed.results.filter((r) => r.data?.postCreated?.id === id).length;

/** Posts are created (by `create`) until every feed has received one: every subscription is live. */
async function untilAllLive(feeds: Feed[], create: () => Promise<string>): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await create();
    const all = Promise.all(feeds.map((f) => f.until((feed) => feed.results.length > 0, 2000)));
    if (await all.then(() => true).catch(() => false)) return;
  }
  assert.fail("the subscriptions never all went live");
}

async function closeAll(subscribers: Subscribers | undefined): Promise<void> {
  await Promise.all(
    (subscribers?.sockets ?? []).map(async (ws) => {
      await ws.client.dispose();
    }),
  );
}

describe("fan-out off the request path [sqlite]", () => {
  const t = useTestApp("sqlite", { env: FANOUT_ENV });

  it("with 1,000 subscribers, createPost's answer is handed to its socket before any subscriber has been handed the event, and every one gets it once", async () => {
    const writer = await registerUser(t, "fanout-writer");
    const reader = await registerUser(t, "fanout-reader");
    let subscribers: Subscribers | undefined;
    try {
      subscribers = await subscribe(t, reader.accessToken, SOCKETS_PER_1000);
      const { feeds } = subscribers;
      assert.equal(feeds.length, 1000);
      await untilAllLive(feeds, () => createPost(t, writer.accessToken, "warm-up"));
      await Promise.all(feeds.map((f) => f.until(() => true)));

      // What the server had done for the subscribers when it handed the answer to the socket:
      // gta_subscription_deliveries_waiting counts the subscribers holding the event and waiting
      // for a delivery slot (the old bus had handed the event to every one of them by then).
      let waiting = 0;
      let waitingAtAnswer: number | undefined;
      const setWaiting = t.app.metrics.deliveriesWaiting.bind(t.app.metrics);
      t.app.metrics.deliveriesWaiting = (count) => {
        waiting = count;
        setWaiting(count);
      };
      const onRequest = (_req: unknown, res: ServerResponse) => {
        const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
        res.end = ((...args: unknown[]) => {
          waitingAtAnswer ??= waiting;
          return end(...args);
        }) as ServerResponse["end"];
      };
      const http = t.app.server.server;
      http.prependListener("request", onRequest);
      let answered = false;
      const beforeAnswer = new Set<Feed>();
      const marks = feeds.map((feed) =>
        feed.until((f) => {
          if (f.results.length > 1 && !answered) beforeAnswer.add(f);
          return f.results.length > 1;
        }, 60_000),
      );
      let id: string;
      try {
        id = await createPost(t, writer.accessToken, "measured");
        answered = true;
      } finally {
        http.off("request", onRequest);
      }
      await Promise.all(marks);

      assert.equal(waitingAtAnswer, 0, "no subscriber had been handed the event when the answer was written");
      assert.equal(beforeAnswer.size, 0, "no subscriber received the event before the answer");
      const counts = feeds.map((f) => received(f, id));
      assert.deepEqual(new Set(counts), new Set([1]), "every subscriber received the post exactly once");
      assert.ok(feeds.every((f) => f.error === undefined));
    } finally {
      await closeAll(subscribers);
    }
  });
});

if (DATABASES.includes("postgres")) {
  describe("fan-out across two instances [postgres]", () => {
    const [a, b] = useTwoTestApps("postgres", { env: FANOUT_ENV });

    it("1,000 subscribers, half on each instance, each receive every post created on either instance exactly once", async () => {
      const writer = await registerUser(a, "fanout-writer-pg");
      const reader = await registerUser(a, "fanout-reader-pg");
      let onA: Subscribers | undefined;
      let onB: Subscribers | undefined;
      try {
        onA = await subscribe(a, reader.accessToken, SOCKETS_PER_1000 / 2);
        onB = await subscribe(b, reader.accessToken, SOCKETS_PER_1000 / 2);
        const feeds = [...onA.feeds, ...onB.feeds];
        assert.equal(feeds.length, 1000);
        await untilAllLive(feeds, () => createPost(a, writer.accessToken, "warm-up"));

        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push(await createPost(a, writer.accessToken, `on A ${i}`));
        ids.push(...(await Promise.all([0, 1, 2, 3, 4].map((i) => createPost(b, writer.accessToken, `on B ${i}`)))));
        await Promise.all(feeds.map((f) => f.until((feed) => ids.every((id) => received(feed, id) > 0), 60_000)));
        // Each instance hands its events out in order: a duplicate of any of them would come before these.
        const last = [
          await createPost(a, writer.accessToken, "last on A"),
          await createPost(b, writer.accessToken, "last on B"),
        ];
        await Promise.all(feeds.map((f) => f.until((feed) => last.every((id) => received(feed, id) > 0), 60_000)));

        for (const feed of feeds)
          assert.deepEqual(
            ids.map((id) => received(feed, id)),
            ids.map(() => 1),
          );
        assert.ok(feeds.every((f) => f.error === undefined));
      } finally {
        await closeAll(onA);
        await closeAll(onB);
      }
    });
  });
}
