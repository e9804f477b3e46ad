import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { BODY_LIMIT_BYTES } from "../src/http/server.js";
import { codes } from "./helpers/api.js";
import { startTestApp, type TestApp, useTestApp } from "./helpers/app.js";
import { originOf, type RawResponse, send } from "./helpers/http.js";

const STUDIO = "https://studio.apollographql.com";
const APP = "https://app.example";
const HSTS = "max-age=31536000; includeSubDomains";
const PRODUCTION_CSP = "default-src 'none';frame-ancestors 'none'";

const json = (query: string, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify({ query }),
});

/** What a browser sends before a cross-origin POST with a token and a JSON body. */
const preflight = (origin: string): RequestInit => ({
  method: "OPTIONS",
  headers: {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type",
  },
});

/** The names of the response's `access-control-*` headers. */
function corsHeaders(res: RawResponse): string[] {
  return [...res.headers.keys()].filter((name) => name.startsWith("access-control-"));
}

/** A sample of every kind of response: success, GraphQL refusal, protocol errors, other routes. */
function everyKindOfResponse(t: TestApp): Array<[string, () => Promise<RawResponse>, number]> {
  const base = originOf(t.url);
  return [
    ["a query", () => send(t.url, json("{ posts { id } }")), 200],
    ["a validation error", () => send(t.url, json("{ posts { nope } }")), 400],
    ["a rejected token", () => send(t.url, json("{ posts { id } }", { authorization: "Bearer not.a.token" })), 401],
    [
      "malformed JSON",
      () => send(t.url, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" }),
      400,
    ],
    [
      "a body over 1 MB",
      () =>
        send(t.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "x".repeat(BODY_LIMIT_BYTES + 1),
        }),
      413,
    ],
    ["/healthz", () => send(`${base}/healthz`), 200],
    ["/readyz", () => send(`${base}/readyz`), 200],
    ["/.well-known/jwks.json", () => send(`${base}/.well-known/jwks.json`), 200],
    ["an unknown route", () => send(`${base}/nowhere`), 404],
  ];
}

function assertApiHeaders(res: RawResponse): void {
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
  assert.equal(res.headers.get("strict-transport-security"), null, "no HSTS over plain HTTP");
  assert.equal(res.headers.get("x-powered-by"), null);
}

describe("security headers in production (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "production" } });

  it("puts nosniff, DENY framing, no-referrer and a deny-all CSP on every response, errors and 404s included", async () => {
    for (const [name, request, status] of everyKindOfResponse(t)) {
      const res = await request();
      assert.equal(res.status, status, name);
      assertApiHeaders(res);
      assert.equal(res.headers.get("content-security-policy"), PRODUCTION_CSP, name);
    }
  });

  it("sends no CORS headers by default, not even to Apollo Studio: its preflight gets no Access-Control-Allow-Origin", async () => {
    const res = await send(t.url, preflight(STUDIO));
    assert.equal(res.status, 400);
    assert.deepEqual(corsHeaders(res), []);

    const post = await send(t.url, json("{ posts { id } }", { origin: STUDIO }));
    assert.equal(post.status, 200);
    assert.deepEqual(corsHeaders(post), []);
  });

  it("refuses a mutation over GET (400 without a preflight header, 405 with one) and runs nothing", async () => {
    const query = `mutation { register(input: { username: "viaget", password: "correct horse battery" }) { accessToken } }`;
    const url = `${t.url}?query=${encodeURIComponent(query)}`;

    const plain = await send(url);
    assert.equal(plain.status, 400);
    assert.deepEqual(
      JSON.parse(plain.text).errors.map((e: any) => e.extensions.code),
      ["BAD_REQUEST"],
    );

    const preflighted = await send(url, { headers: { "apollo-require-preflight": "true" } });
    assert.equal(preflighted.status, 405);
    assert.equal(preflighted.headers.get("allow"), "POST");
    assert.deepEqual(
      JSON.parse(preflighted.text).errors.map((e: any) => e.extensions.code),
      ["BAD_REQUEST"],
    );

    const login = await t.gql(
      `mutation { login(input: { username: "viaget", password: "correct horse battery" }) { accessToken } }`,
    );
    assert.deepEqual(codes(login), ["UNAUTHENTICATED"], "no user was registered");
  });
});

