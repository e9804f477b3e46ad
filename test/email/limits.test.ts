import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { codes, PASSWORD, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  countRows,
  fate,
  outbox,
  refusal,
  registerVerified,
  registerWithEmail,
  registerWithEmailRaw,
  requestReset,
  RESET_SUBJECT,
  resetPassword,
  VERIFY_SUBJECT,
} from "./email-helpers.js";

/** The metric line of `name` with `label` in the app's Prometheus text, as a number (0 when absent). */
async function metricValue(t: { app: { metrics: { registry: { metrics(): Promise<string> } } } }, line: RegExp) {
  const text = await t.app.metrics.registry.metrics();
  const match = text.split("\n").find((l) => line.test(l));
  return match ? Number(match.split(" ").pop()) : 0;
}

for (const kind of DATABASES) {
  describe(`e-mail limits (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it("sends at most 3 link mails per address per hour (register's verification is one): further requests answer true and write a suppressed row", async () => {
      const user = await registerVerified(t, "popular", "popular@example.com");
      const line = /^gta_limit_refusals_total\{limit="EMAIL_MAX_PER_ADDRESS"\}/;
      const before = await metricValue(t, line);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual((await requestReset(t, "popular@example.com")).body, { data: { requestPasswordReset: true } });
      }
      const resets = (await outbox(t, "popular@example.com")).filter((m) => m.subject === RESET_SUBJECT);
      assert.deepEqual(
        resets.map((m) => fate(m.status)),
        ["mailed", "mailed", "suppressed"],
      );
      assert.equal((await metricValue(t, line)) - before, 1);
      // The suppressed request voided nothing: the last link mailed still works.
      const second = /token=([A-Za-z0-9_-]+)/.exec(resets[1]!.text_body)![1]!;
      const res = await resetPassword(t, { token: second, newPassword: "after the allowance" });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.resetPassword.user.id, user.userId);
    });

    it("counts the allowance per address, not per request: unknown addresses are suppressed from the 4th on too", async () => {
      for (let i = 0; i < 4; i++) await requestReset(t, "Stranger@example.com");
      await requestReset(t, "stranger@EXAMPLE.com");
      const rows = await outbox(t);
      const stranger = rows.filter((m) => m.recipient.toLowerCase() === "stranger@example.com");
      assert.deepEqual(
        stranger.map((m) => m.status),
        ["suppressed", "suppressed", "suppressed", "suppressed", "suppressed"],
      );
    });

    it("applies the allowance to requestEmailVerification", async () => {
      const user = await registerWithEmail(t, "eager", "eager@example.com");
      for (let i = 0; i < 4; i++) {
        const res = await t.gql(`mutation { requestEmailVerification }`, { token: user.accessToken });
        assert.deepEqual(res.body, { data: { requestEmailVerification: true } });
      }
      const mails = (await outbox(t, "eager@example.com")).filter((m) => m.subject === VERIFY_SUBJECT);
      // register's mail and two requests take the hour's three; the 3rd and 4th requests are suppressed.
      assert.deepEqual(
        mails.map((m) => fate(m.status)),
        ["mailed", "mailed", "mailed", "suppressed", "suppressed"],
      );
    });

    it("takes register's and changeEmail's links from the same allowance, so accounts made from many IPs cannot flood one inbox", async () => {
      for (const name of ["flood-a", "flood-b", "flood-c", "flood-d"]) {
        const res = await registerWithEmailRaw(t, name, "target@example.com");
        assert.equal(res.body.errors, undefined);
      }
      const changer = await registerUser(t, "changer");
      // The allowance is the address's, whatever its letter case.
      const changed = await t.gql(`mutation { changeEmail(newEmail: "Target@Example.com") }`, {
        token: changer.accessToken,
      });
      assert.deepEqual(changed.body, { data: { changeEmail: true } });
      const mails = (await outbox(t)).filter(
        (m) => m.recipient.toLowerCase() === "target@example.com" && m.subject === VERIFY_SUBJECT,
      );
      assert.deepEqual(mails.map((m) => fate(m.status)).sort(), [
        "mailed",
        "mailed",
        "mailed",
        "suppressed",
        "suppressed",
      ]);
      // Every account was made all the same; only the mail was held back.
      const made = await t.app.database.db
        .selectFrom("users")
        .select("username")
        .where("username", "in", ["flood-a", "flood-b", "flood-c", "flood-d"])
        .execute();
      assert.equal(made.length, 4);
    });
  });

  describe(`EMAIL_REQUESTS_MAX_PER_IP (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "3" } });

    it("refuses the 4th mail-sending request from one IP within the hour with RATE_LIMITED and retryAfter, writing nothing", async () => {
      const user = await registerUser(t, "limited");
      assert.deepEqual((await requestReset(t, "a@example.com")).body, { data: { requestPasswordReset: true } });
      assert.equal((await registerWithEmailRaw(t, "with-address", "b@example.com")).body.errors, undefined);
      assert.deepEqual(
        (await t.gql(`mutation { changeEmail(newEmail: "c@example.com") }`, { token: user.accessToken })).body,
        { data: { changeEmail: true } },
      );
      const rows = await countRows(t, "mail_outbox");
      const before = await metricValue(t, /^gta_rate_limit_hits_total\{limit="EMAIL_REQUESTS_MAX_PER_IP"\}/);
      const refused = [
        await requestReset(t, "d@example.com"),
        await registerWithEmailRaw(t, "refused-register", "e@example.com"),
        await t.gql(`mutation { changeEmail(newEmail: "f@example.com") }`, { token: user.accessToken }),
        await t.gql(`mutation { requestEmailVerification }`, { token: user.accessToken }),
      ];
      for (const res of refused) {
        assert.deepEqual(codes(res), ["RATE_LIMITED"]);
        assert.ok(res.body.errors?.[0]?.extensions?.retryAfter > 0);
      }
      assert.equal(await countRows(t, "mail_outbox"), rows);
      const after = await metricValue(t, /^gta_rate_limit_hits_total\{limit="EMAIL_REQUESTS_MAX_PER_IP"\}/);
      assert.equal(after - before, 4);
      // Register without an address is not a mail request.
      assert.equal((await registerUser(t, "no-address")).userId.length > 0, true);
    });
  });

  describe(`in production without SMTP_URL (${kind})`, () => {
    const t = useTestApp(kind, { env: { NODE_ENV: "production" } });

    it("answers every field that sends mail with FORBIDDEN, reason EMAIL_NOT_CONFIGURED, and changes nothing", async () => {
      const user = await registerUser(t, "offline");
      const rows = await countRows(t, "mail_outbox");
      const refused = [
        await requestReset(t, "a@example.com"),
        await registerWithEmailRaw(t, "with-address", "b@example.com"),
        await t.gql(`mutation { changeEmail(newEmail: "c@example.com") }`, { token: user.accessToken }),
        await t.gql(`mutation { requestEmailVerification }`, { token: user.accessToken }),
      ];
      for (const res of refused) {
        assert.deepEqual(refusal(res), { codes: ["FORBIDDEN"], reason: "EMAIL_NOT_CONFIGURED" });
      }
      assert.equal(await countRows(t, "mail_outbox"), rows);
      assert.equal(await countRows(t, "email_tokens"), 0);
      const login = await t.gql(
        `mutation { login(input: { username: "with-address", password: "${PASSWORD}" }) { accessToken } }`,
      );
      assert.deepEqual(refusal(login).reason, "BAD_CREDENTIALS", "register with an address created no account");
    });
  });
}
