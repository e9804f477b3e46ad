// Step-up and MFA_REQUIRED_ROLES through the API. `aal: 2` (changePassword, deleteAccount,
// createApiToken): refused with MFA_REQUIRED for a session that owes its second factor, allowed at
// AAL2 and for a user without a second factor. MFA_REQUIRED_ROLES: a field of such a role answers
// MFA_ENROLLMENT_REQUIRED to a user with no second factor, and createApiToken cannot mint a token
// of such a role without AAL2, so an API token is no way around the rule.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MFA_REQUIRED_MESSAGE, mfaEnrollmentRequiredError } from "../../src/access/auth-checker.js";
import { STEP_UP_TEXT } from "../../src/access/requires.js";
import { Role } from "../../src/access/roles.js";
import { ROOT, rootToken, withRoot } from "../helpers/admin.js";
import { type GraphQLResponse, login, PASSWORD, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { AAL2, PENDING, tokenWith } from "../helpers/assurance.js";
import { DATABASES } from "../helpers/databases.js";

/** One FORBIDDEN error with `reason` and `message`, and no data. */
function assertRefused(res: GraphQLResponse, reason: string, message: string): void {
  assert.equal(res.status, 200);
  assert.deepEqual(
    res.body.errors?.map((e) => [e.extensions?.code, e.extensions?.reason, e.message]),
    [["FORBIDDEN", reason, message]],
  );
  assert.equal(res.body.data ?? null, null);
}

const CREATE_API_TOKEN = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { scopes } } }`;

function createApiToken(t: TestApp, token: string, scopes: string[]): Promise<GraphQLResponse> {
  return t.gql(CREATE_API_TOKEN, { token, variables: { input: { name: "script", scopes } } });
}

async function apiTokenCount(t: TestApp, token: string): Promise<number> {
  const res = await t.gql(`{ apiTokens { id } }`, { token });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data.apiTokens.length;
}

for (const kind of DATABASES) {
  describe(`step-up with @Requires aal: 2 (${kind})`, () => {
    const t = useTestApp(kind);

    it("says so in the descriptions of changePassword, deleteAccount, createApiToken and changeEmail", () => {
      const mutations = t.app.schema.getMutationType()!.getFields();
      for (const name of ["changePassword", "deleteAccount", "createApiToken", "changeEmail"]) {
        const expected = `(from a sign-in: login, register, resetPassword or a passkey, and verifyMfa after one; not from refreshToken) ${STEP_UP_TEXT}; API tokens are refused.`;
        assert.ok(mutations[name]!.description!.endsWith(expected), `${name}: ${mutations[name]!.description}`);
      }
    });

    it("refuses deleteAccount and createApiToken to a session that owes its second factor, changing nothing", async () => {
      const user = await registerUser(t, "stepup-pending");
      const pending = tokenWith(t, user.accessToken, PENDING);
      const deleted = await t.gql(`mutation($p: String!) { deleteAccount(password: $p) }`, {
        token: pending,
        variables: { p: PASSWORD },
      });
      assertRefused(deleted, "MFA_REQUIRED", MFA_REQUIRED_MESSAGE);
      assertRefused(await createApiToken(t, pending, ["PROFILE_READ"]), "MFA_REQUIRED", MFA_REQUIRED_MESSAGE);
      assert.equal(await apiTokenCount(t, user.accessToken), 0);
      const me = await t.gql(`{ me { username } }`, { token: user.accessToken });
      assert.deepEqual(me.body.data, { me: { username: "stepup-pending" } }, "the account is still there");
    });

    it("lets an AAL2 session change its password", async () => {
      const user = await registerUser(t, "stepup-aal2");
      const res = await t.gql(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
        token: tokenWith(t, user.accessToken, AAL2),
        variables: { input: { currentPassword: PASSWORD, newPassword: "an aal2 password" } },
      });
      assert.deepEqual(res.body, { data: { changePassword: true } });
      await login(t, "stepup-aal2", { password: "an aal2 password" });
    });

    it("lets a user without a second factor (AAL1, nothing owed) create an API token: nothing to step up with", async () => {
      const user = await registerUser(t, "stepup-unenrolled");
      const res = await createApiToken(t, user.accessToken, ["PROFILE_READ"]);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.deepEqual(res.body.data.createApiToken.apiToken.scopes, ["PROFILE_READ"]);
      assert.equal(await apiTokenCount(t, user.accessToken), 1);
    });
  });

  describe(`MFA_REQUIRED_ROLES=ADMIN (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ MFA_REQUIRED_ROLES: "ADMIN" }));
    const ADMIN_ENROLL = mfaEnrollmentRequiredError(Role.ADMIN).message;

    it("answers an ADMIN without a second factor MFA_ENROLLMENT_REQUIRED on users, with how to enroll; me works", async () => {
      const token = await rootToken(t);
      const res = await t.gql(`{ users { username } }`, { token });
      assertRefused(res, "MFA_ENROLLMENT_REQUIRED", ADMIN_ENROLL);
      assert.match(ADMIN_ENROLL, /enrollTotp then confirmTotp, or startPasskeyRegistration/);
      const me = await t.gql(`{ me { username roles } }`, { token });
      assert.deepEqual(me.body, { data: { me: { username: ROOT.username, roles: ["ADMIN", "USER"] } } });
    });

    it("answers MFA_REQUIRED to an ADMIN session that owes its factor, serves one at AAL2, and ROLE to a plain user", async () => {
      const token = await rootToken(t);
      assertRefused(
        await t.gql(`{ users { username } }`, { token: tokenWith(t, token, PENDING) }),
        "MFA_REQUIRED",
        MFA_REQUIRED_MESSAGE,
      );
      const served = await t.gql(`{ users(first: 1) { username } }`, { token: tokenWith(t, token, AAL2) });
      assert.deepEqual(served.body, { data: { users: [{ username: ROOT.username }] } });
      const plain = await registerUser(t, "roles-plain");
      assertRefused(
        await t.gql(`{ users { username } }`, { token: plain.accessToken }),
        "ROLE",
        "This needs the ADMIN role.",
      );
    });

    it("refuses createApiToken with the ADMIN scope without AAL2 and stores nothing; PROFILE_READ is fine; AAL2 mints it and it works", async () => {
      const token = await rootToken(t);
      const before = await apiTokenCount(t, token);
      assertRefused(await createApiToken(t, token, ["ADMIN"]), "MFA_ENROLLMENT_REQUIRED", ADMIN_ENROLL);
      assertRefused(
        await createApiToken(t, tokenWith(t, token, PENDING), ["ADMIN", "PROFILE_READ"]),
        "MFA_REQUIRED",
        MFA_REQUIRED_MESSAGE,
      );
      assert.equal(await apiTokenCount(t, token), before);
      const reader = await createApiToken(t, token, ["PROFILE_READ"]);
      assert.deepEqual(reader.body.data?.createApiToken?.apiToken, { scopes: ["PROFILE_READ"] });
      const admin = await createApiToken(t, tokenWith(t, token, AAL2), ["ADMIN"]);
      assert.equal(admin.body.errors, undefined, JSON.stringify(admin.body.errors));
      // An API token cannot hold a second factor: it was minted at AAL2, so it passes.
      const users = await t.gql(`{ users(first: 1) { username } }`, { token: admin.body.data.createApiToken.token });
      assert.deepEqual(users.body, { data: { users: [{ username: ROOT.username }] } });
    });
  });

  describe(`MFA_REQUIRED_ROLES=USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { MFA_REQUIRED_ROLES: "USER" } });
    const USER_ENROLL = mfaEnrollmentRequiredError(Role.USER).message;

    it("answers createPost MFA_ENROLLMENT_REQUIRED to a user without a second factor and stores nothing; me, posts and logout work", async () => {
      const user = await registerUser(t, "everyone-enrolls");
      const res = await t.gql(`mutation { createPost(input: { title: "t", body: "b" }) { id } }`, {
        token: user.accessToken,
      });
      assertRefused(res, "MFA_ENROLLMENT_REQUIRED", USER_ENROLL);
      const me = await t.gql(`{ me { username } }`, { token: user.accessToken });
      assert.deepEqual(me.body, { data: { me: { username: "everyone-enrolls" } } });
      const posts = await t.gql(`{ posts { id } }`, { token: user.accessToken });
      assert.deepEqual(posts.body, { data: { posts: [] } });
      assertRefused(
        await createApiToken(t, user.accessToken, ["PROFILE_READ"]),
        "MFA_ENROLLMENT_REQUIRED",
        USER_ENROLL,
      );
      const logout = await t.gql(`mutation { logout }`, { token: user.accessToken });
      assert.deepEqual(logout.body, { data: { logout: true } });
    });

    it("serves createPost at AAL2", async () => {
      const user = await registerUser(t, "everyone-aal2");
      const res = await t.gql(`mutation { createPost(input: { title: "t", body: "b" }) { title } }`, {
        token: tokenWith(t, user.accessToken, AAL2),
      });
      assert.deepEqual(res.body, { data: { createPost: { title: "t" } } });
    });
  });
}