describe("security headers and CORS in development (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "development" } });

  it("puts nosniff, DENY framing and no-referrer on every response, and no CSP", async () => {
    for (const [name, request, status] of everyKindOfResponse(t)) {
      const res = await request();
      assert.equal(res.status, status, name);
      assertApiHeaders(res);
      assert.equal(res.headers.get("content-security-policy"), null, name);
    }
  });

  it("still serves Apollo's landing page, whose scripts come from Apollo's CDN, with no CSP to block them", async () => {
    const res = await send(t.url, { headers: { accept: "text/html" } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(res.text, /<script[^>]+src="https:\/\/embeddable-sandbox\.cdn\.apollographql\.com\//);
    assert.equal(res.headers.get("content-security-policy"), null);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
  });

  it("answers the hosted Sandbox's preflight: its origin, GET/POST/OPTIONS, the token and JSON headers, credentials (an allowed origin)", async () => {
    const res = await send(t.url, preflight(STUDIO));
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), STUDIO);
    assert.equal(res.headers.get("access-control-allow-methods"), "GET, POST, OPTIONS");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(", ");
    for (const header of ["authorization", "content-type", "apollo-require-preflight"])
      assert.ok(allowed.includes(header), header);
    // Credentials (the refresh-token cookie of cookie mode) only ever for the origins CORS_ORIGINS lists.
    assert.equal(res.headers.get("access-control-allow-credentials"), "true");
    assert.match(res.headers.get("vary") ?? "", /\bOrigin\b/);
    assertApiHeaders(res);
  });

  it("lets the hosted Sandbox read a response, and the 401 challenge and request id in it", async () => {
    const ok = await send(t.url, json("{ posts { id } }", { origin: STUDIO }));
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("access-control-allow-origin"), STUDIO);
    assert.equal(ok.headers.get("access-control-allow-credentials"), "true");

    const refused = await send(
      t.url,
      json("{ posts { id } }", { origin: STUDIO, authorization: "Bearer not.a.token" }),
    );
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get("access-control-allow-origin"), STUDIO);
    assert.equal(refused.headers.get("access-control-expose-headers"), "WWW-Authenticate, X-Request-Id");
  });

  it("gives any other origin no CORS headers at all, for a preflight or a request", async () => {
    for (const origin of [
      "https://evil.example",
      "https://studio.apollographql.com.evil.example",
      "http://studio.apollographql.com",
      "null",
    ]) {
      const res = await send(t.url, preflight(origin));
      assert.equal(res.status, 400, origin);
      assert.deepEqual(corsHeaders(res), [], origin);

      const post = await send(t.url, json("{ posts { id } }", { origin }));
      assert.equal(post.status, 200, origin);
      assert.deepEqual(corsHeaders(post), [], origin);
    }
  });
});

describe("CORS_ORIGINS (sqlite)", () => {
  for (const mode of ["development", "production"] as const) {
    it(`replaces the default list in ${mode}: ${APP} is allowed and Apollo Studio is not`, async () => {
      const t = await startTestApp("sqlite", {
        env: { NODE_ENV: mode, CORS_ORIGINS: `${APP}, http://localhost:5173` },
      });
      try {
        for (const origin of [APP, "http://localhost:5173"]) {
          const res = await send(t.url, preflight(origin));
          assert.equal(res.status, 204, origin);
          assert.equal(res.headers.get("access-control-allow-origin"), origin);
        }
        const studio = await send(t.url, preflight(STUDIO));
        assert.equal(studio.status, 400);
        assert.deepEqual(corsHeaders(studio), []);
      } finally {
        await t.close();
        await t.database.drop();
      }
    });
  }
});

