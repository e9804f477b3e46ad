// POST /oauth/introspect (RFC 7662) and GET /.well-known/oauth-authorization-server (RFC 8414): the
// claims of live access and API tokens, {"active":false} for anything else (a logout on another
// instance within a second), the caller an API token with INTROSPECT in force, its rate limit, the
// refusals of bad bodies, and the metadata document, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { Role } from "../../src/access/roles.js";
import { type ApiClient, claimsOf, login, registerUser, sessionOf } from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { originOf, type RawResponse, send } from "../helpers/http.js";
import { sample } from "../helpers/outbox.js";

const ROOT = { username: "root", password: "root password 1" };
const WITH_ROOT = { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password };
const FORM = "application/x-www-form-urlencoded";
const INACTIVE = '{"active":false}';

const CREATE = `mutation($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { token apiToken { id createdAt expiresAt } }
}`;
const REVOKE = `mutation($id: ID!) { revokeApiToken(id: $id) }`;
const SET_ROLES = `mutation($userId: ID!, $roles: [Role!]!) { setUserRoles(userId: $userId, roles: $roles) { id } }`;

interface CreatedToken {
  token: string;
  id: string;
  createdAt: string;
  expiresAt: string;
}

/** Creates an API token of the user of `sessionToken`; fails the test on any error. */
async function createApiToken(t: ApiClient, sessionToken: string, scopes: string[]): Promise<CreatedToken> {
  const res = await t.gql(CREATE, { token: sessionToken, variables: { input: { name: "introspection", scopes } } });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  const { token, apiToken } = res.body.data.createApiToken;
  return { token, ...apiToken };
}

/** An INTROSPECT token of ROOT, the ADMIN the suite starts with. */
async function introspector(t: TestApp): Promise<string> {
  const root = await login(t, ROOT.username, { password: ROOT.password });
  return (await createApiToken(t, root.accessToken, ["INTROSPECT"])).token;
}

/** POSTs `body` to /oauth/introspect as `caller` (a bearer token, or no Authorization header). */
function post(t: TestApp, caller: string | undefined, body: string, contentType = FORM): Promise<RawResponse> {
  const headers: Record<string, string> = { "content-type": contentType };
  if (caller !== undefined) headers.authorization = `Bearer ${caller}`;
  return send(`${originOf(t.url)}/oauth/introspect`, { method: "POST", headers, body });
}

/** Introspects `token`, as a form body, with `caller`. */
function introspect(t: TestApp, caller: string, token: string): Promise<RawResponse> {
  return post(t, caller, new URLSearchParams({ token }).toString());
}

function introspections(t: TestApp, text: string, result: string): number {
  return sample(text, "gta_introspections_total", { result }) ?? 0;
}

/** Asserts an RFC 6749 error answer: status, `error`, a description, no-store, and the WWW-Authenticate given. */
function assertOAuthError(res: RawResponse, status: number, error: string, wwwAuthenticate?: string): void {
  assert.equal(res.status, status, res.text);
  assert.deepEqual(Object.keys(res.json).sort(), ["error", "error_description"]);
  assert.equal(res.json.error, error);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(res.headers.get("www-authenticate"), wwwAuthenticate ?? null);
}

