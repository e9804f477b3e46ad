// revokeUserSessions: an ADMIN ends every session of another user at once; their access tokens get
// 401 SESSION_ENDED and their refresh tokens stop, the user can sign in again, and it is audited.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  assertAccessAccepted,
  assertAccessRefused,
  assertRefreshRefused,
  codes,
  login,
  PASSWORD,
  registerUser,
} from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ROOT = { username: "root", password: "root password 1" };
const REVOKE = `mutation($id: ID!) { revokeUserSessions(userId: $id) }`;

for (const kind of DATABASES) {
  describe(`revokeUserSessions (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password } });

    it("ends every session of the user and says how many; their tokens are refused, other users' are not", async () => {
      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const first = await registerUser(t, "compromised");
      const second = await login(t, "compromised");
      const bystander = await registerUser(t, "bystander");

      const res = await t.gql(REVOKE, { token: admin.accessToken, variables: { id: first.userId } });
      assert.deepEqual(res.body, { data: { revokeUserSessions: 2 } });
      for (const tokens of [first, second]) {
        await assertAccessRefused(t, tokens.accessToken);
        await assertRefreshRefused(t, tokens.refreshToken);
      }
      await assertAccessAccepted(t, bystander.accessToken, bystander.userId);
      await assertAccessAccepted(t, admin.accessToken, admin.userId);
      const rows = await t.app.database.db
        .selectFrom("sessions")
        .select(["revoked_reason"])
        .where("user_id", "=", first.userId)
        .execute();
      assert.deepEqual(
        rows.map((r) => r.revoked_reason),
        ["revoked_by_admin", "revoked_by_admin"],
      );

      // The account itself is untouched: the user signs in again, and a second call ends that one session.
      const again = await login(t, "compromised", { password: PASSWORD });
      await assertAccessAccepted(t, again.accessToken, first.userId);
      const once = await t.gql(REVOKE, { token: admin.accessToken, variables: { id: first.userId } });
      assert.deepEqual(once.body, { data: { revokeUserSessions: 1 } });
      const none = await t.gql(REVOKE, { token: admin.accessToken, variables: { id: first.userId } });
      assert.deepEqual(none.body, { data: { revokeUserSessions: 0 } });

      const events = await t.gql(
        `{ auditEvents(first: 10, type: "SESSIONS_REVOKED_BY_ADMIN", userId: "${first.userId}") { username detail sessionId } }`,
        { token: admin.accessToken },
      );
      assert.deepEqual(
        events.body.data.auditEvents.map((e: { username: string; detail: string }) => [e.username, e.detail]),
        [
          ["compromised", `ended=0 apiTokens=0 by=${admin.userId}`],
          ["compromised", `ended=1 apiTokens=0 by=${admin.userId}`],
          ["compromised", `ended=2 apiTokens=0 by=${admin.userId}`],
        ],
      );
    });

    it("refuses a USER with FORBIDDEN (ROLE) and ends nothing; anonymous is UNAUTHENTICATED", async () => {
      const target = await registerUser(t, "target");
      const user = await registerUser(t, "notadmin");
      const forbidden = await t.gql(REVOKE, { token: user.accessToken, variables: { id: target.userId } });
      assert.deepEqual(codes(forbidden), ["FORBIDDEN"]);
      assert.equal(forbidden.body.errors![0]!.extensions!.reason, "ROLE");
      assert.equal(forbidden.body.data, null);
      const anonymous = await t.gql(REVOKE, { variables: { id: target.userId } });
      assert.deepEqual(codes(anonymous), ["UNAUTHENTICATED"]);
      await assertAccessAccepted(t, target.accessToken, target.userId);
    });

    it("answers NOT_FOUND for a user that does not exist, and records nothing", async () => {
      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const res = await t.gql(REVOKE, { token: admin.accessToken, variables: { id: "no-such-user" } });
      assert.deepEqual(codes(res), ["NOT_FOUND"]);
      const events = await t.gql(`{ auditEvents(first: 10, userId: "no-such-user") { type } }`, {
        token: admin.accessToken,
      });
      assert.deepEqual(events.body.data.auditEvents, []);
    });
  });
}
