// The live feed, resumable: postCreated after the newest post there was when it started, and after
// any reconnect (an expiry the renewal missed, a restart, a network change) after the last post it
// showed. The server replays what was missed, then goes live: no post lost, none shown twice.
import { type ApolloClient, CombinedGraphQLErrors } from "@apollo/client";
import type { Subscription } from "rxjs";

import { wsClient } from "./auth";
import {
  NewestPostDocument,
  PostCreatedAfterDocument,
  PostCreatedDocument,
  type PostFieldsFragment,
} from "./gql/graphql";
import { explain } from "./messages";

export interface FeedListener {
  post(post: PostFieldsFragment): void;
  /** The socket is up, or down (then the feed subscribes again by itself). */
  live(up: boolean): void;
  /** The server refused the subscription, with this message; the feed tries again later. */
  refused(message: string): void;
}

/** Follows the feed until the returned function is called. */
export function followFeed(client: ApolloClient, listener: FeedListener): () => void {
  let after: string | null | undefined; // undefined until the newest post is known; null: there is none
  let stopped = false;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Subscription | undefined;
  // Posts already shown: a subscription graphql-ws re-sends by itself (after a 1000 close) replays them.
  const shown = new Set<string>();

  // Backs off from a quarter of a second to ten seconds while attempts keep failing.
  const again = () => {
    if (!stopped) timer = setTimeout(() => void start(), Math.min(10_000, 250 * 2 ** failures++));
  };
  async function start() {
    try {
      if (after === undefined)
        after = (await client.query({ query: NewestPostDocument, fetchPolicy: "no-cache" })).data?.posts[0]?.id ?? null;
    } catch {
      return again();
    }
    if (stopped) return;
    const events =
      after === null
        ? client.subscribe({ query: PostCreatedDocument })
        : client.subscribe({ query: PostCreatedAfterDocument, variables: { after } });
    current = events.subscribe({
      next: ({ data, error }) => {
        if (data) {
          after = data.postCreated.id;
          failures = 0;
          if (shown.has(after)) return;
          if (shown.add(after).size > 500) shown.delete(shown.values().next().value!);
          listener.post(data.postCreated);
        } else if (CombinedGraphQLErrors.is(error)) {
          // The post to resume after is gone (deleted): resume after the newest instead.
          if (error.errors[0]?.extensions?.code === "BAD_USER_INPUT") after = undefined;
          listener.refused(explain(error.errors[0]));
        }
      },
      // The socket closed or the server ended the subscription (an error, if any, came first).
      complete: again,
    });
  }

  const unlisten = [
    wsClient.on("connected", () => listener.live(true)),
    wsClient.on("closed", () => listener.live(false)),
  ];
  void start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    current?.unsubscribe();
    unlisten.forEach((off) => off());
  };
}
