// Passkeys end to end in Node, with a software authenticator and the real @simplewebauthn/server:
// registration (the first factor raises the session and ends the others), sign-in by username and
// discoverable (AAL2, amr passkey), a passkey as the second factor of a password session, the list
// and removal. The refusals are in refusals.test.ts, the race in race.test.ts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import {
  assertAccessAccepted,
  assertAccessRefused,
  assertRefreshRefused,
  claimsOf,
  login,
  PASSWORD,
  refresh,
  registerUser,
  sessionOf,
} from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { sample } from "../helpers/outbox.js";
import {
  auditOf,
  AUTH_PAYLOAD,
  authenticator,
  dataOf,
  enroll,
  finishSignIn,
  PASSKEY_ENV,
  refusalOf,
  sessionsOf,
  signIn,
  startSignIn,
  verifyWithPasskey,
} from "../helpers/passkeys.js";

/** gta_mfa_steps_total{method="passkey", outcome} now. */
async function steps(t: TestApp, outcome: string): Promise<number> {
  return sample(await t.app.metrics.text(), "gta_mfa_steps_total", { method: "passkey", outcome }) ?? 0;
}

/** A password login that returns the whole AuthPayload (assurance and mfaRequired included). */
function passwordLogin(t: TestApp, username: string) {
  return t.gql(`mutation($i: LoginInput!) { login(input: $i) { ${AUTH_PAYLOAD} } }`, {
    variables: { i: { username, password: PASSWORD } },
  });
}

