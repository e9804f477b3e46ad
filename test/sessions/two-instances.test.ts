import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  assertAccessAccepted,
  assertInvalidToken,
  claimsOf,
  codes,
  type GraphQLResponse,
  login,
  me,
  registerUser,
} from "../helpers/api.js";
import { useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ROOT = { username: "root", password: "root password 1" };
const POLL_EVERY_MS = 10;
const POLL_FOR_MS = 3000;

/**
 * Asks `probe` every 10 ms, for at most 3 s, until `done` holds for its answer. Returns the last
 * answer and how long after `since` it came (for the report; the tests assert no durations).
 */
async function pollUntil(
  probe: () => Promise<GraphQLResponse>,
  done: (res: GraphQLResponse) => boolean,
  since: number,
): Promise<{ res: GraphQLResponse; elapsedMs: number }> {
  const deadline = performance.now() + POLL_FOR_MS;
  for (;;) {
    const res = await probe();
    if (done(res) || performance.now() >= deadline) return { res, elapsedMs: Math.round(performance.now() - since) };
    await sleep(POLL_EVERY_MS);
  }
}

for (const kind of DATABASES) {
  // PostgreSQL: two instances on one database (LISTEN/NOTIFY). SQLite: two apps on one DATA_DIR (polling).
  describe(`two instances on one ${kind} database`, () => {
    const [a, b] = useTwoTestApps(kind, { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password } });

    it("refuses on instance B, with 401, an access token whose session was logged out on instance A", async (tc) => {
      const user = await registerUser(a, "roamer");
      await assertAccessAccepted(b, user.accessToken, user.userId);

      const sentAt = performance.now();
      const logout = await a.gql(`mutation { logout }`, { token: user.accessToken });
      const answeredAt = performance.now();
      assert.deepEqual(logout.body, { data: { logout: true } });
      assertInvalidToken(await me(a, user.accessToken));

      const { res, elapsedMs } = await pollUntil(
        () => me(b, user.accessToken),
        (r) => r.status === 401,
        answeredAt,
      );
      assertInvalidToken(res);
      const message = `[${kind}] logout on A -> 401 on B: ${elapsedMs} ms after A answered (${Math.round(answeredAt - sentAt)} ms for A to answer)`;
      tc.diagnostic(message);
      console.log(message);
    });

    it("takes ADMIN away on instance B from a token minted before the demotion on instance A", async (tc) => {
      const admin = await login(a, ROOT.username, { password: ROOT.password });
      const user = await registerUser(a, "wanderer");
      const promote = await a.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [ADMIN, USER]) { roles } }`, {
        token: admin.accessToken,
        variables: { id: user.userId },
      });
      assert.deepEqual(promote.body, { data: { setUserRoles: { roles: ["ADMIN", "USER"] } } });
      const adminToken = await login(a, "wanderer");
      assert.deepEqual(claimsOf(adminToken.accessToken).roles, ["ADMIN", "USER"]);
      const allowed = await b.gql(`{ users { id } }`, { token: adminToken.accessToken });
      assert.equal(allowed.body.errors, undefined, JSON.stringify(allowed.body.errors));

      const demote = await a.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER]) { roles } }`, {
        token: admin.accessToken,
        variables: { id: user.userId },
      });
      const answeredAt = performance.now();
      assert.deepEqual(demote.body, { data: { setUserRoles: { roles: ["USER"] } } });

      const { res, elapsedMs } = await pollUntil(
        () => b.gql(`{ users { id } }`, { token: adminToken.accessToken }),
        (r) => codes(r).includes("FORBIDDEN"),
        answeredAt,
      );
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      const message = `[${kind}] demotion on A -> FORBIDDEN on B: ${elapsedMs} ms after A answered`;
      tc.diagnostic(message);
      console.log(message);
    });
  });
}
