// A WebSocket connection's client address is read as the HTTP routes read it: with TRUST_PROXY, the
// address a trusted proxy names in X-Forwarded-For (issue 23's defect 1: the subscription server
// once took the socket's own address, so a refused socket behind a proxy was audited with the
// proxy's address).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createClient } from "graphql-ws";
import { sql } from "kysely";
import WebSocket from "ws";

import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { wsUrlOf } from "../helpers/ws.js";

/** Opens a graphql-ws connection through a "proxy" that says the client is `forwardedFor`; resolves with its close code. */
function connectVia(t: TestApp, forwardedFor: string, authorization: string): Promise<number> {
  class Forwarded extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { "x-forwarded-for": forwardedFor } });
    }
  }
  return new Promise((resolve) => {
    createClient({
      url: wsUrlOf(t.url),
      webSocketImpl: Forwarded,
      lazy: false,
      retryAttempts: 0,
      shouldRetry: () => false,
      connectionParams: { authorization },
      onNonLazyError: () => undefined,
      on: { closed: (event) => resolve((event as { code: number }).code) },
    });
  });
}

async function rejectedFrom(t: TestApp): Promise<Array<string | null>> {
  await t.app.audit.flush();
  const result = await sql<{
    ip: string | null;
  }>`select ip from audit_events where type = 'TOKEN_REJECTED' order by id`.execute(t.app.database.db);
  return result.rows.map((row) => row.ip);
}

for (const kind of DATABASES) {
  describe(`a WebSocket connection's client address (${kind})`, () => {
    describe("behind a trusted proxy (TRUST_PROXY=loopback)", () => {
      const t = useTestApp(kind, { env: { TRUST_PROXY: "loopback" } });

      it("audits a refused token with the address the proxy forwarded, not the proxy's", async () => {
        assert.equal(await connectVia(t, "203.0.113.7", "Bearer not-a-jwt"), 4403);
        assert.deepEqual(await rejectedFrom(t), ["203.0.113.7"]);
      });
    });

    describe("without TRUST_PROXY", () => {
      const t = useTestApp(kind);

      it("ignores X-Forwarded-For and audits the socket's own address", async () => {
        assert.equal(await connectVia(t, "203.0.113.7", "Bearer not-a-jwt"), 4403);
        assert.deepEqual(await rejectedFrom(t), ["127.0.0.1"]);
      });
    });
  });
}
