import "reflect-metadata";

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { buildAppSchema } from "../../src/schema.js";
import {
  assertAccessAccepted,
  assertAccessRefused,
  assertRefreshRefused,
  codes,
  type GraphQLResponse,
  login,
  loginRaw,
  PASSWORD,
  refresh,
  registerUser,
} from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const NEW_PASSWORD = "a brand new passphrase";

for (const kind of DATABASES) {
  describe(`changePassword and fresh tokens over HTTP (${kind})`, () => {
    const t = useTestApp(kind);

    function changePassword(
      token: string | undefined,
      currentPassword: string,
      newPassword: string,
    ): Promise<GraphQLResponse> {
      return t.gql(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
        ...(token ? { token } : {}),
        variables: { input: { currentPassword, newPassword } },
      });
    }

    async function assertPasswordWorks(username: string, password: string): Promise<void> {
      const res = await loginRaw(t, username, { password });
      assert.equal(res.body.errors, undefined, `${username} cannot log in with the expected password`);
      assert.equal(res.body.data.login.user.username, username);
    }

    async function assertPasswordRefused(username: string, password: string): Promise<void> {
      const res = await loginRaw(t, username, { password });
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(res.body.data, null);
    }

    function problemFields(res: GraphQLResponse): string[] {
      return (res.body.errors?.[0]?.extensions?.fields ?? []).map((f: { field: string }) => f.field);
    }

    it("changes the password with a fresh token: the new one logs in, the old one does not, other sessions end, this one stays", async () => {
      const other = await registerUser(t, "changer");
      const anotherOther = await login(t, "changer");
      const current = await login(t, "changer");

      const res = await changePassword(current.accessToken, PASSWORD, NEW_PASSWORD);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { changePassword: true } });

      await assertPasswordWorks("changer", NEW_PASSWORD);
      await assertPasswordRefused("changer", PASSWORD);

      for (const ended of [other, anotherOther]) {
        await assertAccessRefused(t, ended.accessToken);
        await assertRefreshRefused(t, ended.refreshToken);
      }
      await assertAccessAccepted(t, current.accessToken, current.userId);
      const next = await refresh(t, current.refreshToken);
      await assertAccessAccepted(t, next.accessToken, current.userId);
    });

    it("refuses a token minted by refreshToken with FRESH_TOKEN_REQUIRED and keeps the old password", async () => {
      const loggedIn = await registerUser(t, "stale");
      const refreshed = await refresh(t, loggedIn.refreshToken);

      const res = await changePassword(refreshed.accessToken, PASSWORD, NEW_PASSWORD);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FRESH_TOKEN_REQUIRED"]);
      assert.equal(res.body.data, null);

      await assertPasswordWorks("stale", PASSWORD);
      await assertPasswordRefused("stale", NEW_PASSWORD);
      await assertAccessAccepted(t, refreshed.accessToken, loggedIn.userId);
    });

    it("refuses a wrong current password with BAD_USER_INPUT on currentPassword and changes nothing", async () => {
      const other = await registerUser(t, "forgetful");
      const current = await login(t, "forgetful");

      const res = await changePassword(current.accessToken, "not my password at all", NEW_PASSWORD);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.deepEqual(problemFields(res), ["currentPassword"]);
      assert.equal(res.body.data, null);

      await assertPasswordWorks("forgetful", PASSWORD);
      await assertPasswordRefused("forgetful", NEW_PASSWORD);
      await assertAccessAccepted(t, other.accessToken, other.userId);
      await refresh(t, other.refreshToken);
    });

    it("refuses a new password of 7 characters with BAD_USER_INPUT on newPassword", async () => {
      const current = await registerUser(t, "shorty");
      const res = await changePassword(current.accessToken, PASSWORD, "1234567");
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.deepEqual(problemFields(res), ["newPassword"]);
      await assertPasswordWorks("shorty", PASSWORD);
    });

    it("refuses a new password equal to the current one with BAD_USER_INPUT on newPassword, and other sessions keep working", async () => {
      const other = await registerUser(t, "sameold");
      const current = await login(t, "sameold");
      const res = await changePassword(current.accessToken, PASSWORD, PASSWORD);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.deepEqual(problemFields(res), ["newPassword"]);
      await assertAccessAccepted(t, other.accessToken, other.userId);
      await assertPasswordWorks("sameold", PASSWORD);
    });

    it("answers an anonymous changePassword with UNAUTHENTICATED and HTTP 200", async () => {
      const res = await changePassword(undefined, PASSWORD, NEW_PASSWORD);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(res.body.data, null);
    });

    it("says in changePassword's schema description, as Sandbox shows it, that a fresh token is needed", async () => {
      const res = await t.gql(`{ __type(name: "Mutation") { fields { name description } } }`);
      assert.equal(res.status, 200);
      const field = res.body.data.__type.fields.find((f: { name: string }) => f.name === "changePassword");
      assert.match(field.description, /Requires: signed in with a fresh session token/);
      assert.match(field.description, /not from refreshToken/);
    });
  });
}

describe("the built schema", () => {
  it("documents on changePassword that it requires a fresh token", async () => {
    const schema = await buildAppSchema();
    const field = schema.getMutationType()?.getFields().changePassword;
    assert.ok(field, "the schema has a changePassword mutation");
    assert.match(
      field.description ?? "",
      /Requires: signed in with a fresh session token \(from a sign-in: login, register, resetPassword or a passkey, and verifyMfa after one; not from refreshToken\) at assurance AAL2 \(a second factor proven\) when the user has one; API tokens are refused\./,
    );
  });
});
