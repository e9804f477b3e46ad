// What a client is told, so it knows whether to refresh, sign in again or give up: every
// UNAUTHENTICATED and FORBIDDEN error carries extensions.reason, and a 401's challenge names the
// same reason. And the credential mutations (login, register, refreshToken) never fail because of
// the Authorization header a client's auth link keeps attaching.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ErrorReason } from "../../src/errors.js";
import { codes, loggedRejection, login, PASSWORD, refresh, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { tamperedSignature } from "../helpers/jwt.js";

const MINUTE = 60_000;
const ME = `{ me { id } }`;
const REFRESH = `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }`;
const LOGIN = `mutation($u: String!, $p: String!) { login(input: { username: $u, password: $p }) { accessToken } }`;

function reasonOf(res: { body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }): unknown {
  return res.body.errors?.[0]?.extensions?.reason;
}

/** A 401 for `reason`: the code, the reason, and the RFC 6750 challenge naming it. */
function assert401(res: { status: number; headers: Headers; body: any }, reason: string): void {
  assert.equal(res.status, 401);
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
  assert.equal(reasonOf(res), reason);
  assert.equal(res.headers.get("www-authenticate"), `Bearer error="invalid_token", error_description="${reason}"`);
}

for (const kind of DATABASES) {
  describe(`extensions.reason on every UNAUTHENTICATED and FORBIDDEN error (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { now: () => clock, env: { JWT_ACCESS_TOKEN_EXPIRES: "15m" } });

    it("says NOT_SIGNED_IN for a protected field without a token, in a 200", async () => {
      const res = await t.gql(ME);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(reasonOf(res), ErrorReason.NOT_SIGNED_IN);
    });

    it("says BAD_CREDENTIALS for a wrong password and for an unknown username alike", async () => {
      await registerUser(t, "reasons");
      for (const [u, p] of [
        ["reasons", "a wrong password here"],
        ["nobody-at-all", PASSWORD],
      ]) {
        const res = await t.gql(LOGIN, { variables: { u, p } });
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
        assert.equal(reasonOf(res), ErrorReason.BAD_CREDENTIALS);
      }
    });

    it("says TOKEN_EXPIRED, in the body and the challenge, once the access token's exp has passed", async () => {
      const tokens = await login(t, "reasons");
      clock += 16 * MINUTE;
      assert401(await t.gql(ME, { token: tokens.accessToken }), ErrorReason.TOKEN_EXPIRED);
    });

    it("says TOKEN_INVALID for a forged signature and for a header that is not a bearer token", async () => {
      const tokens = await login(t, "reasons");
      assert401(await t.gql(ME, { token: tamperedSignature(tokens.accessToken) }), ErrorReason.TOKEN_INVALID);
      assert401(
        await t.gql(ME, { headers: { authorization: `Basic ${tokens.accessToken}` } }),
        ErrorReason.TOKEN_INVALID,
      );
    });

    it("says SESSION_ENDED after logout", async () => {
      const tokens = await login(t, "reasons");
      assert.deepEqual((await t.gql(`mutation { logout }`, { token: tokens.accessToken })).body, {
        data: { logout: true },
      });
      assert401(await t.gql(ME, { token: tokens.accessToken }), ErrorReason.SESSION_ENDED);
    });

    it("says REFRESH_TOKEN_INVALID for an unknown refresh token and for one of an ended session", async () => {
      const unknown = await t.gql(REFRESH, { variables: { r: `rt_${"A".repeat(43)}` } });
      assert.equal(unknown.status, 200);
      assert.equal(reasonOf(unknown), ErrorReason.REFRESH_TOKEN_INVALID);
      const tokens = await login(t, "reasons");
      await t.gql(`mutation { logout }`, { token: tokens.accessToken });
      const ended = await t.gql(REFRESH, { variables: { r: tokens.refreshToken } });
      assert.deepEqual(codes(ended), ["UNAUTHENTICATED"]);
      assert.equal(reasonOf(ended), ErrorReason.REFRESH_TOKEN_INVALID);
    });

    it("says REFRESH_TOKEN_MISSING for refreshToken with neither its argument nor a cookie, naming the usual causes", async () => {
      const res = await t.gql(`mutation { refreshToken { accessToken } }`);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(reasonOf(res), ErrorReason.REFRESH_TOKEN_MISSING);
      assert.equal(res.headers.get("www-authenticate"), null);
      assert.match(res.body.errors![0]!.message, /cookie did not arrive/);
      assert.match(res.body.errors![0]!.message, /credentials: "include"/);
    });

    it("says TOKEN_INVALID for `Bearer undefined` on a public field, with a message that blames the header", async () => {
      const res = await t.gql(`{ posts(first: 1) { id } }`, { headers: { authorization: "Bearer undefined" } });
      assert401(res, ErrorReason.TOKEN_INVALID);
      assert.equal(
        res.body.errors![0]!.message,
        'The Authorization header holds "Bearer undefined" without a token: the client sent it before it had one. ' +
          'Send no Authorization header until signed in, then "Bearer <access token>".',
      );
      assert.equal(loggedRejection(t, res), "MALFORMED");
    });

    it("says ROLE for a field that needs ADMIN and OWNERSHIP for someone else's post", async () => {
      const author = await registerUser(t, "owner");
      const other = await registerUser(t, "notowner");
      const users = await t.gql(`{ users { id } }`, { token: other.accessToken });
      assert.deepEqual(codes(users), ["FORBIDDEN"]);
      assert.equal(reasonOf(users), ErrorReason.ROLE);
      const created = await t.gql(`mutation { createPost(input: { title: "Mine", body: "Hands off" }) { id } }`, {
        token: author.accessToken,
      });
      const id = created.body.data.createPost.id;
      const edit = await t.gql(`mutation($id: ID!) { updatePost(id: $id, input: { title: "Yours now" }) { id } }`, {
        token: other.accessToken,
        variables: { id },
      });
      assert.deepEqual(codes(edit), ["FORBIDDEN"]);
      assert.equal(reasonOf(edit), ErrorReason.OWNERSHIP);
    });
  });

  describe(`login, register and refreshToken ignore the Authorization header (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { now: () => clock });

    it("refreshes with the expired access token still attached, as urql's auth exchange sends it", async () => {
      const first = await registerUser(t, "linked");
      clock += 16 * MINUTE;
      const res = await t.gql(REFRESH, { token: first.accessToken, variables: { r: first.refreshToken } });
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.match(res.body.data.refreshToken.accessToken, /^ey/);
      assert.equal(loggedRejection(t, res), undefined, "an ignored header is not logged as a rejected token");
    });

    it("logs in and registers with a forged or ended token attached, through fragments too", async () => {
      const tokens = await login(t, "linked");
      await t.gql(`mutation { logout }`, { token: tokens.accessToken });
      const viaFragment = await t.gql(
        `mutation($u: String!, $p: String!) { ...L } fragment L on Mutation { login(input: { username: $u, password: $p }) { accessToken } }`,
        {
          token: tokens.accessToken,
          variables: { u: "linked", p: PASSWORD },
        },
      );
      assert.equal(viaFragment.status, 200);
      assert.equal(viaFragment.body.errors, undefined, JSON.stringify(viaFragment.body.errors));
      const registered = await t.gql(
        `mutation { register(input: { username: "linked2", password: "${PASSWORD}" }) { user { username } } }`,
        {
          headers: { authorization: "Bearer not-a-jwt" },
        },
      );
      assert.deepEqual(registered.body, { data: { register: { user: { username: "linked2" } } } });
    });

    it("still refuses with 401 when the operation asks for anything else, even __typename beside refreshToken", async () => {
      const first = await login(t, "linked");
      const next = await refresh(t, first.refreshToken);
      clock += 16 * MINUTE;
      const mixed = await t.gql(`mutation($r: String!) { __typename refreshToken(refreshToken: $r) { accessToken } }`, {
        token: next.accessToken,
        variables: { r: next.refreshToken },
      });
      assert401(mixed, ErrorReason.TOKEN_EXPIRED);
      const logout = await t.gql(`mutation { logout }`, { token: next.accessToken });
      assert401(logout, ErrorReason.TOKEN_EXPIRED);
      const query = await t.gql(`query { posts { id } }`, { token: next.accessToken });
      assert401(query, ErrorReason.TOKEN_EXPIRED);
      // The refused refresh changed nothing: the token still works once the header is dropped.
      const refreshed = await t.gql(REFRESH, { variables: { r: next.refreshToken } });
      assert.equal(refreshed.body.errors, undefined, JSON.stringify(refreshed.body.errors));
    });

    it("picks the operation named by operationName: a document with a query beside the refresh is judged by the one that runs", async () => {
      const first = await login(t, "linked");
      clock += 16 * MINUTE;
      const document = `query Me { me { id } } mutation Refresh($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`;
      const refresh = await fetch(t.url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${first.accessToken}` },
        body: JSON.stringify({ query: document, operationName: "Refresh", variables: { r: first.refreshToken } }),
      });
      assert.equal(refresh.status, 200);
      const meRes = await fetch(t.url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${first.accessToken}` },
        body: JSON.stringify({ query: document, operationName: "Me" }),
      });
      assert.equal(meRes.status, 401);
      assert.equal(
        meRes.headers.get("www-authenticate"),
        `Bearer error="invalid_token", error_description="TOKEN_EXPIRED"`,
      );
    });
  });
}
