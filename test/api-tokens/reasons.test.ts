// What a script is told when its API token stops working: a 401 whose reason (in the body and the
// WWW-Authenticate challenge) is API_TOKEN_EXPIRED or API_TOKEN_REVOKED, in words for a script (no
// refresh, no sign-in: neither applies to it), still counted in metrics and the audit log like every
// refused token, and still refused at a WebSocket's connection_init. On SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { INVALID_TOKEN_MESSAGES } from "../../src/errors.js";
import { rootToken, withRoot } from "../helpers/admin.js";
import { type ApiClient, assertInvalidToken, loggedRejection, PASSWORD, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect } from "../helpers/ws.js";

const ME = `{ me { id } }`;
const HOUR = 3_600_000;

/** Creates an API token with PROFILE_READ using a fresh session token; fails the test on any error. */
async function createApiToken(t: ApiClient, sessionToken: string, expiresIn = "90d"): Promise<string> {
  const res = await t.gql(
    `mutation($e: String!) { createApiToken(input: { name: "script", scopes: [PROFILE_READ], expiresIn: $e }) { token } }`,
    { token: sessionToken, variables: { e: expiresIn } },
  );
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data.createApiToken.token;
}

/** gta_token_rejections_total{reason} of the app's metrics. */
async function rejections(t: TestApp, reason: string): Promise<number> {
  const prefix = `gta_token_rejections_total{reason="${reason}"} `;
  const line = (await t.app.metrics.text()).split("\n").find((l) => l.startsWith(prefix));
  assert.ok(line, `${prefix}is exported`);
  return Number(line.slice(prefix.length));
}

/** The message is for a script: it names what to do with API tokens and nothing a script cannot do. */
function assertWrittenForScripts(message: string): void {
  assert.match(message, /API token/);
  assert.match(message, /createApiToken/);
  assert.doesNotMatch(message, /refresh|sign in|log in|access token/i, message);
}

