// Cookie mode (a browser app): verifyMfa rotates the session's refresh token, and when the request
// carries the refresh cookie the new one goes into it, as the old one did; confirmTotp keeps it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { claimsOf, codes, PASSWORD } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { enrollTotp, enrollUser, MFA_PAYLOAD, stepAt, totpForStep } from "../helpers/mfa.js";

const SIGN_IN = "accessToken refreshToken user { id }";
const REFRESH = `mutation { refreshToken { accessToken refreshToken } }`;

/** The value of the refresh-token cookie a response sets. */
function cookieSet(headers: Headers): string {
  const line = headers.getSetCookie().find((l) => l.startsWith("refresh-token="));
  assert.ok(line, `a refresh-token cookie, got ${headers.getSetCookie().join(" | ")}`);
  return line.slice("refresh-token=".length).split(";")[0]!;
}

for (const kind of DATABASES) {
  describe(`second factors in cookie mode (${kind})`, () => {
    const t = useTestApp(kind);
    const withCookie = (value: string) => ({ cookie: `refresh-token=${value}` });

    it("confirmTotp keeps the cookie (now AAL2); verifyMfa puts the session's new refresh token in it and the old one is refused", async () => {
      const registered = await t.gql(`mutation($input: RegisterInput!) { register(input: $input) { ${SIGN_IN} } }`, {
        variables: { input: { username: "cookie-mfa", password: PASSWORD, useCookie: true } },
      });
      const first = cookieSet(registered.headers);
      const token = registered.body.data.register.accessToken as string;
      const { secret } = await enrollTotp(t, token);
      const step = stepAt(Date.now());
      const confirmed = await t.gql(`mutation($code: String!) { confirmTotp(code: $code) }`, {
        token,
        variables: { code: totpForStep(secret, step) },
        headers: withCookie(first),
      });
      assert.equal(confirmed.body.data?.confirmTotp?.length, 10, JSON.stringify(confirmed.body.errors));
      // confirmTotp returns no tokens: the cookie stays, and its next refresh carries AAL2.
      assert.deepEqual(confirmed.headers.getSetCookie(), []);
      const refreshed = await t.gql(REFRESH, { headers: withCookie(first) });
      assert.equal(claimsOf(refreshed.body.data.refreshToken.accessToken).aal, "aal2");

      const login = await t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${SIGN_IN} } }`, {
        variables: { input: { username: "cookie-mfa", password: PASSWORD, useCookie: true } },
      });
      const pendingCookie = cookieSet(login.headers);
      const verified = await t.gql(`mutation($code: String!) { verifyMfa(code: $code) { ${MFA_PAYLOAD} } }`, {
        token: login.body.data.login.accessToken,
        variables: { code: totpForStep(secret, step + 1) },
        headers: withCookie(pendingCookie),
      });
      assert.equal(verified.body.errors, undefined, JSON.stringify(verified.body.errors));
      assert.equal(verified.body.data.verifyMfa.refreshToken, null, "in the cookie, not the body");
      assert.equal(verified.body.data.verifyMfa.assurance, "AAL2");
      const raisedCookie = cookieSet(verified.headers);
      assert.deepEqual(codes(await t.gql(REFRESH, { headers: withCookie(pendingCookie) })), ["UNAUTHENTICATED"]);
      const again = await t.gql(REFRESH, { headers: withCookie(raisedCookie) });
      assert.equal(claimsOf(again.body.data.refreshToken.accessToken).aal, "aal2");
    });

    it("verifyMfa sent with the cookie from a page of a foreign origin sets no cookie: the new refresh token is in the body", async () => {
      const registered = await t.gql(`mutation($input: RegisterInput!) { register(input: $input) { ${SIGN_IN} } }`, {
        variables: { input: { username: "cookie-foreign", password: PASSWORD, useCookie: true } },
      });
      const { secret } = await enrollUser(t, registered.body.data.register.accessToken as string);
      const login = await t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${SIGN_IN} } }`, {
        variables: { input: { username: "cookie-foreign", password: PASSWORD, useCookie: true } },
      });
      const verified = await t.gql(`mutation($code: String!) { verifyMfa(code: $code) { ${MFA_PAYLOAD} } }`, {
        token: login.body.data.login.accessToken,
        variables: { code: totpForStep(secret, stepAt(Date.now()) + 1) },
        headers: { ...withCookie(cookieSet(login.headers)), origin: "https://elsewhere.example" },
      });
      assert.equal(verified.body.errors, undefined, JSON.stringify(verified.body.errors));
      assert.equal(verified.body.data.verifyMfa.assurance, "AAL2");
      assert.deepEqual(verified.headers.getSetCookie(), [], "no cookie for a foreign page");
      assert.match(verified.body.data.verifyMfa.refreshToken, /^rt_/);
    });
  });
}
