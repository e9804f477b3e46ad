import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { codes, loginRaw } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  countRows,
  latestToken,
  refusal,
  registerVerified,
  registerWithEmail,
  requestReset,
  RESET_SUBJECT,
  resetPassword,
  VERIFY_SUBJECT,
  verifyEmail,
} from "./email-helpers.js";

const RACERS = 20;

for (const kind of DATABASES) {
  describe(`single use under concurrency (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it(`lets exactly one of ${RACERS} concurrent resetPassword calls with one token win; the others get RESET_TOKEN_INVALID`, async (tc) => {
      await registerVerified(t, "contested", "contested@example.com");
      await requestReset(t, "contested@example.com");
      const token = await latestToken(t, "contested@example.com", RESET_SUBJECT);
      const sessionsBefore = await countRows(t, "sessions");
      const passwords = Array.from({ length: RACERS }, (_, i) => `racing passphrase ${i}`);
      const results = await Promise.all(passwords.map((newPassword) => resetPassword(t, { token, newPassword })));

      const winners = results.flatMap((res, i) => (res.body.data?.resetPassword ? [i] : []));
      const losers = results.filter((res) => refusal(res).reason === "RESET_TOKEN_INVALID");
      const message = `[${kind}] ${RACERS} concurrent resetPassword: ${winners.length} won, ${losers.length} RESET_TOKEN_INVALID`;
      tc.diagnostic(message);
      console.log(message);
      assert.equal(winners.length, 1);
      assert.equal(losers.length, RACERS - 1);
      for (const res of losers) assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      // The winner's password is the one that holds, and exactly one new session was started.
      const winner = passwords[winners[0]!]!;
      assert.equal((await loginRaw(t, "contested", { password: winner })).body.errors, undefined);
      const other = passwords.find((p) => p !== winner)!;
      assert.deepEqual(codes(await loginRaw(t, "contested", { password: other })), ["UNAUTHENTICATED"]);
      assert.equal(await countRows(t, "sessions"), sessionsBefore + 2, "the reset's session and the login above");
    });

    it(`lets exactly one of ${RACERS} concurrent verifyEmail calls with one token win; the others get VERIFICATION_TOKEN_INVALID`, async (tc) => {
      await registerWithEmail(t, "verifier", "verifier@example.com");
      const token = await latestToken(t, "verifier@example.com", VERIFY_SUBJECT);
      const results = await Promise.all(Array.from({ length: RACERS }, () => verifyEmail(t, token)));
      const winners = results.filter((res) => res.body.data?.verifyEmail === true);
      const losers = results.filter((res) => refusal(res).reason === "VERIFICATION_TOKEN_INVALID");
      const message = `[${kind}] ${RACERS} concurrent verifyEmail: ${winners.length} won, ${losers.length} VERIFICATION_TOKEN_INVALID`;
      tc.diagnostic(message);
      console.log(message);
      assert.equal(winners.length, 1);
      assert.equal(losers.length, RACERS - 1);
    });

    it("lets only one of two accounts verify the same address when both race for it", async () => {
      await registerWithEmail(t, "first-claim", "shared@example.com");
      const first = await latestToken(t, "shared@example.com", VERIFY_SUBJECT);
      await registerWithEmail(t, "second-claim", "shared@example.com");
      const second = await latestToken(t, "shared@example.com", VERIFY_SUBJECT);
      assert.notEqual(first, second);
      const [a, b] = await Promise.all([verifyEmail(t, first), verifyEmail(t, second)]);
      const outcomes = [a, b].map((res) => res.body.data?.verifyEmail ?? refusal(res).reason).sort();
      assert.deepEqual(outcomes, ["VERIFICATION_TOKEN_INVALID", true].sort());
    });
  });
}
