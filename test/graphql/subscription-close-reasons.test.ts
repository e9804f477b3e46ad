// Every 4403 close says why in HTTP's vocabulary (TOKEN_EXPIRED, TOKEN_INVALID, SESSION_ENDED,
// ACCOUNT_DISABLED), on each database and across instances. Expiry, logout, revokeSession, reuse
// detection and a password change are in subscription-lifetime.test.ts; renewals in
// subscription-renewal.test.ts; refused tokens at connect in subscriptions.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { endCauseOf, RevocationList } from "../../src/access/revocation-list.js";
import { rootToken, withRoot } from "../helpers/admin.js";
import { login, registerUser, sessionOf } from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect } from "../helpers/ws.js";

/** The bound the contract sets for a session's end to reach every socket of it, on every instance. */
const SESSION_END_BOUND_MS = 1000;

async function opened(t: TestApp, token: string) {
  const ws = connect(t.url, { token });
  await ws.connected;
  return ws;
}

async function createApiToken(t: TestApp, sessionToken: string): Promise<{ token: string; id: string }> {
  const res = await t.gql(
    `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id } } }`,
    { token: sessionToken, variables: { input: { name: "feed", scopes: ["PROFILE_READ"] } } },
  );
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return { token: res.body.data.createApiToken.token, id: res.body.data.createApiToken.apiToken.id };
}

async function admin(t: TestApp, query: string, variables: Record<string, unknown>): Promise<void> {
  const res = await t.gql(query, { token: await rootToken(t), variables });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
}

const DISABLE = `mutation($id: ID!) { setUserDisabled(userId: $id, disabled: true) { id } }`;

function report(tc: { diagnostic(message: string): void }, message: string): void {
  tc.diagnostic(message);
  console.log(message);
}

for (const kind of DATABASES) {
  describe(`4403 close reasons (${kind}, one instance)`, () => {
    const t = useTestApp(kind, withRoot());

    it("refuses a token of an ended session at connect with SESSION_ENDED", async () => {
      const user = await registerUser(t, "ended-connect");
      await t.gql(`mutation { logout }`, { token: user.accessToken });
      const closed = await connect(t.url, { token: user.accessToken }).closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "SESSION_ENDED"]);
    });

    it("closes with SESSION_ENDED when an ADMIN ends the user's sessions (revokeUserSessions)", async () => {
      const user = await registerUser(t, "revoked-by-admin");
      const ws = await opened(t, user.accessToken);
      await admin(t, `mutation($id: ID!) { revokeUserSessions(userId: $id) }`, { id: user.userId });
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "SESSION_ENDED"]);
    });

    it("closes the sockets of a disabled account, session and API token alike, with ACCOUNT_DISABLED", async () => {
      const user = await registerUser(t, "disabled-here");
      const other = await login(t, "disabled-here");
      const apiToken = await createApiToken(t, user.accessToken);
      const sockets = await Promise.all([
        opened(t, user.accessToken),
        opened(t, other.accessToken),
        opened(t, apiToken.token),
      ]);
      await admin(t, DISABLE, { id: user.userId });
      for (const closed of await Promise.all(sockets.map((ws) => ws.closed)))
        assert.deepEqual([closed.code, closed.reason], [4403, "ACCOUNT_DISABLED"]);
    });

    it("closes an API-token socket with API_TOKEN_REVOKED when the token is revoked (as HTTP answers that token)", async () => {
      const owner = await registerUser(t, "api-revoked");
      const apiToken = await createApiToken(t, owner.accessToken);
      const ws = await opened(t, apiToken.token);
      const res = await t.gql(`mutation($id: ID!) { revokeApiToken(id: $id) }`, {
        token: owner.accessToken,
        variables: { id: apiToken.id },
      });
      assert.deepEqual(res.body, { data: { revokeApiToken: true } });
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "API_TOKEN_REVOKED"]);
    });
  });

  describe(`4403 close reasons across instances (${kind}, two instances on one database)`, () => {
    const [a, b] = useTwoTestApps(kind, withRoot());

    it("closes the socket on instance B with ACCOUNT_DISABLED within a second of setUserDisabled on A", async (tc) => {
      const user = await registerUser(a, "disabled-there");
      const ws = await opened(b, user.accessToken);
      const sentAt = performance.now();
      await admin(a, DISABLE, { id: user.userId });
      const answeredAt = performance.now();
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "ACCOUNT_DISABLED"]);
      const elapsed = Math.round(closed.at - answeredAt);
      report(
        tc,
        `[${kind}] setUserDisabled on A -> 4403 ACCOUNT_DISABLED on B: ${Math.round(closed.at - sentAt)} ms after it was sent (${elapsed} ms after A answered)`,
      );
      assert.ok(elapsed < SESSION_END_BOUND_MS, `${elapsed} ms`);
    });

    it("closes the socket on instance B with SESSION_ENDED when the session is revoked on A", async () => {
      const user = await registerUser(a, "revoked-there");
      const other = await login(a, "revoked-there");
      const ws = await opened(b, other.accessToken);
      const res = await a.gql(`mutation($id: ID!) { revokeSession(id: $id) }`, {
        token: user.accessToken,
        variables: { id: sessionOf(other.accessToken) },
      });
      assert.deepEqual(res.body, { data: { revokeSession: true } });
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "SESSION_ENDED"]);
    });
  });
}

describe("the cause of an ended credential", () => {
  it("reaches RevocationList listeners with the session's id, once", () => {
    const now = Date.now();
    const list = new RevocationList(60_000, () => now);
    const heard: Array<[string, string]> = [];
    list.onSessionEnded((id, cause) => heard.push([id, cause]));
    list.addEndedSession("s1", now, "account_disabled");
    list.addEndedSession("s1", now);
    list.addEndedSession("s2", now);
    assert.deepEqual(heard, [
      ["s1", "account_disabled"],
      ["s2", "ended"],
    ]);
  });

  it("is account_disabled only for credentials stored as ended by disabling", () => {
    assert.equal(endCauseOf("account_disabled"), "account_disabled");
    for (const stored of ["logout", "revoked", "revoked_by_admin", "refresh_token_reused", "account_deleted", null])
      assert.equal(endCauseOf(stored), "ended");
  });
});
