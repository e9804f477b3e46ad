// The multi-factor gate over WebSocket: no subscription is among the fields a session that owes its
// second factor may use, so its token opens no connection (4403, reason text MFA_REQUIRED at
// connection_init) and renews none (the same close at a `ping` renewal), while the same session
// without the debt subscribes as before.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { AAL1, AAL2, PENDING, tokenWith } from "../helpers/assurance.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed, untilLive } from "../helpers/ws.js";

for (const kind of DATABASES) {
  describe(`the multi-factor gate over WebSocket (${kind})`, () => {
    const t = useTestApp(kind);

    it(
      "closes a connection_init with a token that owes the second factor: 4403 MFA_REQUIRED",
      { timeout: 10_000 },
      async () => {
        const user = await registerUser(t, "ws-pending");
        const ws = connect(t.url, { token: tokenWith(t, user.accessToken, PENDING) });
        const feed = new Feed(ws.client, { query: `subscription { postCreated { id } }` });
        const closed = await ws.closed;
        assert.deepEqual([closed.code, closed.reason], [4403, "MFA_REQUIRED"]);
        assert.equal(feed.results.length, 0);
      },
    );

    it(
      "serves the same session at AAL2, and closes it with 4403 MFA_REQUIRED at a renewal with a token that owes the factor",
      { timeout: 10_000 },
      async () => {
        const user = await registerUser(t, "ws-renewal");
        const ws = connect(t.url, { token: tokenWith(t, user.accessToken, AAL2) });
        await ws.connected;
        const feed = new Feed(ws.client, { query: `subscription { postCreated { title } }` });
        await untilLive(feed, () =>
          t.gql(`mutation { createPost(input: { title: "live", body: "b" }) { id } }`, { token: user.accessToken }),
        );
        assert.equal(feed.results[0]?.data?.postCreated?.title, "live");
        // A renewal with a token of the same session at AAL1 without the debt is accepted (a pong)...
        const pong = await ws.ping({ authorization: `Bearer ${tokenWith(t, user.accessToken, AAL1)}` });
        assert.equal(typeof pong?.expiresAt, "string");
        // ...one that owes the second factor closes the socket.
        await assert.rejects(ws.ping({ authorization: `Bearer ${tokenWith(t, user.accessToken, PENDING)}` }));
        const closed = await ws.closed;
        assert.deepEqual([closed.code, closed.reason], [4403, "MFA_REQUIRED"]);
      },
    );
  });
}
