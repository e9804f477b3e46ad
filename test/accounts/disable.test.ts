// setUserDisabled: an ADMIN disables an account, which ends every session and API token of it at
// once (on every instance within a second), after which the right password gets ACCOUNT_DISABLED
// and a wrong one BAD_CREDENTIALS; the last active ADMIN cannot be disabled; User.disabled is
// visible only to the user and to ADMINs; and every change is audited, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { rootToken, withRoot } from "../helpers/admin.js";
import {
  assertAccessAccepted,
  assertInvalidToken,
  assertRefreshRefused,
  codes,
  login,
  loginRaw,
  me,
  PASSWORD,
  registerUser,
} from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect } from "../helpers/ws.js";

const SET_DISABLED = `mutation($id: ID!, $disabled: Boolean!) { setUserDisabled(userId: $id, disabled: $disabled) { id username disabled } }`;
const CREATE_API_TOKEN = `mutation { createApiToken(input: { name: "script", scopes: [PROFILE_READ] }) { token apiToken { id } } }`;

async function setDisabled(t: TestApp, token: string, id: string, disabled: boolean) {
  return t.gql(SET_DISABLED, { token, variables: { id, disabled } });
}

/** The one error's code and reason. */
function refusal(res: { body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }): unknown[] {
  assert.equal(res.body.errors?.length, 1, JSON.stringify(res.body));
  return [res.body.errors[0]!.extensions?.code, res.body.errors[0]!.extensions?.reason];
}