for (const kind of DATABASES) {
  describe(`what a script is told when its API token stops working (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { ...withRoot(), now: () => clock });

    it("says API_TOKEN_EXPIRED once expiresAt has passed, in the body and the challenge, with a message for scripts", async () => {
      const owner = await registerUser(t, "expiring-script");
      const token = await createApiToken(t, owner.accessToken, "1h");
      assert.deepEqual((await t.gql(ME, { token })).body, { data: { me: { id: owner.userId } } });
      const counted = await rejections(t, "API_TOKEN_EXPIRED");

      clock += HOUR + 1000;
      const res = await t.gql(ME, { token });
      assertInvalidToken(res, { reason: "API_TOKEN_EXPIRED", exact: true });
      assertWrittenForScripts(res.body.errors![0]!.message);
      assert.equal(loggedRejection(t, res), "API_TOKEN_EXPIRED");
      assert.equal(await rejections(t, "API_TOKEN_EXPIRED"), counted + 1, "the refusal is counted");
    });

    const revocations: Array<{
      by: string;
      revoke: (owner: { userId: string; accessToken: string }) => Promise<void>;
    }> = [
      {
        by: "revokeApiToken",
        revoke: async (owner) => {
          const ids = await t.gql(`{ apiTokens { id } }`, { token: owner.accessToken });
          for (const { id } of ids.body.data.apiTokens as Array<{ id: string }>) {
            const res = await t.gql(`mutation($id: ID!) { revokeApiToken(id: $id) }`, {
              token: owner.accessToken,
              variables: { id },
            });
            assert.deepEqual(res.body, { data: { revokeApiToken: true } });
          }
        },
      },
      {
        by: "revokeUserSessions",
        revoke: async (owner) => {
          const res = await t.gql(`mutation($id: ID!) { revokeUserSessions(userId: $id) }`, {
            token: await rootToken(t),
            variables: { id: owner.userId },
          });
          assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
        },
      },
      {
        by: "setUserDisabled",
        revoke: async (owner) => {
          const res = await t.gql(`mutation($id: ID!) { setUserDisabled(userId: $id, disabled: true) { id } }`, {
            token: await rootToken(t),
            variables: { id: owner.userId },
          });
          assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
        },
      },
      {
        by: "deleteAccount",
        revoke: async (owner) => {
          const res = await t.gql(`mutation($p: String!) { deleteAccount(password: $p) }`, {
            token: owner.accessToken,
            variables: { p: PASSWORD },
          });
          assert.deepEqual(res.body, { data: { deleteAccount: true } });
        },
      },
    ];

    for (const { by, revoke } of revocations) {
      it(`says API_TOKEN_REVOKED after ${by}, for a token this instance remembered and one it never saw`, async () => {
        const owner = await registerUser(t, `revoked-by-${by.toLowerCase()}`);
        const used = await createApiToken(t, owner.accessToken);
        const unused = await createApiToken(t, owner.accessToken);
        assert.deepEqual((await t.gql(ME, { token: used })).body, { data: { me: { id: owner.userId } } });
        const counted = await rejections(t, "API_TOKEN_REVOKED");

        await revoke(owner);
        for (const token of [used, unused]) {
          const res = await t.gql(ME, { token });
          assertInvalidToken(res, { reason: "API_TOKEN_REVOKED", exact: true });
          assertWrittenForScripts(res.body.errors![0]!.message);
          assert.equal(loggedRejection(t, res), "API_TOKEN_REVOKED");
        }
        assert.equal(await rejections(t, "API_TOKEN_REVOKED"), counted + 2, "both refusals are counted");
      });
    }

    it("audits a revoked API token's refusal as TOKEN_REJECTED with its reason and the token's id", async () => {
      const owner = await registerUser(t, "audited-script");
      const token = await createApiToken(t, owner.accessToken);
      const id = token.slice(4, 40);
      await t.gql(`mutation($id: ID!) { revokeApiToken(id: $id) }`, { token: owner.accessToken, variables: { id } });
      assertInvalidToken(await t.gql(ME, { token }), { reason: "API_TOKEN_REVOKED" });
      const admin = await rootToken(t);
      let detail: string | undefined;
      for (let i = 0; i < 50 && detail === undefined; i++) {
        const events = await t.gql(
          `query($u: ID!) { auditEvents(first: 5, type: "TOKEN_REJECTED", userId: $u) { detail } }`,
          { token: admin, variables: { u: owner.userId } },
        );
        detail = events.body.data.auditEvents[0]?.detail;
        if (detail === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.match(detail ?? "", /\breason=API_TOKEN_REVOKED\b/);
      assert.match(detail ?? "", new RegExp(`\\bapiToken=${id}\\b`));
    });

    it("still closes a WebSocket with 4403 at connection_init for an expired or a revoked API token", async () => {
      const owner = await registerUser(t, "socket-script");
      const expiring = await createApiToken(t, owner.accessToken, "1h");
      const revoked = await createApiToken(t, owner.accessToken);
      const revokedId = revoked.slice(4, 40);
      await t.gql(`mutation($id: ID!) { revokeApiToken(id: $id) }`, {
        token: owner.accessToken,
        variables: { id: revokedId },
      });
      clock += HOUR + 1000;
      for (const token of [expiring, revoked]) {
        const socket = connect(t.url, { token });
        const closed = await socket.closed;
        assert.equal(closed.code, 4403);
        await socket.client.dispose();
      }
    });
  });
}

// The messages are part of what scripts read; they are checked here once, apart from any app.
describe("the messages of an API token's 401", () => {
  it("are written for scripts", () => {
    assertWrittenForScripts(INVALID_TOKEN_MESSAGES.API_TOKEN_EXPIRED);
    assertWrittenForScripts(INVALID_TOKEN_MESSAGES.API_TOKEN_REVOKED);
  });
});
