import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";

import { codes, login, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  auditDetails,
  enrollUser,
  mfaSteps,
  rateLimitedCount,
  verifyMfa,
  verifyMfaRaw,
  wrongTotp,
} from "../helpers/mfa.js";
import { deleteRedisKeys, listRedisKeys, TEST_REDIS_URL } from "../helpers/redis.js";

/** Where the counts live: the app's database, and Redis when the suite has one. */
const REDIS_PREFIX = `gta-mfa-test-${randomBytes(4).toString("hex")}:`;
const STORES: ReadonlyArray<{ name: string; env: Record<string, string> }> = [
  { name: "database", env: {} },
  ...(TEST_REDIS_URL ? [{ name: "redis", env: { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: REDIS_PREFIX } }] : []),
];

/** The keys the counts of a user live under: per user id, whatever name or address signed in. */
async function countKeysOf(t: { app: { database: { db: any } } }, store: string, userId: string): Promise<string[]> {
  if (store === "redis") return (await listRedisKeys(TEST_REDIS_URL!, REDIS_PREFIX)).filter((k) => k.includes(userId));
  const rows = await t.app.database.db.selectFrom("login_throttle").select("key").execute();
  return rows.map((r: { key: string }) => r.key).filter((k: string) => k.includes(userId));
}

after(async () => {
  if (TEST_REDIS_URL) await deleteRedisKeys(TEST_REDIS_URL, REDIS_PREFIX);
});

