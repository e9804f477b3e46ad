import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { Kind, OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import { claimsOf, login, refresh, registerUser, type Tokens } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { wsUrlOf } from "../helpers/ws.js";

const POST_CREATED = gql`
  subscription {
    postCreated {
      id
      title
    }
  }
`;

describe("Apollo Client's GraphQLWsLink across a token's expiry (JWT_ACCESS_TOKEN_EXPIRES=2s)", () => {
  const t = useTestApp("sqlite", { env: { JWT_ACCESS_TOKEN_EXPIRES: "2s" } });

  it("is closed with 4403 at exp, reconnects with the token connectionParams refreshed, and keeps receiving posts", async () => {
    let tokens: Tokens = await registerUser(t, "ws-reader");
    await registerUser(t, "ws-writer");
    const refreshes: string[] = [];
    const closes: number[] = [];
    let connections = 0;
    const wsClient = createClient({
      url: wsUrlOf(t.url),
      webSocketImpl: WebSocket,
      // As docs/subscriptions.md: hand over a current token at every (re)connection.
      connectionParams: async () => {
        if (claimsOf(tokens.accessToken).exp * 1000 <= Date.now() + 500) {
          tokens = await refresh(t, tokens.refreshToken);
          refreshes.push(tokens.accessToken);
        }
        return { authorization: `Bearer ${tokens.accessToken}` };
      },
      // graphql-ws's default waits about a second and more between attempts; the test needs no backoff.
      retryWait: () => sleep(50),
      on: {
        connected: () => (connections += 1),
        closed: (event) => closes.push((event as { code: number }).code),
      },
    });
    const link = ApolloLink.split(
      ({ query }) => {
        const definition = getMainDefinition(query);
        return definition.kind === Kind.OPERATION_DEFINITION && definition.operation === OperationTypeNode.SUBSCRIPTION;
      },
      new GraphQLWsLink(wsClient),
      new HttpLink({ uri: t.url }),
    );
    const client = new ApolloClient({ link, cache: new InMemoryCache() });
    const titles: string[] = [];
    const errors: unknown[] = [];
    const subscription = client
      .subscribe<{ postCreated: { id: string; title: string } }>({ query: POST_CREATED })
      .subscribe({
        next: (result) => {
          if (result.data) titles.push(result.data.postCreated.title);
          if (result.error) errors.push(result.error);
        },
        error: (error: unknown) => errors.push(error),
      });
    const publish = async (title: string) => {
      const writer = await login(t, "ws-writer");
      const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
        token: writer.accessToken,
        variables: { input: { title, body: "b" } },
      });
      assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
    };
    const until = async (done: () => boolean, what: string, act?: () => Promise<void>) => {
      const deadline = performance.now() + 8000;
      while (!done()) {
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await (act ? act() : sleep(50));
      }
    };
    try {
      let round = 0;
      await until(
        () => titles.length > 0,
        "the first post",
        () => publish(`before ${++round}`),
      );
      await until(() => closes.includes(4403), "the 4403 at exp");
      await until(() => connections >= 2, "the reconnection");
      assert.equal(refreshes.length >= 1, true, "connectionParams refreshed the token");
      await until(
        () => titles.some((title) => title.startsWith("after")),
        "a post after the reconnection",
        () => publish(`after ${++round}`),
      );
      assert.deepEqual(errors, []);
    } finally {
      subscription.unsubscribe();
      await wsClient.dispose();
      client.stop();
    }
  });
});