for (const kind of DATABASES) {
  describe(`POST /oauth/introspect (${kind})`, () => {
    let clock = Date.now();
    const t = useTestApp(kind, { env: WITH_ROOT, now: () => clock });

    it("answers a live access token with its claims, its scopes as a session has them and its roles now", async () => {
      const caller = await introspector(t);
      const user = await registerUser(t, "claims-user");
      const res = await introspect(t, caller, user.accessToken);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      const claims = claimsOf(user.accessToken);
      assert.deepEqual(res.json, {
        active: true,
        sub: user.userId,
        scope: "PROFILE_READ POSTS_WRITE",
        exp: claims.exp,
        iat: claims.iat,
        iss: claims.iss,
        aud: claims.aud,
        sid: sessionOf(user.accessToken),
        aal: "aal1",
        token_type: "Bearer",
        token_use: "access_token",
        roles: [Role.USER],
      });

      // Promoted after the token was minted: the roles and scope are today's, not the token's.
      const root = await login(t, ROOT.username, { password: ROOT.password });
      const promoted = await t.gql(SET_ROLES, {
        token: root.accessToken,
        variables: { userId: user.userId, roles: ["USER", "ADMIN"] },
      });
      assert.equal(promoted.body.errors, undefined, JSON.stringify(promoted.body.errors));
      const after = await introspect(t, caller, user.accessToken);
      assert.equal(after.json.scope, "PROFILE_READ POSTS_WRITE ADMIN");
      assert.deepEqual(after.json.roles, ["ADMIN", "USER"]);
    });

    it("answers a live API token with its owner, its scopes in force, its creation and expiry, and its id as sid", async () => {
      const caller = await introspector(t);
      const owner = await registerUser(t, "api-owner");
      const script = await createApiToken(t, owner.accessToken, ["POSTS_WRITE", "PROFILE_READ"]);
      const res = await introspect(t, caller, script.token);
      assert.equal(res.status, 200, res.text);
      const claims = claimsOf(owner.accessToken);
      assert.deepEqual(res.json, {
        active: true,
        sub: owner.userId,
        scope: "POSTS_WRITE PROFILE_READ",
        exp: Math.floor(Date.parse(script.expiresAt) / 1000),
        iat: Math.floor(Date.parse(script.createdAt) / 1000),
        iss: claims.iss,
        aud: claims.aud,
        sid: script.id,
        aal: "aal1",
        token_type: "Bearer",
        token_use: "api_token",
        roles: [Role.USER],
      });
    });

    it("answers exactly {active:false} for ended, revoked, refresh, malformed, forged, too long and MFA-pending tokens", async () => {
      const caller = await introspector(t);
      const user = await registerUser(t, "inactive-user");
      const loggedOut = await login(t, "inactive-user");
      const ended = await t.gql(`mutation { logout }`, { token: loggedOut.accessToken });
      assert.equal(ended.body.errors, undefined, JSON.stringify(ended.body.errors));
      const revoked = await createApiToken(t, user.accessToken, ["PROFILE_READ"]);
      await t.gql(REVOKE, { token: user.accessToken, variables: { id: revoked.id } });
      const [header, payload, signature] = user.accessToken.split(".");
      const forged = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;
      const mfaPending = t.app.tokens.signAccessToken({
        userId: user.userId,
        roles: [Role.USER],
        sessionId: sessionOf(user.accessToken),
        fresh: true,
        assurance: { aal: 1, amr: ["pwd"], mfaPending: true },
      }).token;
      const cases: Array<[string, string]> = [
        ["an access token after logout", loggedOut.accessToken],
        ["a revoked API token", revoked.token],
        ["a refresh token", user.refreshToken],
        ["text that is no token", "not a token"],
        ["an API token nobody made", `gta_00000000-0000-4000-8000-000000000000_${"A".repeat(43)}`],
        ["a forged signature", forged],
        ["over 4096 characters", `${user.accessToken}${"A".repeat(4096)}`],
        ["a session that owes its second factor", mfaPending],
      ];
      for (const [what, token] of cases) {
        const res = await introspect(t, caller, token);
        assert.equal(res.status, 200, what);
        assert.equal(res.text, INACTIVE, what);
        assert.equal(res.headers.get("cache-control"), "no-store", what);
      }
      // The live token of the same user stays active throughout.
      assert.equal((await introspect(t, caller, user.accessToken)).json.active, true);
    });

    it("answers {active:false} for an access token once its exp has passed", async () => {
      const caller = await introspector(t);
      const user = await registerUser(t, "expiring-user");
      assert.equal((await introspect(t, caller, user.accessToken)).json.active, true);
      const exp = claimsOf(user.accessToken).exp as number;
      const saved = clock;
      clock = exp * 1000 + 1000;
      try {
        assert.equal((await introspect(t, caller, user.accessToken)).text, INACTIVE);
      } finally {
        clock = saved;
      }
    });

    it("ignores token_type_hint", async () => {
      const caller = await introspector(t);
      const user = await registerUser(t, "hinted-user");
      const body = new URLSearchParams({ token: user.accessToken, token_type_hint: "refresh_token" }).toString();
      assert.equal((await post(t, caller, body)).json.active, true);
    });

    it("refuses callers without a live API token with 401 invalid_token, and without INTROSPECT in force with 403", async () => {
      const user = await registerUser(t, "refused-caller");
      const body = new URLSearchParams({ token: user.accessToken }).toString();
      assertOAuthError(await post(t, undefined, body), 401, "invalid_token", "Bearer");
      // A session token, even an ADMIN's, is not a caller: only API tokens are.
      const root = await login(t, ROOT.username, { password: ROOT.password });
      assertOAuthError(await post(t, root.accessToken, body), 401, "invalid_token", 'Bearer error="invalid_token"');
      const unknown = `gta_00000000-0000-4000-8000-000000000000_${"A".repeat(43)}`;
      assertOAuthError(await post(t, unknown, body), 401, "invalid_token", 'Bearer error="invalid_token"');
      const revoked = await createApiToken(t, root.accessToken, ["INTROSPECT"]);
      await t.gql(REVOKE, { token: root.accessToken, variables: { id: revoked.id } });
      assertOAuthError(await post(t, revoked.token, body), 401, "invalid_token", 'Bearer error="invalid_token"');

      const forbidden = 'Bearer error="insufficient_scope", scope="INTROSPECT"';
      const reader = await createApiToken(t, root.accessToken, ["PROFILE_READ", "ADMIN"]);
      assertOAuthError(await post(t, reader.token, body), 403, "insufficient_scope", forbidden);
      // An INTROSPECT token whose owner is no longer an ADMIN asks nothing.
      const deputy = await registerUser(t, "deputy");
      await t.gql(SET_ROLES, {
        token: root.accessToken,
        variables: { userId: deputy.userId, roles: ["USER", "ADMIN"] },
      });
      const deputyToken = await createApiToken(t, (await login(t, "deputy")).accessToken, ["INTROSPECT"]);
      assert.equal((await post(t, deputyToken.token, body)).json.active, true);
      await t.gql(SET_ROLES, { token: root.accessToken, variables: { userId: deputy.userId, roles: ["USER"] } });
      assertOAuthError(await post(t, deputyToken.token, body), 403, "insufficient_scope", forbidden);
    });

    it("refuses a non-ADMIN's INTROSPECT token at creation with FORBIDDEN, reason SCOPE", async () => {
      const user = await registerUser(t, "would-introspect");
      const res = await t.gql(CREATE, {
        token: user.accessToken,
        variables: { input: { name: "introspection", scopes: ["INTROSPECT"] } },
      });
      assert.equal(res.body.errors?.[0]?.extensions?.code, "FORBIDDEN");
      assert.equal(res.body.errors?.[0]?.extensions?.reason, "SCOPE");
      assert.equal(res.body.data, null);
    });

    it("refuses a missing or repeated token with 400 invalid_request, another content type with 415 and a big body with 413", async () => {
      const caller = await introspector(t);
      const user = await registerUser(t, "bad-bodies");
      assertOAuthError(await post(t, caller, ""), 400, "invalid_request");
      assertOAuthError(await post(t, caller, "token_type_hint=access_token"), 400, "invalid_request");
      const twice = `token=${user.accessToken}&token=${user.accessToken}`;
      assertOAuthError(await post(t, caller, twice), 400, "invalid_request");

      const json = await post(t, caller, JSON.stringify({ token: user.accessToken }), "application/json");
      assert.equal(json.status, 415);
      assert.deepEqual(json.json, {
        errors: [
          {
            message: "This endpoint takes an application/x-www-form-urlencoded body.",
            extensions: { code: "BAD_REQUEST" },
          },
        ],
      });
      const big = await post(t, caller, `token=${"A".repeat(8 * 1024)}`);
      assert.equal(big.status, 413);
      assert.deepEqual(big.json, {
        errors: [{ message: "Request body is larger than 8192 bytes.", extensions: { code: "PAYLOAD_TOO_LARGE" } }],
      });
      const metrics = await t.app.metrics.text();
      assert.equal(sample(metrics, "gta_limit_refusals_total", { limit: "INTROSPECTION_BODY_MAX_BYTES" }), 1);
    });

    it("counts every call by its result", async () => {
      const before = await t.app.metrics.text();
      const caller = await introspector(t);
      const user = await registerUser(t, "counted");
      await introspect(t, caller, user.accessToken);
      await introspect(t, caller, "nothing");
      await introspect(t, caller, "nothing either");
      await post(t, undefined, "token=x");
      await post(t, caller, "");
      const after = await t.app.metrics.text();
      const delta = (result: string) => introspections(t, after, result) - introspections(t, before, result);
      assert.deepEqual(
        ["active", "inactive", "unauthorized", "forbidden", "rate_limited", "bad_request"].map(delta),
        [1, 2, 1, 0, 0, 1],
      );
    });
  });

  describe(`INTROSPECTION_MAX_PER_TOKEN (${kind})`, () => {
    const t = useTestApp(kind, { env: { ...WITH_ROOT, INTROSPECTION_MAX_PER_TOKEN: "3" } });

    it("answers 429 with Retry-After after three calls of one token in a minute, while another token is still served", async () => {
      const first = await introspector(t);
      const second = await introspector(t);
      const user = await registerUser(t, "limited");
      for (let i = 0; i < 3; i++) assert.equal((await introspect(t, first, user.accessToken)).json.active, true);
      const refused = await introspect(t, first, user.accessToken);
      assertOAuthError(refused, 429, "rate_limited");
      const retryAfter = Number(refused.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      assert.equal((await introspect(t, second, user.accessToken)).json.active, true);
      const metrics = await t.app.metrics.text();
      assert.equal(sample(metrics, "gta_rate_limit_hits_total", { limit: "INTROSPECTION_MAX_PER_TOKEN" }), 1);
      assert.equal(introspections(t, metrics, "rate_limited"), 1);
    });
  });

  describe(`introspection across two instances on one ${kind} database`, () => {
    const [a, b] = useTwoTestApps(kind, { env: WITH_ROOT });

    it("answers {active:false} on B within a second of a logout on A", async (tc) => {
      const caller = await introspector(a);
      const user = await registerUser(a, "two-instances");
      // B verifies the caller once, then serves it (and the access token) from memory.
      assert.equal((await introspect(b, caller, user.accessToken)).json.active, true);
      const started = performance.now();
      const ended = await a.gql(`mutation { logout }`, { token: user.accessToken });
      assert.equal(ended.body.errors, undefined, JSON.stringify(ended.body.errors));
      const loggedOut = performance.now() - started;
      let res = await introspect(b, caller, user.accessToken);
      while (res.json?.active === true && performance.now() - started < 3000) {
        await sleep(20);
        res = await introspect(b, caller, user.accessToken);
      }
      const elapsed = performance.now() - started;
      assert.equal(res.text, INACTIVE);
      assert.ok(elapsed < 1000, `inactive on the other instance after ${Math.round(elapsed)} ms`);
      tc.diagnostic(
        `[${kind}] logout on A -> {"active":false} on B ${Math.round(elapsed)} ms after it was sent, ` +
          `${Math.round(elapsed - loggedOut)} ms after A answered it`,
      );
    });
  });

  describe(`GET /.well-known/oauth-authorization-server (${kind})`, () => {
    const t = useTestApp(kind, {
      env: { PUBLIC_URL: "https://auth.example.com/", JWT_ISSUER: "https://auth.example.com" },
    });

    it("names the issuer, the JWKS and the introspection endpoint, and claims no response or grant type", async () => {
      const res = await send(`${originOf(t.url)}/.well-known/oauth-authorization-server`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "public, max-age=300");
      assert.deepEqual(res.json, {
        issuer: "https://auth.example.com",
        jwks_uri: "https://auth.example.com/.well-known/jwks.json",
        introspection_endpoint: "https://auth.example.com/oauth/introspect",
        scopes_supported: ["PROFILE_READ", "POSTS_WRITE", "ADMIN", "OPERATIONS_ANY", "INTROSPECT"],
        response_types_supported: [],
        response_modes_supported: [],
        grant_types_supported: [],
      });
      // The issuer is every token's iss.
      const user = await registerUser(t, "discovering");
      assert.equal(claimsOf(user.accessToken).iss, res.json.issuer);
    });
  });
}