for (const kind of DATABASES) {
  for (const store of STORES) {
    describe(`wrong second-factor codes (${kind}, counted in the ${store.name})`, () => {
      const t = useTestApp(kind, { env: store.env });

      it("refuses a session's 6th wrong code with RATE_LIMITED, even a right one, audited once as THROTTLED", async () => {
        const user = await registerUser(t, `guesser-${store.name}`);
        const enrolled = await enrollUser(t, user.accessToken);
        const before = await mfaSteps(t);
        const limited = await rateLimitedCount(t, "MFA_FAILURES_PER_CHALLENGE");
        const pending = await login(t, `guesser-${store.name}`);
        for (let i = 0; i < 5; i++) {
          const res = await verifyMfaRaw(t, pending.accessToken, wrongTotp(enrolled.secret));
          assert.deepEqual(codes(res), ["BAD_USER_INPUT"], `attempt ${i + 1}`);
        }
        for (const code of [wrongTotp(enrolled.secret), enrolled.nextCode()]) {
          const res = await verifyMfaRaw(t, pending.accessToken, code);
          assert.deepEqual(codes(res), ["RATE_LIMITED"]);
          const retryAfter = res.body.errors?.[0]?.extensions?.retryAfter;
          assert.ok(retryAfter > 0 && retryAfter <= 900, `retryAfter ${retryAfter}`);
          assert.match(res.body.errors?.[0]?.message ?? "", /^Too many wrong codes\. Try again in \d+ seconds\.$/);
        }
        const after = await mfaSteps(t);
        assert.equal(after["totp/failed"], (before["totp/failed"] ?? 0) + 5);
        assert.equal(after["totp/throttled"], (before["totp/throttled"] ?? 0) + 2);
        assert.equal(await rateLimitedCount(t, "MFA_FAILURES_PER_CHALLENGE"), limited + 2);
        const throttled = await auditDetails(t, user.userId, "MFA_FAILED");
        assert.equal(throttled.filter((d) => d?.startsWith("reason=WRONG_CODE")).length, 5);
        assert.deepEqual(
          throttled.filter((d) => d?.startsWith("reason=THROTTLED")),
          ["reason=THROTTLED limit=MFA_FAILURES_PER_CHALLENGE count=2"],
        );
        // Another session of the account still has its own budget (4 of the account's 10 left).
        const other = await login(t, `guesser-${store.name}`);
        assert.equal((await verifyMfa(t, other.accessToken, enrolled.recoveryCodes[0]!)).assurance, "AAL2");
      });

      it("refuses the account's 11th wrong code in 15 minutes, from any session, with RATE_LIMITED", async () => {
        const user = await registerUser(t, `spread-${store.name}`);
        const enrolled = await enrollUser(t, user.accessToken);
        const limited = await rateLimitedCount(t, "MFA_FAILURES_PER_USER");
        for (let s = 0; s < 2; s++) {
          const pending = await login(t, `spread-${store.name}`);
          for (let i = 0; i < 5; i++)
            assert.deepEqual(codes(await verifyMfaRaw(t, pending.accessToken, wrongTotp(enrolled.secret))), [
              "BAD_USER_INPUT",
            ]);
        }
        const third = await login(t, `spread-${store.name}`);
        const res = await verifyMfaRaw(t, third.accessToken, enrolled.recoveryCodes[0]!);
        assert.deepEqual(codes(res), ["RATE_LIMITED"]);
        assert.equal(await rateLimitedCount(t, "MFA_FAILURES_PER_USER"), limited + 1);
        // The refused recovery code was not spent.
        const unused = await t.app.database.db
          .selectFrom("mfa_recovery_codes")
          .select("id")
          .where("user_id", "=", user.userId)
          .where("used_at", "is", null)
          .execute();
        assert.equal(unused.length, 10);
        const keys = await countKeysOf(t, store.name, user.userId);
        assert.ok(
          keys.some((k) => k.endsWith(`mfa:user:${user.userId}`)),
          keys.join(", "),
        );
        assert.deepEqual(
          (await auditDetails(t, user.userId, "MFA_FAILED")).filter((d) => d?.startsWith("reason=THROTTLED")),
          ["reason=THROTTLED limit=MFA_FAILURES_PER_USER count=1"],
        );
      });

      it("gives a right code its attempt back: a session that verifies keeps its whole budget", async () => {
        const user = await registerUser(t, `steady-${store.name}`);
        const enrolled = await enrollUser(t, user.accessToken);
        const pending = await login(t, `steady-${store.name}`);
        for (let i = 0; i < 4; i++) await verifyMfaRaw(t, pending.accessToken, wrongTotp(enrolled.secret));
        assert.equal((await verifyMfa(t, pending.accessToken, enrolled.recoveryCodes[0]!)).assurance, "AAL2");
        // 4 wrong ones counted, the right one given back: one more wrong code is still answered as wrong.
        assert.deepEqual(codes(await verifyMfaRaw(t, pending.accessToken, wrongTotp(enrolled.secret))), [
          "BAD_USER_INPUT",
        ]);
        assert.deepEqual(codes(await verifyMfaRaw(t, pending.accessToken, wrongTotp(enrolled.secret))), [
          "RATE_LIMITED",
        ]);
      });
    });
  }
}

describe("enrollTotp and regenerateRecoveryCodes are writes (WRITES_MAX_PER_USER)", () => {
  const t = useTestApp("sqlite", { env: { WRITES_MAX_PER_USER: "3" } });

  it("refuses the account's writes past the budget with RATE_LIMITED, changing nothing", async () => {
    const user = await registerUser(t, "churner");
    const enrolled = await enrollUser(t, user.accessToken);
    // enrollTotp and confirmTotp above: one write (confirming is not charged); two more are allowed.
    const regenerate = () => t.gql(`mutation { regenerateRecoveryCodes }`, { token: user.accessToken });
    assert.equal((await regenerate()).body.data?.regenerateRecoveryCodes?.length, 10);
    const last = await regenerate();
    const codesLeft: string[] = last.body.data.regenerateRecoveryCodes;
    const refused = await regenerate();
    assert.deepEqual(codes(refused), ["RATE_LIMITED"]);
    assert.ok(refused.body.errors?.[0]?.extensions?.retryAfter > 0);
    // The codes of the last allowed call still work: the refused one replaced nothing.
    const pending = await login(t, "churner");
    assert.equal((await verifyMfa(t, pending.accessToken, codesLeft[0]!)).assurance, "AAL2");
    assert.notDeepEqual(codesLeft, enrolled.recoveryCodes);
  });
});
