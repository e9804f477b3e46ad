import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { registerUser } from "../helpers/api.js";
import { type TestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed, untilLive } from "../helpers/ws.js";

/** The bound the contract sets for an event to reach the subscribers of another instance. */
const ACROSS_INSTANCES_BOUND_MS = 1000;

async function createPost(t: TestApp, token: string, title: string): Promise<string> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
    token,
    variables: { input: { title, body: "x".repeat(10_000) } },
  });
  assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
  return res.body.data.createPost.id;
}

if (DATABASES.includes("postgres")) {
  describe("post events across two instances on one postgres database (LISTEN/NOTIFY)", () => {
    const [a, b] = useTwoTestApps("postgres");

    it("delivers to a postCreated subscriber on B, within a second, a post created on A (a 10,000-character body, past NOTIFY's 8,000 bytes)", async (tc) => {
      const writer = await registerUser(a, "writer-a");
      const reader = await registerUser(b, "reader-b");
      const ws = connect(b.url, { token: reader.accessToken });
      try {
        await ws.connected;
        const feed = new Feed(ws.client, { query: `subscription { postCreated { id body author { username } } }` });
        await untilLive(feed, () => createPost(a, writer.accessToken, "warm-up"));
        assert.equal(feed.results[0].data.postCreated.author.username, "writer-a");
        assert.equal(feed.results[0].data.postCreated.body.length, 10_000);

        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const sentAt = performance.now();
          const id = await createPost(a, writer.accessToken, `measured ${i}`);
          await feed.until((f) => f.results.some((r) => r.data.postCreated.id === id), 3000);
          times.push(Math.round(performance.now() - sentAt));
        }
        const message = `[postgres] createPost on A -> postCreated on B: ${times.join(", ")} ms from sending the mutation (5 runs)`;
        tc.diagnostic(message);
        console.log(message);
        for (const ms of times) assert.ok(ms < ACROSS_INSTANCES_BOUND_MS, `${ms} ms`);
      } finally {
        await ws.client.dispose();
      }
    });

    it("delivers to an anonymous postUpdated subscriber on B an update made on A, and only for that post", async () => {
      const writer = await registerUser(a, "editor-a");
      const id = await createPost(a, writer.accessToken, "to edit");
      const other = await createPost(a, writer.accessToken, "not watched");
      const ws = connect(b.url);
      try {
        await ws.connected;
        const feed = new Feed(ws.client, {
          query: `subscription($id: ID!) { postUpdated(id: $id) { id title } }`,
          variables: { id },
        });
        let round = 0;
        const edit = (postId: string, title: string) =>
          a.gql(`mutation($id: ID!, $title: String!) { updatePost(id: $id, input: { title: $title }) { id } }`, {
            token: writer.accessToken,
            variables: { id: postId, title },
          });
        await untilLive(feed, () => edit(id, `edit ${++round}`));
        await edit(other, "elsewhere");
        await edit(id, "last");
        await feed.until((f) => f.results.some((r) => r.data.postUpdated.title === "last"));
        assert.ok(feed.results.every((r) => r.data.postUpdated.id === id));
      } finally {
        await ws.client.dispose();
      }
    });
  });
}
