// Cookie mode for browser apps: with useCookie the refresh token travels only as an HttpOnly,
// SameSite=Strict cookie (`__Host-` and Secure over HTTPS), refreshToken without its argument reads
// and renews it, logout clears it, and a page of a foreign origin cannot use it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { assertAccessAccepted, codes, PASSWORD, REFRESH_TOKEN_SHAPE, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const PAYLOAD = "accessToken refreshToken expiresIn user { id }";
const LOGIN = `mutation($u: String!, $p: String!, $c: Boolean) { login(input: { username: $u, password: $p, useCookie: $c }) { ${PAYLOAD} } }`;
const REFRESH = `mutation { refreshToken { ${PAYLOAD} } }`;
const APP_ORIGIN = "https://app.example";
const DAY = 86_400;

interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string>;
}

/** The response's Set-Cookie headers, parsed: name, value and attributes by lower-case name. */
function setCookies(headers: Headers): SetCookie[] {
  return headers.getSetCookie().map((line) => {
    const [pair, ...rest] = line.split(";").map((part) => part.trim());
    const eq = pair!.indexOf("=");
    const attributes = new Map(
      rest.map((attribute) => {
        const i = attribute.indexOf("=");
        return i < 0 ? [attribute.toLowerCase(), ""] : [attribute.slice(0, i).toLowerCase(), attribute.slice(i + 1)];
      }),
    );
    return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attributes };
  });
}

function onlyCookie(headers: Headers): SetCookie {
  const cookies = setCookies(headers);
  assert.equal(cookies.length, 1, `one Set-Cookie, got ${headers.getSetCookie().join(" | ")}`);
  return cookies[0]!;
}

