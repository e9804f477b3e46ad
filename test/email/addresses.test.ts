import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { assertInvalidToken, codes, login, loginRaw, me, PASSWORD, refreshRaw, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  AUTH_PAYLOAD,
  countRows,
  fate,
  latestToken,
  outbox,
  refusal,
  registerVerified,
  registerWithEmail,
  registerWithEmailRaw,
  VERIFY_SUBJECT,
  verifyEmail,
} from "./email-helpers.js";

const ROOT = { username: "root", password: "root password 1" };

function loginAs(t: TestApp, username: string, password = PASSWORD) {
  return t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input: { username, password } },
  });
}

function changeEmail(t: TestApp, accessToken: string, newEmail: string) {
  return t.gql(`mutation($e: String!) { changeEmail(newEmail: $e) }`, {
    token: accessToken,
    variables: { e: newEmail },
  });
}

function requestVerification(t: TestApp, accessToken: string) {
  return t.gql(`mutation { requestEmailVerification }`, { token: accessToken });
}

async function emailOf(t: TestApp, accessToken: string): Promise<{ email: string | null; emailVerified: boolean }> {
  const res = await t.gql(`{ me { email emailVerified } }`, { token: accessToken });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data.me;
}

for (const kind of DATABASES) {
  describe(`e-mail addresses on accounts (${kind})`, () => {
    const t = useTestApp(kind, {
      env: { EMAIL_REQUESTS_MAX_PER_IP: "100000", ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password },
    });

    it("stores the address of register unverified and mails a verification link; the link verifies it", async () => {
      const res = await registerWithEmailRaw(t, "newcomer", "Newcomer@Example.com");
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.deepEqual(
        { email: res.body.data.register.user.email, emailVerified: res.body.data.register.user.emailVerified },
        { email: "Newcomer@Example.com", emailVerified: false },
      );
      const mails = await outbox(t, "Newcomer@Example.com");
      assert.deepEqual(
        mails.map((m) => [m.subject, fate(m.status)]),
        [[VERIFY_SUBJECT, "mailed"]],
      );
      assert.match(mails[0]!.text_body, /\/verify-email#token=evt_[A-Za-z0-9_-]{43}\n/);
      assert.match(mails[0]!.text_body, /newcomer/);
      const accessToken = res.body.data.register.accessToken;
      assert.deepEqual(await emailOf(t, accessToken), { email: "Newcomer@Example.com", emailVerified: false });
      assert.deepEqual((await verifyEmail(t, await latestToken(t, "Newcomer@Example.com", VERIFY_SUBJECT))).body, {
        data: { verifyEmail: true },
      });
      assert.deepEqual(await emailOf(t, accessToken), { email: "Newcomer@Example.com", emailVerified: true });
      // Verifying the address the account registered with ends no session.
      assert.equal((await me(t, accessToken)).status, 200);
    });

    it("refuses an invalid or over-long address at register with BAD_USER_INPUT on email, creating nothing", async () => {
      const before = await countRows(t, "mail_outbox");
      const cases = ["no-at-sign", "two@@example.com", "space in@example.com", `${"a".repeat(65)}@example.com`];
      cases.push(`${"a".repeat(60)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.com`); // 255 characters
      for (const email of cases) {
        const res = await registerWithEmailRaw(t, "refused-user", email);
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"], email);
        assert.deepEqual(
          res.body.errors?.[0]?.extensions?.fields.map((f: { field: string; rule: string }) => `${f.field}:${f.rule}`),
          ["email:isEmailAddress"],
        );
      }
      assert.deepEqual(codes(await loginRaw(t, "refused-user")), ["UNAUTHENTICATED"], "no account was created");
      assert.equal(await countRows(t, "mail_outbox"), before);
    });

    it("signs in with a verified address in username (any letter case), and refuses an unverified one like a wrong password", async () => {
      await registerVerified(t, "by-address", "by-address@example.com");
      const ok = await loginAs(t, "BY-ADDRESS@example.COM");
      assert.equal(ok.body.errors, undefined, JSON.stringify(ok.body.errors));
      assert.equal(ok.body.data.login.user.username, "by-address");
      const wrong = await loginAs(t, "by-address@example.com", "not the password");
      assert.deepEqual(refusal(wrong), { codes: ["UNAUTHENTICATED"], reason: "BAD_CREDENTIALS" });

      await registerWithEmail(t, "pending", "pending@example.com");
      const unverified = await loginAs(t, "pending@example.com");
      assert.deepEqual(refusal(unverified), { codes: ["UNAUTHENTICATED"], reason: "BAD_CREDENTIALS" });
      assert.equal(unverified.body.errors?.[0]?.message, wrong.body.errors?.[0]?.message);
      const malformed = await loginAs(t, "pending@");
      assert.deepEqual(codes(malformed), ["BAD_USER_INPUT"]);
      assert.equal(malformed.body.errors?.[0]?.extensions?.fields[0].rule, "isEmailAddress");
    });

    it("shows User.email and emailVerified to the user and ADMINs only (null and false to others)", async () => {
      const owner = await registerVerified(t, "private-person", "private@example.com");
      const other = await registerUser(t, "nosy-neighbour");
      await t.gql(`mutation { createPost(input: { title: "hello", body: "world" }) { id } }`, {
        token: owner.accessToken,
      });
      const query = `{ posts(first: 100) { author { username email emailVerified } } }`;
      const authorAs = async (token?: string) =>
        (await t.gql(query, { token })).body.data.posts.find(
          (p: { author: { username: string } }) => p.author.username === "private-person",
        ).author;
      const hidden = { username: "private-person", email: null, emailVerified: false };
      const shown = { username: "private-person", email: "private@example.com", emailVerified: true };
      assert.deepEqual(await authorAs(other.accessToken), hidden);
      assert.deepEqual(await authorAs(), hidden);
      assert.deepEqual(await authorAs(owner.accessToken), shown);
      const admin = await login(t, ROOT.username, { password: ROOT.password });
      assert.deepEqual(await authorAs(admin.accessToken), shown);
    });

    it("changes the address: a link to the new one, a notice to the old; the old one counts until the new is verified, then the other sessions end", async () => {
      const user = await registerVerified(t, "mover", "old-home@example.com");
      const other = await login(t, "mover");
      const res = await changeEmail(t, user.accessToken, "new-home@example.com");
      assert.deepEqual(res.body, { data: { changeEmail: true } });
      const notice = (await outbox(t, "old-home@example.com")).filter((m) => m.subject !== VERIFY_SUBJECT);
      assert.deepEqual(
        notice.map((m) => [m.subject, fate(m.status)]),
        [["Your e-mail address is changing", "mailed"]],
      );
      assert.doesNotMatch(notice[0]!.text_body, /new-home/, "the notice does not name the new address");
      // Until verified, the old address is the account's: it signs in, the new one does not.
      assert.deepEqual(await emailOf(t, user.accessToken), { email: "old-home@example.com", emailVerified: true });
      assert.equal((await loginAs(t, "old-home@example.com")).body.errors, undefined);
      assert.deepEqual(refusal(await loginAs(t, "new-home@example.com")).reason, "BAD_CREDENTIALS");

      const token = await latestToken(t, "new-home@example.com", VERIFY_SUBJECT);
      assert.deepEqual((await verifyEmail(t, token, user.accessToken)).body, { data: { verifyEmail: true } });
      assert.deepEqual(await emailOf(t, user.accessToken), { email: "new-home@example.com", emailVerified: true });
      assertInvalidToken(await me(t, other.accessToken), { reason: "SESSION_ENDED" });
      assert.deepEqual(refusal(await refreshRaw(t, other.refreshToken)).reason, "REFRESH_TOKEN_INVALID");
      assert.equal((await loginAs(t, "new-home@example.com")).body.errors, undefined);
      assert.deepEqual(refusal(await loginAs(t, "old-home@example.com")).reason, "BAD_CREDENTIALS");
    });

    it("needs a fresh session token for changeEmail and refuses the current address and invalid ones", async () => {
      const user = await registerVerified(t, "careful", "careful@example.com");
      const refreshed = await refreshRaw(t, user.refreshToken);
      const stale = refreshed.body.data.refreshToken.accessToken;
      assert.deepEqual(codes(await changeEmail(t, stale, "elsewhere@example.com")), ["FRESH_TOKEN_REQUIRED"]);
      const fresh = await login(t, "careful");
      const same = await changeEmail(t, fresh.accessToken, "CAREFUL@example.com");
      assert.deepEqual(codes(same), ["BAD_USER_INPUT"]);
      assert.equal(same.body.errors?.[0]?.extensions?.fields[0].field, "newEmail");
      const invalid = await changeEmail(t, fresh.accessToken, "x".repeat(300));
      assert.deepEqual(codes(invalid), ["BAD_USER_INPUT"]);
      assert.deepEqual((await outbox(t, "elsewhere@example.com")).length, 0);
    });

    it("accepts any valid address at changeEmail, but a verification of an address another account verified fails", async () => {
      await registerVerified(t, "first-owner", "taken@example.com");
      const late = await registerVerified(t, "late-owner", "late@example.com");
      assert.deepEqual((await changeEmail(t, late.accessToken, "taken@example.com")).body, {
        data: { changeEmail: true },
      });
      const token = await latestToken(t, "taken@example.com", VERIFY_SUBJECT);
      const res = await verifyEmail(t, token);
      assert.deepEqual(refusal(res), { codes: ["UNAUTHENTICATED"], reason: "VERIFICATION_TOKEN_INVALID" });
      assert.deepEqual(await emailOf(t, late.accessToken), { email: "late@example.com", emailVerified: true });
    });

    it("sends a new verification link on requestEmailVerification, voiding the older one", async () => {
      const user = await registerWithEmail(t, "slowpoke", "slowpoke@example.com");
      const older = await latestToken(t, "slowpoke@example.com", VERIFY_SUBJECT);
      assert.deepEqual((await requestVerification(t, user.accessToken)).body, {
        data: { requestEmailVerification: true },
      });
      const newer = await latestToken(t, "slowpoke@example.com", VERIFY_SUBJECT);
      assert.notEqual(newer, older);
      assert.deepEqual(refusal(await verifyEmail(t, older)).reason, "VERIFICATION_TOKEN_INVALID");
      assert.deepEqual((await verifyEmail(t, newer)).body, { data: { verifyEmail: true } });
      const nothing = await requestVerification(t, user.accessToken);
      assert.deepEqual(codes(nothing), ["BAD_USER_INPUT"]);
      assert.equal(nothing.body.errors?.[0]?.extensions?.fields[0].rule, "nothingToVerify");
      const anonymous = await t.gql(`mutation { requestEmailVerification }`);
      assert.deepEqual(refusal(anonymous), { codes: ["UNAUTHENTICATED"], reason: "NOT_SIGNED_IN" });
    });

    it("refuses unknown, malformed and reset tokens at verifyEmail with VERIFICATION_TOKEN_INVALID", async () => {
      for (const token of ["evt_" + "B".repeat(43), "", "prt_" + "B".repeat(43), "evt_" + "B".repeat(44)]) {
        assert.deepEqual(refusal(await verifyEmail(t, token)), {
          codes: ["UNAUTHENTICATED"],
          reason: "VERIFICATION_TOKEN_INVALID",
        });
      }
    });
  });
}