for (const kind of DATABASES) {
  describe(`setUserDisabled (${kind})`, () => {
    const t = useTestApp(kind, withRoot());

    it("ends every session and API token of the user; the right password then gets ACCOUNT_DISABLED, a wrong one BAD_CREDENTIALS", async () => {
      const admin = await rootToken(t);
      const first = await registerUser(t, "to-disable");
      const second = await login(t, "to-disable");
      const apiToken = (await t.gql(CREATE_API_TOKEN, { token: first.accessToken })).body.data.createApiToken;
      assert.equal((await t.gql(`{ me { id } }`, { token: apiToken.token })).body.data.me.id, first.userId);
      const bystander = await registerUser(t, "bystander");

      const res = await setDisabled(t, admin, first.userId, true);
      assert.deepEqual(res.body, {
        data: { setUserDisabled: { id: first.userId, username: "to-disable", disabled: true } },
      });
      for (const tokens of [first, second]) {
        assertInvalidToken(await me(t, tokens.accessToken), { reason: "SESSION_ENDED" });
        await assertRefreshRefused(t, tokens.refreshToken);
      }
      assertInvalidToken(await t.gql(`{ me { id } }`, { token: apiToken.token }), { reason: "API_TOKEN_REVOKED" });
      await assertAccessAccepted(t, bystander.accessToken, bystander.userId);

      const right = await loginRaw(t, "to-disable", { password: PASSWORD });
      assert.deepEqual(refusal(right), ["UNAUTHENTICATED", "ACCOUNT_DISABLED"]);
      assert.equal(right.body.data, null);
      const wrong = await loginRaw(t, "to-disable", { password: "not the password" });
      assert.deepEqual(refusal(wrong), ["UNAUTHENTICATED", "BAD_CREDENTIALS"]);

      // Stored: the reasons say why; no session of the user is live.
      const sessions = await t.app.database.db
        .selectFrom("sessions")
        .select(["revoked_reason"])
        .where("user_id", "=", first.userId)
        .execute();
      assert.deepEqual(
        sessions.map((s) => s.revoked_reason),
        ["account_disabled", "account_disabled"],
      );
      const tokens = await t.app.database.db
        .selectFrom("api_tokens")
        .select(["revoked_reason"])
        .where("user_id", "=", first.userId)
        .execute();
      assert.deepEqual(
        tokens.map((s) => s.revoked_reason),
        ["account_disabled"],
      );

      // Enabled again: the password works; what was ended stays ended.
      const enabled = await setDisabled(t, admin, first.userId, false);
      assert.equal(enabled.body.data.setUserDisabled.disabled, false);
      const again = await login(t, "to-disable", { password: PASSWORD });
      await assertAccessAccepted(t, again.accessToken, first.userId);
      assertInvalidToken(await me(t, first.accessToken), { reason: "SESSION_ENDED" });
      assertInvalidToken(await t.gql(`{ me { id } }`, { token: apiToken.token }), { reason: "API_TOKEN_REVOKED" });

      const events = await t.gql(`query($id: ID!) { auditEvents(first: 20, userId: $id) { type username detail } }`, {
        token: admin,
        variables: { id: first.userId },
      });
      const control = events.body.data.auditEvents.filter((e: { type: string }) => e.type.startsWith("ACCOUNT_"));
      const rootId = (await t.gql(`{ me { id } }`, { token: admin })).body.data.me.id;
      assert.deepEqual(control, [
        { type: "ACCOUNT_ENABLED", username: "to-disable", detail: `by=${rootId}` },
        { type: "ACCOUNT_DISABLED", username: "to-disable", detail: `ended=2 apiTokens=1 by=${rootId}` },
      ]);
      // Newest first: the wrong password after the refused right one.
      const failed = events.body.data.auditEvents
        .filter((e: { type: string }) => e.type === "LOGIN_FAILED")
        .map((e: { detail: string }) => e.detail);
      assert.deepEqual(failed, ["reason=WRONG_PASSWORD", "reason=ACCOUNT_DISABLED"]);
      // Filterable by type.
      const byType = await t.gql(`{ auditEvents(first: 5, type: "ACCOUNT_DISABLED") { userId } }`, { token: admin });
      assert.ok(byType.body.data.auditEvents.some((e: { userId: string }) => e.userId === first.userId));

      const metrics = await t.app.metrics.text();
      assert.match(metrics, /gta_logins_total\{outcome="disabled"\} [1-9]/);
      assert.match(metrics, /gta_sessions_ended_total\{cause="account_disabled"\} 2/);
    });

    it("changes nothing and records nothing when the account already is as asked", async () => {
      const admin = await rootToken(t);
      const user = await registerUser(t, "already-enabled");
      const res = await setDisabled(t, admin, user.userId, false);
      assert.equal(res.body.data.setUserDisabled.disabled, false);
      await assertAccessAccepted(t, user.accessToken, user.userId);
      const events = await t.gql(`query($id: ID!) { auditEvents(first: 20, userId: $id) { type } }`, {
        token: admin,
        variables: { id: user.userId },
      });
      assert.deepEqual(
        events.body.data.auditEvents.map((e: { type: string }) => e.type),
        ["REGISTERED"],
      );
    });

    it("refuses to disable the last active ADMIN, and counts only active admins when roles change", async () => {
      const admin = await rootToken(t);
      const rootId = (await t.gql(`{ me { id } }`, { token: admin })).body.data.me.id;
      const last = await setDisabled(t, admin, rootId, true);
      assert.deepEqual(codes(last), ["BAD_USER_INPUT"]);
      assert.deepEqual(
        last.body.errors![0]!.extensions!.fields.map((f: { field: string; rule: string }) => [f.field, f.rule]),
        [["disabled", "lastAdmin"]],
      );
      await assertAccessAccepted(t, admin, rootId);

      // A second admin, disabled, does not count: root still cannot be disabled nor lose ADMIN.
      const second = await registerUser(t, "second-admin");
      await t.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER, ADMIN]) { id } }`, {
        token: admin,
        variables: { id: second.userId },
      });
      assert.equal((await setDisabled(t, admin, second.userId, true)).body.data.setUserDisabled.disabled, true);
      assert.deepEqual(codes(await setDisabled(t, admin, rootId, true)), ["BAD_USER_INPUT"]);
      const demote = await t.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER]) { id } }`, {
        token: admin,
        variables: { id: rootId },
      });
      assert.deepEqual(codes(demote), ["BAD_USER_INPUT"]);
      // The disabled admin may lose ADMIN: the active count does not change.
      const demoteDisabled = await t.gql(`mutation($id: ID!) { setUserRoles(userId: $id, roles: [USER]) { roles } }`, {
        token: admin,
        variables: { id: second.userId },
      });
      assert.deepEqual(demoteDisabled.body.data.setUserRoles.roles, ["USER"]);
    });

    it("is for ADMINs: a USER gets FORBIDDEN (ROLE) and nothing changes; an unknown user is NOT_FOUND", async () => {
      const admin = await rootToken(t);
      const target = await registerUser(t, "target-of-user");
      const user = await registerUser(t, "plain-user");
      assert.deepEqual(refusal(await setDisabled(t, user.accessToken, target.userId, true)), ["FORBIDDEN", "ROLE"]);
      await assertAccessAccepted(t, target.accessToken, target.userId);
      assert.deepEqual(codes(await setDisabled(t, admin, "no-such-user", true)), ["NOT_FOUND"]);
    });

    it("shows User.disabled to the user and to ADMINs only", async () => {
      const admin = await rootToken(t);
      const owner = await registerUser(t, "visible-owner");
      const other = await registerUser(t, "other-reader");
      await t.gql(`mutation { createPost(input: { title: "mine", body: "b" }) { id } }`, { token: owner.accessToken });
      const own = await t.gql(`{ me { id disabled } }`, { token: owner.accessToken });
      assert.deepEqual(own.body.data, { me: { id: owner.userId, disabled: false } });
      const byAdmin = await t.gql(`{ users(first: 100) { username disabled } }`, { token: admin });
      assert.ok(byAdmin.body.data.users.some((u: { username: string }) => u.username === "visible-owner"));
      // Someone else reading the author of a post: FORBIDDEN (OWNERSHIP); anonymous: UNAUTHENTICATED.
      const query = `{ posts(first: 100) { title author { username disabled } } }`;
      const foreign = await t.gql(query, { token: other.accessToken });
      assert.ok(foreign.body.errors?.length);
      assert.ok(
        foreign.body.errors.every(
          (e: { extensions?: Record<string, unknown> }) => e.extensions?.reason === "OWNERSHIP",
        ),
        JSON.stringify(foreign.body.errors),
      );
      const anonymous = await t.gql(query);
      assert.ok(
        anonymous.body.errors!.every(
          (e: { extensions?: Record<string, unknown> }) => e.extensions?.reason === "NOT_SIGNED_IN",
        ),
      );
      // The payload of login names the account it signed in, which may read its own flag.
      const signedIn = await loginRaw(t, "visible-owner", { password: PASSWORD });
      assert.equal(signedIn.body.errors, undefined);
      const withFlag = await t.gql(
        `mutation { login(input: { username: "visible-owner", password: "${PASSWORD}" }) { user { disabled } } }`,
      );
      assert.deepEqual(withFlag.body, { data: { login: { user: { disabled: false } } } });
    });

    it("closes the user's subscriptions with 4403 ACCOUNT_DISABLED within a second", async () => {
      const admin = await rootToken(t);
      const user = await registerUser(t, "subscribed");
      const ws = connect(t.url, { token: user.accessToken });
      await ws.connected;
      const started = performance.now();
      await setDisabled(t, admin, user.userId, true);
      const closed = await ws.closed;
      assert.equal(closed.code, 4403);
      assert.equal(closed.reason, "ACCOUNT_DISABLED");
      assert.ok(closed.at - started < 1000, `closed after ${Math.round(closed.at - started)} ms`);
    });

    it("never leaves a live session when a login races the disabling", async () => {
      const admin = await rootToken(t);
      for (let round = 0; round < 4; round++) {
        const username = `racer-${round}`;
        const { userId } = await registerUser(t, username);
        const [signIn] = await Promise.all([
          loginRaw(t, username, { password: PASSWORD }),
          setDisabled(t, admin, userId, true),
        ]);
        // Whichever came first, the account is disabled now and no token of it works.
        if (signIn.body.errors) {
          assert.deepEqual(refusal(signIn), ["UNAUTHENTICATED", "ACCOUNT_DISABLED"]);
        } else {
          assertInvalidToken(await me(t, signIn.body.data.login.accessToken), { reason: "SESSION_ENDED" });
          await assertRefreshRefused(t, signIn.body.data.login.refreshToken);
        }
        const live = await t.app.database.db
          .selectFrom("sessions")
          .select("id")
          .where("user_id", "=", userId)
          .where("revoked_at", "is", null)
          .execute();
        assert.deepEqual(live, [], `round ${round}`);
      }
    });
  });

  describe(`setUserDisabled across instances (${kind})`, () => {
    const [a, b] = useTwoTestApps(kind, withRoot());

    it("refuses the user's access and API tokens on the other instance within a second", async () => {
      const admin = await rootToken(a);
      const user = await registerUser(a, "two-instance-disable");
      const apiToken = (await a.gql(CREATE_API_TOKEN, { token: user.accessToken })).body.data.createApiToken.token;
      await assertAccessAccepted(b, user.accessToken, user.userId);
      assert.equal((await b.gql(`{ me { id } }`, { token: apiToken })).body.data.me.id, user.userId);
      const started = performance.now();
      await setDisabled(a, admin, user.userId, true);
      for (const [token, reason] of [
        [user.accessToken, "SESSION_ENDED"],
        [apiToken, "API_TOKEN_REVOKED"],
      ] as const) {
        let res = await me(b, token);
        while (res.status === 200 && performance.now() - started < 3000) res = await me(b, token);
        assertInvalidToken(res, { reason });
      }
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `refused after ${Math.round(elapsed)} ms`);
      assert.deepEqual(refusal(await loginRaw(b, "two-instance-disable", { password: PASSWORD })), [
        "UNAUTHENTICATED",
        "ACCOUNT_DISABLED",
      ]);
    });
  });
}