for (const kind of DATABASES) {
  describe(`cookie mode over plain HTTP (${kind})`, () => {
    const t = useTestApp(kind, { env: { JWT_REFRESH_TOKEN_EXPIRES: "7d", CORS_ORIGINS: APP_ORIGIN } });
    const login = (username: string, headers: Record<string, string> = {}) =>
      t.gql(LOGIN, { variables: { u: username, p: PASSWORD, c: true }, headers });
    const refresh = (cookie: string | undefined, headers: Record<string, string> = {}) =>
      t.gql(REFRESH, { headers: { ...(cookie ? { cookie: `refresh-token=${cookie}` } : {}), ...headers } });

    it("sets the refresh token as an HttpOnly, SameSite=Strict cookie for the session's lifetime, and leaves it out of the payload", async () => {
      const user = await registerUser(t, "browser");
      const res = await login("browser");
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.login.refreshToken, null);
      await assertAccessAccepted(t, res.body.data.login.accessToken, user.userId);
      const cookie = onlyCookie(res.headers);
      assert.equal(cookie.name, "refresh-token");
      assert.match(cookie.value, REFRESH_TOKEN_SHAPE);
      assert.equal(cookie.attributes.get("httponly"), "");
      assert.equal(cookie.attributes.get("samesite"), "Strict");
      assert.equal(cookie.attributes.get("path"), "/");
      assert.equal(cookie.attributes.has("secure"), false, "plain HTTP: browsers would drop a Secure cookie");
      const maxAge = Number(cookie.attributes.get("max-age"));
      assert.ok(maxAge <= 7 * DAY && maxAge >= 7 * DAY - 5, `Max-Age ${maxAge} is the session's remaining lifetime`);
    });

    it("refreshes from the cookie when refreshToken has no argument, and sets the successor as the cookie", async () => {
      const first = onlyCookie((await login("browser")).headers).value;
      const res = await refresh(first);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.refreshToken.refreshToken, null);
      const next = onlyCookie(res.headers);
      assert.equal(next.name, "refresh-token");
      assert.notEqual(next.value, first);
      assert.match(next.value, REFRESH_TOKEN_SHAPE);
      // Two tabs sending the same cookie at once: within the reuse interval the second gets the same successor.
      const again = await refresh(first);
      assert.equal(onlyCookie(again.headers).value, next.value);
      // And the chain goes on from the cookie.
      const third = await refresh(next.value);
      assert.equal(third.body.errors, undefined, JSON.stringify(third.body.errors));
    });

    it("answers REFRESH_TOKEN_MISSING, naming the usual causes, when there is neither an argument nor a cookie", async () => {
      const cases: Array<Record<string, string>> = [
        {},
        { cookie: "other=1" },
        { cookie: "refresh-token=" },
        { origin: APP_ORIGIN },
      ];
      for (const headers of cases) {
        const res = await t.gql(REFRESH, { headers });
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
        assert.equal(res.body.errors![0]!.extensions!.reason, "REFRESH_TOKEN_MISSING", JSON.stringify(headers));
        assert.equal(res.body.data, null);
        assert.deepEqual(res.headers.getSetCookie(), []);
        const message = res.body.errors![0]!.message;
        for (const cause of ["cookie did not arrive", 'credentials: "include"', "127.0.0.1 and localhost", "useCookie"])
          assert.ok(message.includes(cause), `the message names ${cause}: ${message}`);
      }
    });

    it("answers REFRESH_TOKEN_INVALID when the cookie arrives but is junk, unknown or spent", async () => {
      const spent = onlyCookie((await login("browser")).headers).value;
      const next = onlyCookie((await refresh(spent)).headers).value;
      await refresh(next);
      for (const cookie of ["junk", `rt_${"x".repeat(43)}`, spent]) {
        const res = await refresh(cookie);
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
        assert.equal(res.body.errors![0]!.extensions!.reason, "REFRESH_TOKEN_INVALID");
        assert.equal(res.body.errors![0]!.message, "The refresh token is invalid, expired or revoked. Log in again.");
        assert.deepEqual(res.headers.getSetCookie(), []);
      }
    });

    it("accepts the cookie from the server's own origin and from CORS_ORIGINS, and refuses any other origin with FORBIDDEN, reason ORIGIN, changing nothing", async () => {
      const cookie = onlyCookie((await login("browser")).headers).value;
      const foreign = await refresh(cookie, { origin: "https://evil.example" });
      assert.equal(foreign.status, 200);
      assert.deepEqual(codes(foreign), ["FORBIDDEN"]);
      assert.equal(foreign.body.errors![0]!.extensions!.reason, "ORIGIN");
      assert.equal(foreign.body.data, null);
      assert.deepEqual(foreign.headers.getSetCookie(), []);
      // The refused request did not spend the token: the app's own page can still use it.
      const own = await refresh(cookie, { origin: new URL(t.url).origin });
      assert.equal(own.body.errors, undefined, JSON.stringify(own.body.errors));
      const next = onlyCookie(own.headers).value;
      const listed = await refresh(next, { origin: APP_ORIGIN });
      assert.equal(listed.body.errors, undefined, JSON.stringify(listed.body.errors));
      assert.equal(listed.headers.get("access-control-allow-credentials"), "true");
    });

    it("ignores the cookie when the argument is given: body mode, no Set-Cookie", async () => {
      const cookie = onlyCookie((await login("browser")).headers).value;
      const body = await t.gql(`mutation($r: String!) { refreshToken(refreshToken: $r) { refreshToken } }`, {
        variables: { r: cookie },
        headers: { cookie: "refresh-token=something-else" },
      });
      assert.equal(body.body.errors, undefined, JSON.stringify(body.body.errors));
      assert.match(body.body.data.refreshToken.refreshToken, REFRESH_TOKEN_SHAPE);
      assert.deepEqual(body.headers.getSetCookie(), []);
    });

    it("clears the cookie on logout, and the session's refresh token is refused afterwards; logout OTHERS keeps it", async () => {
      const signedIn = await login("browser");
      const cookie = onlyCookie(signedIn.headers).value;
      const others = await t.gql(`mutation { logout(scope: OTHERS) }`, { token: signedIn.body.data.login.accessToken });
      assert.deepEqual(others.body, { data: { logout: true } });
      assert.deepEqual(others.headers.getSetCookie(), []);
      const out = await t.gql(`mutation { logout }`, { token: signedIn.body.data.login.accessToken });
      assert.deepEqual(out.body, { data: { logout: true } });
      const cleared = onlyCookie(out.headers);
      assert.equal(cleared.name, "refresh-token");
      assert.equal(cleared.value, "");
      const expires = cleared.attributes.get("expires");
      assert.ok(
        cleared.attributes.get("max-age") === "0" || (expires !== undefined && Date.parse(expires) <= Date.now()),
        "expired at once",
      );
      const after = await refresh(cookie);
      assert.equal(after.body.errors![0]!.extensions!.reason, "REFRESH_TOKEN_INVALID");
    });

    it("keeps body mode the default: login without useCookie returns the refresh token and sets no cookie", async () => {
      const res = await t.gql(LOGIN, { variables: { u: "browser", p: PASSWORD } });
      assert.match(res.body.data.login.refreshToken, REFRESH_TOKEN_SHAPE);
      assert.deepEqual(res.headers.getSetCookie(), []);
    });
  });

  describe(`cookie mode behind a TLS proxy that TRUST_PROXY trusts (${kind})`, () => {
    const t = useTestApp(kind, { env: { TRUST_PROXY: "loopback" } });

    it("names the cookie __Host-refresh-token and marks it Secure when the request came over HTTPS", async () => {
      await registerUser(t, "tls");
      const res = await t.gql(LOGIN, {
        variables: { u: "tls", p: PASSWORD, c: true },
        headers: { "x-forwarded-proto": "https" },
      });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const cookie = onlyCookie(res.headers);
      assert.equal(cookie.name, "__Host-refresh-token");
      assert.equal(cookie.attributes.has("secure"), true);
      assert.equal(cookie.attributes.get("path"), "/");
      assert.equal(cookie.attributes.has("domain"), false);
      const next = await t.gql(REFRESH, {
        headers: { "x-forwarded-proto": "https", cookie: `__Host-refresh-token=${cookie.value}` },
      });
      assert.equal(next.body.errors, undefined, JSON.stringify(next.body.errors));
      assert.equal(onlyCookie(next.headers).name, "__Host-refresh-token");
      // Over plain HTTP the secure cookie's name is not read: no refresh-token cookie arrived.
      const plain = await t.gql(REFRESH, {
        headers: { cookie: `__Host-refresh-token=${onlyCookie(next.headers).value}` },
      });
      assert.equal(plain.body.errors![0]!.extensions!.reason, "REFRESH_TOKEN_MISSING");
    });
  });
}
