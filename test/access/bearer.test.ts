import assert from "node:assert/strict";
import { createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { before, describe, it } from "node:test";

import type { TokenFailure } from "../../src/access/tokens.js";
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../src/config.js";
import { INVALID_TOKEN_MESSAGE } from "../../src/errors.js";
import { assertInvalidToken, codes, type GraphQLResponse, loggedRejection, postBody } from "../helpers/api.js";
import { TEST_SECRET, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  expiredClaims,
  headerOf,
  type Json,
  payloadOf,
  sign,
  unsigned,
  withClaims,
  withoutUndefined,
} from "../helpers/jwt.js";

// The app's clock is frozen here, so forged timestamps are exact rather than "about now".
const NOW_MS = Date.UTC(2030, 0, 1, 12, 0, 0);
const NOW = NOW_MS / 1000;
const TTL = 900; // JWT_ACCESS_TOKEN_EXPIRES default, 15m
const APP_KEY = createSecretKey(Buffer.from(TEST_SECRET, "utf8"));
const PUBLIC_QUERY = `{ posts { id } }`;
const PROTECTED_QUERY = `{ me { id } }`;

for (const kind of DATABASES) {
  describe(`a bearer token sent over HTTP (${kind})`, () => {
    const t = useTestApp(kind, { now: () => NOW_MS });
    let alice: { token: string; userId: string };
    let aliceClaims: { sub: string; sid: string; roles: string[] };
    /** The kid of the app's key, as its own tokens carry it. */
    let appKid: string;
    let postId: string;
    /** Every token this suite sent, so the last test can check none of them reached the logs. */
    const sent = new Set<string>();

    before(async () => {
      alice = await t.register("alice");
      const decoded = payloadOf(alice.token);
      appKid = headerOf(alice.token).kid as string;
      aliceClaims = { sub: decoded.sub as string, sid: decoded.sid as string, roles: decoded.roles as string[] };
      sent.add(alice.token);
      const created = await t.gql(`mutation { createPost(input: { title: "Hi", body: "Hello" }) { id } }`, {
        token: alice.token,
      });
      postId = created.body.data.createPost.id;
    });

    /** Alice's claims as the app would mint them at NOW, with overrides (`undefined` removes one). */
    function claims(overrides: Json = {}): Json {
      return withoutUndefined({
        ...aliceClaims,
        jti: "forged-jti",
        fresh: true,
        iat: NOW,
        exp: NOW + TTL,
        iss: DEFAULT_ISSUER,
        aud: DEFAULT_AUDIENCE,
        ...overrides,
      });
    }

    /** Signs with jsonwebtoken; keeps the payload's own iat and never stamps the real clock's time. */
    function forge(payload: Json, options: { key?: KeyObject; header?: Json } = {}): string {
      return sign(payload, options.key ?? APP_KEY, { header: { typ: "at+jwt", kid: appKid, ...options.header } });
    }

    /** Sends `authorization` (if any) and remembers the token in it. */
    function send(query: string, authorization?: string): Promise<GraphQLResponse> {
      if (authorization !== undefined) sent.add(authorization.replace(/^\S+\s+/, ""));
      return postBody(t.url, { query }, authorization === undefined ? {} : { authorization });
    }

    /** The `reason` the app logged for the request that got `res`. */
    function loggedReason(res: GraphQLResponse): string | undefined {
      const requestId = res.headers.get("x-request-id");
      assert.ok(requestId, "every response carries x-request-id");
      return loggedRejection(t, res);
    }

    it("accepts a token forged with the app's own key and claims, so each refusal below is for its stated reason", async () => {
      const res = await send(PROTECTED_QUERY, `Bearer ${forge(claims())}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { me: { id: alice.userId } } });
    });

    const beforeSignIn = (shown: string) =>
      `The Authorization header holds "${shown}" without a token: the client sent it before it had one. ` +
      'Send no Authorization header until signed in, then "Bearer <access token>".';

    /**
     * Authorization header values that must be refused, the reason the server must log, and, where
     * the header holds no token at all, the message that says so (otherwise the one fixed message).
     */
    const refused: Array<{ name: string; header: () => string; reason: TokenFailure; message?: string }> = [
      { name: "an expired token", header: () => `Bearer ${forge(expiredClaims(claims(), NOW))}`, reason: "EXPIRED" },
      {
        name: "a token whose payload was changed to grant ADMIN",
        header: () => `Bearer ${withClaims(alice.token, { ...payloadOf(alice.token), roles: ["ADMIN", "USER"] })}`,
        reason: "SIGNATURE_INVALID",
      },
      {
        name: "a token signed with another key",
        header: () => `Bearer ${forge(claims(), { key: createSecretKey(randomBytes(48)) })}`,
        reason: "SIGNATURE_INVALID",
      },
      ...["none", "None", "NONE", "nOnE"].map((alg) => ({
        name: `an unsigned token with alg "${alg}"`,
        header: () => `Bearer ${unsigned({ alg, typ: "at+jwt" }, claims())}`,
        reason: "ALGORITHM_NOT_ALLOWED" as const,
      })),
      {
        name: "a token from another issuer",
        header: () => `Bearer ${forge(claims({ iss: "someone-else" }))}`,
        reason: "ISSUER_MISMATCH",
      },
      {
        name: "a token for another audience",
        header: () => `Bearer ${forge(claims({ aud: "another-api" }))}`,
        reason: "AUDIENCE_MISMATCH",
      },
      {
        name: 'a token with typ "JWT"',
        header: () => `Bearer ${forge(claims(), { header: { typ: "JWT" } })}`,
        reason: "WRONG_TYPE",
      },
      {
        name: "a token with no typ",
        header: () => `Bearer ${forge(claims(), { header: { typ: undefined } })}`,
        reason: "WRONG_TYPE",
      },
      {
        name: "a token with no exp",
        header: () => `Bearer ${forge(claims({ exp: undefined }))}`,
        reason: "CLAIM_MISSING",
      },
      {
        name: "a token issued a minute in the future",
        header: () => `Bearer ${forge(claims({ iat: NOW + 60, exp: NOW + 60 + TTL }))}`,
        reason: "ISSUED_IN_FUTURE",
      },
      {
        name: "a token valid for a day",
        header: () => `Bearer ${forge(claims({ exp: NOW + 86400 }))}`,
        reason: "LIFETIME_TOO_LONG",
      },
      {
        name: "a token claiming an unknown role",
        header: () => `Bearer ${forge(claims({ roles: ["ROOT"] }))}`,
        reason: "CLAIM_INVALID",
      },
      {
        name: 'a token with a "jku" header',
        header: () => `Bearer ${forge(claims(), { header: { jku: "https://attacker.example/jwks.json" } })}`,
        reason: "FORBIDDEN_HEADER",
      },
      {
        name: "a token longer than 4096 characters",
        header: () => `Bearer ${forge(claims({ pad: "x".repeat(4096) }))}`,
        reason: "TOO_LONG",
      },
      { name: "a value that is not a JWT", header: () => "Bearer not-a-jwt", reason: "MALFORMED" },
      {
        name: "an opaque random string such as a refresh token",
        header: () => `Bearer ${randomBytes(32).toString("base64url")}`,
        reason: "MALFORMED",
      },
      {
        name: "a token with a space inside",
        header: () => `Bearer ${alice.token.slice(0, 20)} ${alice.token.slice(20)}`,
        reason: "MALFORMED",
      },
      { name: "a valid token in quotes", header: () => `Bearer "${alice.token}"`, reason: "MALFORMED" },
      {
        name: "Basic credentials",
        header: () => `Basic ${Buffer.from("alice:correct horse battery").toString("base64")}`,
        reason: "MALFORMED",
      },
      { name: 'a valid token under the "Token" scheme', header: () => `Token ${alice.token}`, reason: "MALFORMED" },
      { name: "a valid token with no scheme", header: () => alice.token, reason: "MALFORMED" },
      { name: "a value that only starts like undefined", header: () => "Bearer undefinedx", reason: "MALFORMED" },
      {
        name: '"Bearer" with no token',
        header: () => "Bearer",
        reason: "MALFORMED",
        message: beforeSignIn("Bearer"),
      },
      {
        name: '"Bearer " with an empty token',
        header: () => "Bearer ",
        reason: "MALFORMED",
        message: beforeSignIn("Bearer"),
      },
      {
        name: '"Bearer undefined", as a client sends it before it has a token',
        header: () => `Bearer ${String(undefined)}`,
        reason: "MALFORMED",
        message: beforeSignIn("Bearer undefined"),
      },
      {
        name: '"Bearer null"',
        header: () => `Bearer ${String(null)}`,
        reason: "MALFORMED",
        message: beforeSignIn("Bearer null"),
      },
      { name: '"undefined" alone', header: () => "undefined", reason: "MALFORMED", message: beforeSignIn("undefined") },
      {
        name: "an empty header value",
        header: () => "",
        reason: "MALFORMED",
        message:
          'The Authorization header is empty. Send no Authorization header until signed in, then "Bearer <access token>".',
      },
    ];

    for (const { name, header, reason, message } of refused) {
      it(`refuses ${name} with 401 and the invalid_token challenge, on a public query as on a protected one`, async () => {
        const authorization = header();
        for (const query of [PUBLIC_QUERY, PROTECTED_QUERY]) {
          const res = await send(query, authorization);
          // A header that holds no token is still TOKEN_INVALID: only the message names the mistake.
          assertInvalidToken(res, { exact: true, message, ...(message ? { reason: "TOKEN_INVALID" } : {}) });
          assert.equal(loggedReason(res), reason, `the server logs ${reason} as the reason`);
        }
      });
    }

    it("answers a public field without an Authorization header with 200 and data", async () => {
      const res = await send(PUBLIC_QUERY);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { posts: [{ id: postId }] } });
      assert.equal(res.headers.get("www-authenticate"), null);
    });

    it("answers a protected field without an Authorization header with 200, UNAUTHENTICATED and no challenge", async () => {
      const res = await send(PROTECTED_QUERY);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(res.body.errors?.[0]?.message, "You must be signed in to do this.");
      assert.notEqual(res.body.errors?.[0]?.message, INVALID_TOKEN_MESSAGE);
      assert.equal(res.body.data, null);
      assert.equal(res.headers.get("www-authenticate"), null);
    });

    for (const scheme of ["bearer", "BEARER", "bEaReR"]) {
      it(`accepts the scheme spelled "${scheme}"`, async () => {
        const res = await send(PROTECTED_QUERY, `${scheme} ${alice.token}`);
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { data: { me: { id: alice.userId } } });
      });
    }

    it("ignores a valid token in the URL query string and treats the request as anonymous", async () => {
      const res = await postBody(`${t.url}?access_token=${encodeURIComponent(alice.token)}`, {
        query: PROTECTED_QUERY,
      });
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(res.body.data, null);
    });

    it("ignores an invalid token in the URL query string rather than refusing the request", async () => {
      const res = await postBody(`${t.url}?access_token=not-a-jwt`, { query: PUBLIC_QUERY });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { posts: [{ id: postId }] } });
    });

    it("ignores a valid token in the JSON body and treats the request as anonymous", async () => {
      const res = await postBody(t.url, {
        query: PROTECTED_QUERY,
        access_token: alice.token,
        token: alice.token,
        authorization: `Bearer ${alice.token}`,
        extensions: { authorization: `Bearer ${alice.token}` },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      assert.equal(res.body.data, null);
    });

    it("logs why a token was refused, never the token itself", async () => {
      const expired = forge(expiredClaims(claims({ jti: "expired-for-logs" }), NOW));
      const res = await send(PUBLIC_QUERY, `Bearer ${expired}`);
      assertInvalidToken(res, { exact: true });
      assert.equal(loggedReason(res), "EXPIRED");

      const logs = t.logs.join("\n");
      // "Bearer", "", "not-a-jwt" are too short to be secrets and could occur in a log by chance.
      const tokens = [...sent].filter((token) => token.length >= 16);
      assert.ok(
        tokens.includes(expired) && tokens.includes(alice.token) && tokens.length >= 20,
        `checked ${tokens.length} tokens`,
      );
      for (const token of tokens) {
        assert.equal(logs.includes(token), false, `a sent token appears in the logs: ${token.slice(0, 24)}…`);
        const signature = token.split(".")[2];
        if (signature && signature.length >= 16)
          assert.equal(logs.includes(signature), false, "a token's signature appears in the logs");
      }
    });
  });
}