describe("TLS behind a proxy: HSTS and the client's address (sqlite)", () => {
  /** Registers a user with these request headers and returns the IP its session recorded. */
  async function sessionIp(t: TestApp, username: string, headers: Record<string, string>): Promise<string> {
    const registered = await t.gql(
      `mutation { register(input: { username: "${username}", password: "correct horse battery" }) { accessToken } }`,
      { headers },
    );
    assert.deepEqual(codes(registered), []);
    const sessions = await t.gql(`{ sessions { ip } }`, { token: registered.body.data.register.accessToken });
    assert.deepEqual(codes(sessions), []);
    assert.equal(sessions.body.data.sessions.length, 1);
    return sessions.body.data.sessions[0].ip;
  }

  describe("without TRUST_PROXY", () => {
    const t = useTestApp("sqlite", { env: { NODE_ENV: "production" } });

    it("sends no HSTS over plain HTTP, even when a client claims X-Forwarded-Proto: https", async () => {
      const plain = await send(t.url, json("{ posts { id } }"));
      assert.equal(plain.headers.get("strict-transport-security"), null);
      const claimed = await send(t.url, json("{ posts { id } }", { "x-forwarded-proto": "https" }));
      assert.equal(claimed.status, 200);
      assert.equal(claimed.headers.get("strict-transport-security"), null);
    });

    it("records the socket's address, ignoring X-Forwarded-For", async () => {
      assert.equal(await sessionIp(t, "direct", {}), "127.0.0.1");
      assert.equal(await sessionIp(t, "spoofer", { "x-forwarded-for": "203.0.113.7" }), "127.0.0.1");
    });
  });

  describe("with TRUST_PROXY=true", () => {
    const t = useTestApp("sqlite", { env: { NODE_ENV: "production", TRUST_PROXY: "true" } });

    it("sends HSTS when the proxy says the request came over https, and not when it says http", async () => {
      const https = await send(t.url, json("{ posts { id } }", { "x-forwarded-proto": "https" }));
      assert.equal(https.status, 200);
      assert.equal(https.headers.get("strict-transport-security"), HSTS);

      const error = await send(`${originOf(t.url)}/nowhere`, { headers: { "x-forwarded-proto": "https" } });
      assert.equal(error.status, 404);
      assert.equal(error.headers.get("strict-transport-security"), HSTS);

      const http = await send(t.url, json("{ posts { id } }", { "x-forwarded-proto": "http" }));
      assert.equal(http.headers.get("strict-transport-security"), null);
      const none = await send(t.url, json("{ posts { id } }"));
      assert.equal(none.headers.get("strict-transport-security"), null);
    });

    it("records the forwarded client address on the session", async () => {
      assert.equal(await sessionIp(t, "forwarded", { "x-forwarded-for": "203.0.113.7" }), "203.0.113.7");
      assert.equal(await sessionIp(t, "notforwarded", {}), "127.0.0.1");
    });

    it("believes the leftmost X-Forwarded-For entry, which the client wrote itself: why a list of proxies is safer", async () => {
      assert.equal(await sessionIp(t, "leftmost", { "x-forwarded-for": "198.51.100.1, 203.0.113.7" }), "198.51.100.1");
    });

    it("keeps at most 64 characters of whatever the client wrote there, the bound Session.ip declares", async () => {
      const written = "x".repeat(5000);
      assert.equal(await sessionIp(t, "longforward", { "x-forwarded-for": written }), written.slice(0, 64));
    });
  });

  describe("with TRUST_PROXY listing the proxy's address", () => {
    const t = useTestApp("sqlite", { env: { NODE_ENV: "production", TRUST_PROXY: "127.0.0.1, 10.0.0.0/8" } });

    it("takes the address the trusted proxy appended, not one the client put before it", async () => {
      assert.equal(await sessionIp(t, "listed", { "x-forwarded-for": "198.51.100.1, 203.0.113.7" }), "203.0.113.7");
      assert.equal(
        await sessionIp(t, "hopped", { "x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.1.2.3" }),
        "203.0.113.7",
      );
    });

    it("sends HSTS for X-Forwarded-Proto: https from it", async () => {
      const res = await send(t.url, json("{ posts { id } }", { "x-forwarded-proto": "https" }));
      assert.equal(res.headers.get("strict-transport-security"), HSTS);
    });
  });

  describe("with TRUST_PROXY naming another proxy", () => {
    const t = useTestApp("sqlite", { env: { NODE_ENV: "production", TRUST_PROXY: "10.0.0.0/8" } });

    it("treats this direct client like any other: no HSTS for its X-Forwarded-Proto, its socket address recorded", async () => {
      const res = await send(t.url, json("{ posts { id } }", { "x-forwarded-proto": "https" }));
      assert.equal(res.headers.get("strict-transport-security"), null);
      assert.equal(await sessionIp(t, "unlisted", { "x-forwarded-for": "203.0.113.7" }), "127.0.0.1");
    });
  });
});
