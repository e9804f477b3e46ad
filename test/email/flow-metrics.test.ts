import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  latestToken,
  refusal,
  registerVerified,
  requestReset,
  RESET_SUBJECT,
  resetPassword,
  VERIFY_SUBJECT,
  verifyEmail,
} from "./email-helpers.js";

/** Every `gta_email_flow_steps_total` sample of the app, by step. */
async function steps(t: TestApp): Promise<Record<string, number>> {
  const text = await t.app.metrics.registry.metrics();
  const found: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^gta_email_flow_steps_total\{step="([a-z_]+)"\} (\d+)$/.exec(line);
    if (match) found[match[1]!] = Number(match[2]);
  }
  return found;
}

/** What changed between two readings, leaving out the steps that did not move. */
function moved(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([step, n]) => [step, n - (before[step] ?? 0)] as const)
      .filter(([, n]) => n !== 0),
  );
}

for (const kind of DATABASES) {
  describe(`e-mail flow metrics (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it("starts every step at 0, so that increase() sees the first one", async () => {
      const all = await steps(t);
      assert.deepEqual(Object.keys(all).sort(), [
        "email_changed",
        "reset_completed",
        "reset_requested",
        "reset_token_invalid",
        "verification_requested",
        "verification_token_invalid",
        "verified",
      ]);
    });

    it("counts each step of a reset and a verification once, including refused tokens and unknown addresses", async () => {
      const before = await steps(t);
      await registerVerified(t, "counted", "counted@example.com");
      assert.deepEqual((await requestReset(t, "counted@example.com")).body, { data: { requestPasswordReset: true } });
      assert.deepEqual((await requestReset(t, "nobody@example.com")).body, { data: { requestPasswordReset: true } });
      const token = await latestToken(t, "counted@example.com", RESET_SUBJECT);
      assert.equal((await resetPassword(t, { token, newPassword: "counted new password" })).body.errors, undefined);
      const again = await resetPassword(t, { token, newPassword: "counted new password" });
      assert.equal(refusal(again).reason, "RESET_TOKEN_INVALID");
      const spent = await verifyEmail(t, "evt_" + "A".repeat(43));
      assert.equal(refusal(spent).reason, "VERIFICATION_TOKEN_INVALID");
      const user = await registerUser(t, "mover");
      const change = await t.gql(`mutation { changeEmail(newEmail: "mover@example.com") }`, {
        token: user.accessToken,
      });
      assert.deepEqual(change.body, { data: { changeEmail: true } });
      assert.equal(
        (await verifyEmail(t, await latestToken(t, "mover@example.com", VERIFY_SUBJECT))).body.errors,
        undefined,
      );

      assert.deepEqual(moved(before, await steps(t)), {
        // registerVerified: register's verification mail, then its link; the change: its mail and link.
        verification_requested: 2,
        verified: 2,
        reset_requested: 2,
        reset_completed: 1,
        reset_token_invalid: 1,
        verification_token_invalid: 1,
        email_changed: 1,
      });
    });
  });
}
