// What a passkey sign-in refuses, each with the one answer a client gets (UNAUTHENTICATED,
// BAD_CREDENTIALS) and no session, its cause in the audit log (MFA_FAILED reason=…); the input
// budgets (response size and shape, the name, passkeys per account, challenges per IP).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ChallengeStore } from "../../src/passkeys/challenge.store.js";
import { registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { eventually, sample } from "../helpers/outbox.js";
import {
  auditOf,
  authenticator,
  dataOf,
  enroll,
  finishRegistration,
  finishSignIn,
  PASSKEY_ENV,
  refusalOf,
  sessionsOf,
  signIn,
  startRegistration,
  startSignIn,
} from "../helpers/passkeys.js";
import type { SoftAuthenticator } from "../helpers/webauthn.js";

const MINUTE = 60_000;
const REFUSED = "UNAUTHENTICATED BAD_CREDENTIALS";

/** A user with one passkey on `device`. */
async function enrolled(t: TestApp, username: string): Promise<{ userId: string; device: SoftAuthenticator }> {
  const user = await registerUser(t, username);
  const device = authenticator();
  await enroll(t, user.accessToken, device);
  return { userId: user.userId, device };
}

/** Waits for the (coalesced) MFA_FAILED row of `userId` with `reason`. */
async function failureAudited(t: TestApp, userId: string, reason: string): Promise<void> {
  await eventually(
    async () => (await auditOf(t, userId)).some((l) => l.startsWith(`MFA_FAILED method=passkey reason=${reason}`)),
    `MFA_FAILED reason=${reason}`,
  );
}

async function passkeySessions(t: TestApp, userId: string): Promise<number> {
  return (await sessionsOf(t, userId)).filter((s) => s.amr === "passkey").length;
}

async function counted(t: TestApp, name: string, labels: Record<string, string>): Promise<number> {
  return sample(await t.app.metrics.text(), name, labels) ?? 0;
}

for (const kind of DATABASES) {
  describe(`passkey refusals (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { env: PASSKEY_ENV, now: () => clock });

    it("refuses a wrong origin, a wrong RP ID and no user verification, with no session and the cause audited", async () => {
      const { userId, device } = await enrolled(t, "rf-ann");
      const failedBefore = await counted(t, "gta_mfa_steps_total", { method: "passkey", outcome: "failed" });
      const cases: Array<[Parameters<SoftAuthenticator["get"]>[1], string]> = [
        [{ origin: "https://evil.example" }, "WRONG_ORIGIN"],
        [{ rpId: "evil.example" }, "WRONG_RP_ID"],
        [{ uv: false }, "NO_USER_VERIFICATION"],
        [{ type: "webauthn.create" }, "INVALID_RESPONSE"],
      ];
      for (const [fault, reason] of cases) {
        const res = await signIn(t, device, "rf-ann", fault);
        assert.equal(refusalOf(res), REFUSED, reason);
        assert.equal(res.body.errors?.[0]?.message, "The passkey could not be verified.");
        await failureAudited(t, userId, reason);
      }
      assert.equal(await passkeySessions(t, userId), 0);
      assert.equal(
        await counted(t, "gta_mfa_steps_total", { method: "passkey", outcome: "failed" }),
        failedBefore + cases.length,
      );
      // The same authenticator, done right, still signs in (nothing above moved its counter).
      assert.equal(dataOf(await signIn(t, device, "rf-ann")).finishPasskeySignIn.assurance, "AAL2");
    });

    it("a challenge works once: the same response finished again is refused and makes no second session", async () => {
      const { userId, device } = await enrolled(t, "rf-ben");
      const response = device.get(await startSignIn(t, "rf-ben"));
      assert.equal(dataOf(await finishSignIn(t, response)).finishPasskeySignIn.assurance, "AAL2");
      assert.equal(refusalOf(await finishSignIn(t, response)), REFUSED);
      await failureAudited(t, userId, "CHALLENGE_INVALID");
      assert.equal(await passkeySessions(t, userId), 1);
    });

    it("a challenge expires after 5 minutes", async () => {
      const { userId, device } = await enrolled(t, "rf-cat");
      const options = await startSignIn(t, "rf-cat");
      assert.equal(options.timeout, 5 * MINUTE);
      clock += 5 * MINUTE + 1000;
      assert.equal(refusalOf(await finishSignIn(t, device.get(options))), REFUSED);
      assert.equal(await passkeySessions(t, userId), 0);
      // A challenge within its five minutes still works.
      const fresh = await startSignIn(t, "rf-cat");
      clock += 4 * MINUTE;
      assert.equal(dataOf(await finishSignIn(t, device.get(fresh))).finishPasskeySignIn.assurance, "AAL2");
    });

    it("a counter that goes backwards (or stays) is refused and audited as COUNTER_REGRESSION; the stored counter stays", async () => {
      const { userId, device } = await enrolled(t, "rf-dan");
      dataOf(await signIn(t, device, "rf-dan", { counter: 10 }));
      for (const counter of [9, 10, 0]) {
        assert.equal(refusalOf(await signIn(t, device, "rf-dan", { counter })), REFUSED, `counter ${counter}`);
      }
      const rows = (await auditOf(t, userId)).filter((l) => l.startsWith("MFA_FAILED"));
      assert.deepEqual(rows, Array(3).fill("MFA_FAILED method=passkey reason=COUNTER_REGRESSION"));
      const row = await t.app.database.db
        .selectFrom("passkeys")
        .select("counter")
        .where("user_id", "=", userId)
        .executeTakeFirstOrThrow();
      assert.equal(Number(row.counter), 10);
      assert.equal(await passkeySessions(t, userId), 1);
      assert.equal(dataOf(await signIn(t, device, "rf-dan", { counter: 11 })).finishPasskeySignIn.assurance, "AAL2");
    });

    it("someone else's passkey is refused on a challenge started for a user, and a forged user handle", async () => {
      const eve = await enrolled(t, "rf-eve");
      const fay = await enrolled(t, "rf-fay");
      assert.equal(refusalOf(await signIn(t, fay.device, "rf-eve")), REFUSED);
      await failureAudited(t, fay.userId, "WRONG_USER");
      const forged = fay.device.get(await startSignIn(t));
      forged.response.userHandle = Buffer.from(eve.userId).toString("base64url");
      assert.equal(refusalOf(await finishSignIn(t, forged)), REFUSED);
      assert.equal((await passkeySessions(t, eve.userId)) + (await passkeySessions(t, fay.userId)), 0);
    });

    it("a response over WEBAUTHN_RESPONSE_MAX_BYTES, or not shaped like one, is BAD_USER_INPUT and spends nothing", async () => {
      const { device } = await enrolled(t, "rf-gus");
      const options = await startSignIn(t, "rf-gus");
      const response = device.get(options);
      const before = await counted(t, "gta_limit_refusals_total", { limit: "WEBAUTHN_RESPONSE_MAX_BYTES" });
      const padded = { ...response, clientExtensionResults: { padding: "x".repeat(16 * 1024) } };
      assert.equal(refusalOf(await finishSignIn(t, padded)), "BAD_USER_INPUT response:maxBytes");
      assert.equal(await counted(t, "gta_limit_refusals_total", { limit: "WEBAUTHN_RESPONSE_MAX_BYTES" }), before + 1);
      for (const bad of [
        {},
        [],
        "text",
        { ...response, type: "other" },
        { ...response, response: { clientDataJSON: "!!" } },
      ]) {
        assert.equal(
          refusalOf(await finishSignIn(t, bad)),
          "BAD_USER_INPUT response:shape",
          JSON.stringify(bad).slice(0, 40),
        );
      }
      // The challenge was not spent by any of those.
      assert.equal(dataOf(await finishSignIn(t, response)).finishPasskeySignIn.assurance, "AAL2");
    });

    it("registration: the name is 1 to 64 characters; another session's challenge, a wrong origin are BAD_USER_INPUT", async () => {
      const hal = await registerUser(t, "rf-hal");
      const other = await registerUser(t, "rf-hal2");
      const device = authenticator();
      const options = await startRegistration(t, hal.accessToken);
      for (const name of ["", "   ", "n".repeat(65)]) {
        const res = await finishRegistration(t, hal.accessToken, device.create(options), name);
        assert.equal(refusalOf(res), "BAD_USER_INPUT name:length");
      }
      const res = await finishRegistration(t, other.accessToken, device.create(options));
      assert.equal(refusalOf(res), "BAD_USER_INPUT response:verified");
      const wrongOrigin = await finishRegistration(
        t,
        hal.accessToken,
        device.create(await startRegistration(t, hal.accessToken), { origin: "https://evil.example" }),
      );
      assert.equal(refusalOf(wrongOrigin), "BAD_USER_INPUT response:verified");
      // The first challenge is still good for its own session (nothing above spent it), once.
      const answer = device.create(options);
      assert.equal(
        dataOf(await finishRegistration(t, hal.accessToken, answer, "n".repeat(64))).finishPasskeyRegistration.name
          .length,
        64,
      );
      assert.equal(refusalOf(await finishRegistration(t, hal.accessToken, answer)), "BAD_USER_INPUT response:verified");
      const stored = await t.app.database.db
        .selectFrom("passkeys")
        .select("user_id")
        .where("user_id", "in", [hal.userId, other.userId])
        .execute();
      assert.equal(stored.length, 1);
    });

    it("PASSKEYS_MAX_PER_USER: the 21st passkey is refused with BAD_USER_INPUT on passkeys, counted", async () => {
      const ida = await registerUser(t, "rf-ida");
      for (let i = 0; i < 20; i++) await enroll(t, ida.accessToken, authenticator(), `key ${i}`);
      const before = await counted(t, "gta_limit_refusals_total", { limit: "PASSKEYS_MAX_PER_USER" });
      const res = await t.gql(`mutation { startPasskeyRegistration }`, { token: ida.accessToken });
      assert.equal(refusalOf(res), "BAD_USER_INPUT passkeys:maxPasskeys");
      assert.equal(await counted(t, "gta_limit_refusals_total", { limit: "PASSKEYS_MAX_PER_USER" }), before + 1);
    });

    it("the pruning the housekeeping runs deletes expired challenges, answered or not, and keeps live ones", async () => {
      await startSignIn(t);
      const live = async () =>
        Number(
          (
            await t.app.database.db
              .selectFrom("webauthn_challenges")
              .select((eb) => eb.fn.countAll<number | string>().as("n"))
              .executeTakeFirstOrThrow()
          ).n,
        );
      assert.ok((await live()) > 0);
      clock += 6 * MINUTE;
      await startSignIn(t);
      const pruned = await new ChallengeStore(t.app.database.db).prune(new Date(clock));
      assert.ok(pruned > 0);
      assert.equal(await live(), 1);
    });
  });
}

describe("PASSKEY_CHALLENGES_MAX_PER_IP (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { ...PASSKEY_ENV, PASSKEY_CHALLENGES_MAX_PER_IP: "3" } });

  it("starts past the budget are RATE_LIMITED with retryAfter, counted, and store no challenge", async () => {
    for (let i = 0; i < 3; i++) await startSignIn(t, i === 0 ? undefined : "someone");
    const res = await t.gql(`mutation { startPasskeySignIn }`);
    assert.equal(refusalOf(res), "RATE_LIMITED");
    assert.ok(Number(res.body.errors?.[0]?.extensions?.retryAfter) > 0);
    assert.equal(await counted(t, "gta_rate_limit_hits_total", { limit: "PASSKEY_CHALLENGES_MAX_PER_IP" }), 1);
    const rows = await t.app.database.db.selectFrom("webauthn_challenges").select("id").execute();
    assert.equal(rows.length, 3);
  });
});