for (const kind of DATABASES) {
  describe(`passkeys (${kind})`, () => {
    const t = useTestApp(kind, { env: PASSKEY_ENV });

    it("registers a first passkey: stored with its flags, listed, the session raised to AAL2 and the others ended", async () => {
      const alice = await registerUser(t, "pk-alice");
      const other = await login(t, "pk-alice");
      const device = authenticator();
      const enrolledBefore = await steps(t, "enrolled");
      const passkey = await enroll(t, alice.accessToken, device, "my laptop", { be: true, bs: true });
      assert.equal(passkey.name, "my laptop");
      assert.equal(await steps(t, "enrolled"), enrolledBefore + 1);

      const row = await t.app.database.db
        .selectFrom("passkeys")
        .selectAll()
        .where("id", "=", passkey.id)
        .executeTakeFirstOrThrow();
      assert.deepEqual(
        [row.user_id, row.credential_id, Number(row.counter), row.transports, row.device_type, Number(row.backed_up)],
        [alice.userId, device.credentials[0]!.id, 0, "internal", "multiDevice", 1],
      );
      const listed = dataOf(await t.gql(`{ passkeys { id name lastUsedAt } }`, { token: alice.accessToken }));
      assert.deepEqual(listed.passkeys, [{ id: passkey.id, name: "my laptop", lastUsedAt: null }]);

      // The registering session is AAL2 now, raised in place; the password-only one ended.
      const sessions = await sessionsOf(t, alice.userId);
      const mine = sessions.find((s) => s.id === sessionOf(alice.accessToken))!;
      assert.deepEqual([mine.aal, mine.amr, mine.mfa_pending, mine.revoked_reason], [2, "pwd passkey", 0, null]);
      const ended = sessions.find((s) => s.id === sessionOf(other.accessToken))!;
      assert.equal(ended.revoked_reason, "mfa_enrolled");
      assert.deepEqual(await auditOf(t, alice.userId), [
        "REGISTERED",
        "LOGIN_SUCCEEDED",
        `PASSKEY_ADDED passkey=${passkey.id} device=multiDevice backedUp=true`,
        "MFA_ENROLLED method=passkey",
      ]);
      await assertAccessRefused(t, other.accessToken);
      await assertAccessAccepted(t, alice.accessToken, alice.userId);
      // The mutation returned a Passkey, not tokens: the session's refresh token still works, and
      // what it gives now is AAL2.
      const next = await t.gql(
        `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken assurance mfaRequired } }`,
        { variables: { r: alice.refreshToken } },
      );
      assert.equal(next.body.errors, undefined);
      assert.deepEqual(
        [next.body.data.refreshToken.assurance, next.body.data.refreshToken.mfaRequired],
        ["AAL2", false],
      );
      assert.equal(claimsOf(next.body.data.refreshToken.accessToken).aal, "aal2");
      assert.deepEqual(claimsOf(next.body.data.refreshToken.accessToken).amr, ["pwd", "passkey"]);
    });

    it("a second passkey is no first factor: added, nothing else ends", async () => {
      const bob = await registerUser(t, "pk-bob");
      await enroll(t, bob.accessToken, authenticator(), "phone");
      const later = (await login(t, "pk-bob")).accessToken; // AAL1, owes the second factor
      const second = await enroll(t, bob.accessToken, authenticator(), "key");
      await assertAccessAccepted(t, later, bob.userId);
      const types = (await auditOf(t, bob.userId)).map((line) => line.split(" ")[0]);
      assert.deepEqual(types.slice(-1), ["PASSKEY_ADDED"]);
      assert.equal(types.filter((type) => type === "MFA_ENROLLED").length, 1);
      const listed = dataOf(await t.gql(`{ passkeys { id } }`, { token: bob.accessToken }));
      assert.equal(listed.passkeys.length, 2);
      assert.equal(listed.passkeys[1].id, second.id);
      // A page at a time, oldest first, from the last one seen (keyset), like every list.
      const page = `query($after: ID) { passkeys(first: 1, after: $after) { id } }`;
      const one = dataOf(await t.gql(page, { token: bob.accessToken })).passkeys;
      assert.deepEqual(one, [listed.passkeys[0]]);
      const two = dataOf(await t.gql(page, { token: bob.accessToken, variables: { after: one[0].id } })).passkeys;
      assert.deepEqual(two, [{ id: second.id }]);
      const three = dataOf(await t.gql(page, { token: bob.accessToken, variables: { after: second.id } })).passkeys;
      assert.deepEqual(three, []);
    });

    it("signs in by username: AAL2 with amr passkey, the counter and last use stored", async () => {
      const carol = await registerUser(t, "pk-carol");
      const device = authenticator();
      const passkey = await enroll(t, carol.accessToken, device);
      const options = await startSignIn(t, "pk-carol");
      assert.deepEqual(
        options.allowCredentials.map((c: { id: string }) => c.id),
        [device.credentials[0]!.id],
      );
      assert.equal(options.userVerification, "required");
      assert.equal(options.rpId, "localhost");
      // Stored as its SHA-256 only, bound to the user; never in a log line.
      const stored = await t.app.database.db
        .selectFrom("webauthn_challenges")
        .select(["challenge_hash", "purpose", "user_id", "expires_at", "created_at"])
        .where("challenge_hash", "=", createHash("sha256").update(options.challenge).digest("base64url"))
        .executeTakeFirstOrThrow();
      assert.deepEqual([stored.purpose, stored.user_id], ["authentication", carol.userId]);
      assert.equal(new Date(stored.expires_at).getTime() - new Date(stored.created_at).getTime(), 5 * 60_000);
      assert.equal(t.logs.filter((line) => line.includes(options.challenge)).length, 0);

      const verifiedBefore = await steps(t, "verified");
      const payload = dataOf(await signIn(t, device, "pk-carol")).finishPasskeySignIn;
      assert.equal(await steps(t, "verified"), verifiedBefore + 1);
      assert.deepEqual([payload.assurance, payload.mfaRequired, payload.user.id], ["AAL2", false, carol.userId]);
      const claims = claimsOf(payload.accessToken);
      assert.deepEqual([claims.aal, claims.amr], ["aal2", ["passkey"]]);
      await assertAccessAccepted(t, payload.accessToken, carol.userId);
      // A refresh keeps AAL2.
      const refreshed = await refresh(t, payload.refreshToken);
      assert.equal(claimsOf(refreshed.accessToken).aal, "aal2");

      const row = await t.app.database.db
        .selectFrom("passkeys")
        .select(["counter", "last_used_at"])
        .where("id", "=", passkey.id)
        .executeTakeFirstOrThrow();
      assert.equal(Number(row.counter), 1);
      assert.notEqual(row.last_used_at, null);
      assert.ok((await auditOf(t, carol.userId)).includes(`LOGIN_SUCCEEDED method=passkey passkey=${passkey.id}`));
    });

    it("signs in without a username (discoverable): no credentials listed, the authenticator's passkey names its user", async () => {
      const dave = await registerUser(t, "pk-dave");
      const device = authenticator();
      await enroll(t, dave.accessToken, device);
      const options = await startSignIn(t);
      assert.deepEqual(options.allowCredentials, []);
      const payload = dataOf(
        await t.gql(`mutation($r: JSON!) { finishPasskeySignIn(response: $r) { assurance user { id } } }`, {
          variables: { r: device.get(options) },
        }),
      ).finishPasskeySignIn;
      assert.deepEqual(payload, { assurance: "AAL2", user: { id: dave.userId } });
      // An empty username is no username.
      const empty = await startSignIn(t, "");
      assert.deepEqual(empty.allowCredentials, []);
      assert.equal(dataOf(await finishSignIn(t, device.get(empty))).finishPasskeySignIn.user.id, dave.userId);
    });

    it("an unknown username gets options shaped like a real user's, the same on each ask", async () => {
      const erin = await registerUser(t, "pk-erin");
      await enroll(t, erin.accessToken, authenticator());
      const real = await startSignIn(t, "pk-erin");
      const unknown = await startSignIn(t, "pk-nobody");
      const again = await startSignIn(t, "PK-NOBODY");
      assert.deepEqual(Object.keys(unknown).sort(), Object.keys(real).sort());
      assert.equal(unknown.allowCredentials.length, 1);
      assert.equal(unknown.allowCredentials[0].id.length, real.allowCredentials[0].id.length);
      assert.deepEqual(again.allowCredentials, unknown.allowCredentials);
      assert.notEqual(unknown.challenge, again.challenge);
      // Its challenge signs in nobody, not even with a real passkey of this site (else answering it
      // would tell an unknown name, accepted, from a known one, refused).
      const device = authenticator();
      await enroll(t, (await registerUser(t, "pk-erin2")).accessToken, device);
      assert.equal(refusalOf(await signIn(t, device, "pk-nobody")), "UNAUTHENTICATED BAD_CREDENTIALS");
      assert.equal(refusalOf(await signIn(t, device, "pk-erin")), "UNAUTHENTICATED BAD_CREDENTIALS");
    });

    it("verifyMfaWithPasskey raises a password session to AAL2; its AAL1 refresh token never yields AAL2", async () => {
      const fred = await registerUser(t, "pk-fred");
      const device = authenticator();
      await enroll(t, fred.accessToken, device);
      const pending = dataOf(await passwordLogin(t, "pk-fred")).login;
      assert.deepEqual([pending.assurance, pending.mfaRequired], ["AAL1", true]);

      // The pending session may not start a ceremony with its token (the MFA gate); without it, it may.
      const gated = await t.gql(`mutation { startPasskeySignIn(username: "pk-fred") }`, { token: pending.accessToken });
      assert.equal(refusalOf(gated), "FORBIDDEN MFA_REQUIRED");
      const options = await startSignIn(t, "pk-fred");
      const raised = dataOf(await verifyWithPasskey(t, pending.accessToken, device.get(options, { uv: false })));
      const payload = raised.verifyMfaWithPasskey;
      assert.deepEqual([payload.assurance, payload.mfaRequired], ["AAL2", false]);
      assert.equal(sessionOf(payload.accessToken), sessionOf(pending.accessToken), "the same session");
      assert.deepEqual(claimsOf(payload.accessToken).amr, ["pwd", "passkey"]);

      // The AAL1 refresh token is gone: refused, and never an AAL2 token (within the reuse interval too).
      await assertRefreshRefused(t, pending.refreshToken);
      const next = await refresh(t, payload.refreshToken);
      assert.equal(claimsOf(next.accessToken).aal, "aal2");
      assert.ok((await auditOf(t, fred.userId)).some((line) => line.startsWith("MFA_VERIFIED method=passkey")));
    });

    it("verifyMfaWithPasskey refuses another user's passkey, a challenge started for another user, and a spent one", async () => {
      const gina = await registerUser(t, "pk-gina");
      const hank = await registerUser(t, "pk-hank");
      const ginaDevice = authenticator();
      const hankDevice = authenticator();
      await enroll(t, gina.accessToken, ginaDevice);
      await enroll(t, hank.accessToken, hankDevice);
      const pending = dataOf(await passwordLogin(t, "pk-gina")).login;
      // Hank's passkey, on a discoverable challenge.
      const hanks = hankDevice.get(await startSignIn(t));
      assert.equal(
        refusalOf(await verifyWithPasskey(t, pending.accessToken, hanks)),
        "UNAUTHENTICATED BAD_CREDENTIALS",
      );
      // Gina's passkey on a challenge started for Hank.
      const forHank = ginaDevice.get(await startSignIn(t, "pk-hank"));
      assert.equal(
        refusalOf(await verifyWithPasskey(t, pending.accessToken, forHank)),
        "UNAUTHENTICATED BAD_CREDENTIALS",
      );
      // A sign-in already made with this answer.
      const used = ginaDevice.get(await startSignIn(t, "pk-gina"));
      dataOf(await finishSignIn(t, used));
      assert.equal(refusalOf(await verifyWithPasskey(t, pending.accessToken, used)), "UNAUTHENTICATED BAD_CREDENTIALS");
      const row = (await sessionsOf(t, gina.userId)).find((s) => s.id === sessionOf(pending.accessToken))!;
      assert.deepEqual([row.aal, row.mfa_pending], [1, 1]);
    });

    it("removePasskey: own passkeys only, NOT_FOUND for unknown ids, a proven second factor; ends the other sessions", async () => {
      const ivy = await registerUser(t, "pk-ivy");
      const jack = await registerUser(t, "pk-jack");
      const device = authenticator();
      const passkey = await enroll(t, ivy.accessToken, device);
      const jackDevice = authenticator();
      await enroll(t, jack.accessToken, jackDevice);
      const here = dataOf(await signIn(t, device, "pk-ivy")).finishPasskeySignIn;
      const elsewhere = dataOf(await signIn(t, device, "pk-ivy")).finishPasskeySignIn;
      const jacks = dataOf(await signIn(t, jackDevice, "pk-jack")).finishPasskeySignIn;
      const remove = (token: string, id: string) =>
        t.gql(`mutation($id: ID!) { removePasskey(id: $id) }`, { token, variables: { id } });

      assert.equal(refusalOf(await remove(jacks.accessToken, passkey.id)), "FORBIDDEN OWNERSHIP");
      assert.equal(refusalOf(await remove(here.accessToken, "00000000-0000-4000-8000-000000000000")), "NOT_FOUND");
      const pending = (await login(t, "pk-ivy")).accessToken;
      assert.equal(refusalOf(await remove(pending, passkey.id)), "FORBIDDEN MFA_REQUIRED");
      assert.equal((await t.gql(`{ passkeys { id } }`, { token: here.accessToken })).body.data.passkeys.length, 1);

      const removedBefore = await steps(t, "removed");
      assert.deepEqual(dataOf(await remove(here.accessToken, passkey.id)), { removePasskey: true });
      assert.equal(await steps(t, "removed"), removedBefore + 1);
      assert.deepEqual(dataOf(await t.gql(`{ passkeys { id } }`, { token: here.accessToken })), { passkeys: [] });
      assert.ok((await auditOf(t, ivy.userId)).includes(`PASSKEY_REMOVED passkey=${passkey.id}`));
      const ended = (await sessionsOf(t, ivy.userId)).find((s) => s.id === sessionOf(elsewhere.accessToken))!;
      assert.equal(ended.revoked_reason, "mfa_removed");
      await assertAccessRefused(t, elsewhere.accessToken);
      await assertAccessAccepted(t, here.accessToken, ivy.userId);
      assert.equal(refusalOf(await remove(here.accessToken, passkey.id)), "NOT_FOUND");
      // The removed passkey no longer signs in.
      assert.equal(refusalOf(await signIn(t, device, "pk-ivy")), "UNAUTHENTICATED BAD_CREDENTIALS");
    });

    it("cookie mode: useCookie puts the refresh token in the HttpOnly cookie, not the payload; the cookie refreshes at AAL2", async () => {
      const lee = await registerUser(t, "pk-lee");
      const device = authenticator();
      await enroll(t, lee.accessToken, device);
      const res = await t.gql(
        `mutation($r: JSON!) { finishPasskeySignIn(response: $r, useCookie: true) { ${AUTH_PAYLOAD} } }`,
        {
          variables: { r: device.get(await startSignIn(t, "pk-lee")) },
        },
      );
      const payload = dataOf(res).finishPasskeySignIn;
      assert.equal(payload.refreshToken, null);
      const cookies = res.headers.getSetCookie();
      assert.equal(cookies.length, 1);
      assert.match(cookies[0]!, /^refresh-token=rt_[A-Za-z0-9_-]{43};.*HttpOnly/i);
      const refreshed = await t.gql(`mutation { refreshToken { accessToken } }`, {
        headers: { cookie: cookies[0]!.split(";")[0]! },
      });
      assert.equal(claimsOf(dataOf(refreshed).refreshToken.accessToken).aal, "aal2");
    });

    it("deleting the account deletes its passkeys", async () => {
      const mo = await registerUser(t, "pk-mo");
      await enroll(t, mo.accessToken, authenticator());
      const deleted = await t.gql(`mutation($p: String!) { deleteAccount(password: $p) }`, {
        token: mo.accessToken,
        variables: { p: PASSWORD },
      });
      assert.deepEqual(dataOf(deleted), { deleteAccount: true });
      const rows = await t.app.database.db
        .selectFrom("passkeys")
        .select("id")
        .where("user_id", "=", mo.userId)
        .execute();
      assert.deepEqual(rows, []);
    });

    it("a disabled account's passkey is refused like its password (ACCOUNT_DISABLED), and API tokens cannot register", async () => {
      const kim = await registerUser(t, "pk-kim");
      const device = authenticator();
      await enroll(t, kim.accessToken, device);
      await t.app.database.db
        .updateTable("users")
        .set({ disabled_at: new Date().toISOString() })
        .where("id", "=", kim.userId)
        .execute();
      assert.equal(refusalOf(await signIn(t, device, "pk-kim")), "UNAUTHENTICATED ACCOUNT_DISABLED");
    });
  });
}
