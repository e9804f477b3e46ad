// All of /graphql is served by the route of src/http/graphql-route.ts on node:http, CORS included:
// a request with an Origin takes the same code as one without. With CORS_ORIGINS set (an allowed
// Origin) and without it (production: no CORS at all), each request below goes once with an Origin
// and once without, and everything but the CORS headers must be the same: status, body and every
// other header. (Fastify's own /graphql route, which once served the requests with an Origin, and
// the comparison with it are gone; these are the behaviours that comparison held.)
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, it } from "node:test";

import { isGraphqlRequest } from "../../src/http/graphql-route.js";
import { BODY_LIMIT_BYTES } from "../../src/http/server.js";
import { PASSWORD } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { originOf, type RawResponse, send } from "../helpers/http.js";

const APP = "https://app.example";
/** Headers that differ per request. */
const PER_REQUEST = new Set(["date", "x-request-id", "keep-alive", "connection"]);

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});
const LOGIN_WITH_COOKIE = `mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }`;

/** What must be equal: status, the headers that are not per request or CORS, the body without tokens and stack traces. */
function comparable(res: RawResponse) {
  const headers = [...res.headers.entries()]
    .filter(([name]) => !PER_REQUEST.has(name) && !name.startsWith("access-control-"))
    .map(([name, value]) => [name, name === "set-cookie" ? value.replace(/=rt_[^;]+;/, "=<token>;") : value]);
  // The landing page's CSP nonce is new on every response.
  const body = res.json === undefined ? res.text.replace(/\b[0-9a-f]{64}\b/g, "<nonce>") : stripVarying(res.json);
  return { status: res.status, headers, body };
}
function stripVarying(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripVarying);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== "stacktrace")
      .map(([key, v]) => [key, key === "accessToken" ? "<token>" : stripVarying(v)]),
  );
}

const big = "x".repeat(BODY_LIMIT_BYTES + 1);
/** Each request (its name, its init given extra headers, its query string) and the status it gets. */
const CASES: Array<[string, (extra: Record<string, string>) => RequestInit, string, number | "landing page"]> = [
  ["a query", (h) => json({ query: "{ posts { id } }" }, h), "", 200],
  ["a validation error", (h) => json({ query: "{ posts { nope } }" }, h), "", 400],
  ["malformed JSON", (h) => json("{", h), "", 400],
  ["a __proto__ key", (h) => json('{"query":"{ __typename }","__proto__":{"polluted":true}}', h), "", 400],
  ["an empty JSON body", (h) => json("", h), "", 400],
  [
    "a text/plain post (CSRF)",
    (h) => ({ method: "POST", headers: { "content-type": "text/plain", ...h }, body: "{}" }),
    "",
    400,
  ],
  [
    "a form post (CSRF)",
    (h) => ({
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...h },
      body: "query=x",
    }),
    "",
    400,
  ],
  ["a post without a body or content type", (h) => ({ method: "POST", headers: h }), "", 400],
  ["a body over the limit", (h) => json({ query: big }, h), "", 413],
  ["a subscription over POST", (h) => json({ query: "subscription { postCreated { id } }" }, h), "", 400],
  [
    "a query beside a subscription",
    (h) => json({ query: "query Q { __typename } subscription S { postCreated { id } }", operationName: "Q" }, h),
    "",
    200,
  ],
  ["a GET query", (h) => ({ headers: { "apollo-require-preflight": "1", ...h } }), "?query=%7B__typename%7D", 200],
  ["a GET without the CSRF header", (h) => ({ headers: h }), "?query=%7B__typename%7D", 400],
  [
    "a GET subscription",
    (h) => ({ headers: { "apollo-require-preflight": "1", ...h } }),
    "?query=subscription%7BpostCreated%7Bid%7D%7D",
    405,
  ],
  ["a junk token", (h) => json({ query: "{ me { id } }" }, { authorization: "Bearer junk", ...h }), "", 401],
  ["the landing page", (h) => ({ headers: { accept: "text/html", ...h } }), "", "landing page"],
  ["JSON null", (h) => json("null", h), "", 400],
  [
    "a HEAD request (Apollo's 405, no body)",
    (h) => ({ method: "HEAD", headers: { "apollo-require-preflight": "1", ...h } }),
    "?query=%7B__typename%7D",
    405,
  ],
];

/** With CORS_ORIGINS set, and in production without it (no CORS at all). */
const SETTINGS = [
  { name: "with CORS_ORIGINS", env: { CORS_ORIGINS: APP }, cors: true, landingPage: 200 },
  // Production serves no landing page: a GET without a query is only a CSRF-prevention refusal.
  { name: "without CORS_ORIGINS (production)", env: { NODE_ENV: "production" }, cors: false, landingPage: 400 },
] as const;

for (const setting of SETTINGS) {
  describe(`the GraphQL route answers alike with and without an Origin, ${setting.name} (sqlite)`, () => {
    const t = useTestApp("sqlite", { env: setting.env });
    for (const [name, init, search, status] of CASES) {
      it(`answers ${name} the same with and without an Origin`, async () => {
        const plain = await send(`${t.url}${search}`, init({}));
        const withOrigin = await send(`${t.url}${search}`, init({ origin: APP }));
        assert.equal(plain.status, status === "landing page" ? setting.landingPage : status, plain.text);
        assert.equal(withOrigin.headers.get("access-control-allow-origin"), setting.cors ? APP : null);
        assert.equal(plain.headers.get("access-control-allow-origin"), null);
        // Whether CORS headers come depends on the Origin whenever CORS is on: caches must know.
        assert.equal(plain.headers.get("vary"), setting.cors ? "Origin" : null);
        assert.deepEqual(comparable(plain), comparable(withOrigin));
        assert.match(plain.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
        assert.match(withOrigin.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
      });
    }

    it("sets the same refresh cookie in cookie mode with and without an Origin, and reads it back on refresh", async () => {
      await t.register("cookie-user");
      const login = (h: Record<string, string>) =>
        send(
          t.url,
          json(
            {
              query: LOGIN_WITH_COOKIE,
              variables: { i: { username: "cookie-user", password: PASSWORD, useCookie: true } },
            },
            h,
          ),
        );
      const direct = await login({});
      const withOrigin = await login({ origin: APP });
      assert.equal(direct.status, 200, direct.text);
      assert.deepEqual(comparable(direct), comparable(withOrigin));
      const cookie = direct.headers.get("set-cookie")!;
      assert.match(cookie, /^refresh-token=rt_[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Strict$/);
      const refreshed = await send(
        t.url,
        json({ query: "mutation { refreshToken { accessToken refreshToken } }" }, { cookie: cookie.split(";")[0]! }),
      );
      assert.equal(refreshed.status, 200, refreshed.text);
      assert.equal(refreshed.json.data.refreshToken.refreshToken, null, "the successor went into the cookie");
      assert.match(refreshed.headers.get("set-cookie") ?? "", /^refresh-token=rt_/);
    });
  });
}

describe("the GraphQL route's body reading (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { CORS_ORIGINS: APP } });

  it("treats a client that goes away mid-body as gone, not as a server error", async () => {
    const url = new URL(t.url);
    const before = t.logs.length;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST /graphql HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"query":`,
        );
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 100);
      });
      socket.on("error", reject);
    });
    const deadline = Date.now() + 2000;
    const aborted = () =>
      t.logs
        .slice(before)
        .some((line) => (JSON.parse(line) as { msg?: string }).msg === "request aborted by the client");
    while (!aborted() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(aborted(), "logged at debug as aborted");
    const errors = t.logs.slice(before).filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    assert.deepEqual(errors, []);
    assert.equal((await send(t.url, json({ query: "{ __typename }" }))).status, 200);
  });

  it("refuses a chunked body over the limit with 413 while reading it", async () => {
    const url = new URL(t.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      // No Content-Length: the limit can only be found while reading.
      for (let sent = 0; sent <= BODY_LIMIT_BYTES; sent += 64 * 1024) req.write(`${"x".repeat(64 * 1024)}`);
      req.end();
    });
    assert.equal(status, 413);
  });
});

describe("CORS on the GraphQL route (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { CORS_ORIGINS: APP } });
  const preflight = (headers: Record<string, string>) => send(t.url, { method: "OPTIONS", headers });

  it("answers a preflight from an allowed origin itself (204, logged with its request id), Apollo never seeing it", async () => {
    const before = t.logs.length;
    const res = await preflight({ origin: APP, "access-control-request-method": "POST" });
    assert.equal(res.status, 204);
    assert.equal(res.text, "");
    assert.equal(res.headers.get("access-control-allow-origin"), APP);
    assert.equal(res.headers.get("access-control-max-age"), "600");
    assert.equal(res.headers.get("vary"), "Origin");
    const id = res.headers.get("x-request-id");
    const lines = t.logs.slice(before).map((line) => JSON.parse(line) as { reqId?: string; msg?: string });
    assert.ok(lines.some((line) => line.reqId === id && line.msg === "incoming request"));
  });

  it("refuses an OPTIONS from an allowed origin that is no preflight (no Access-Control-Request-Method)", async () => {
    const res = await preflight({ origin: APP });
    assert.equal(res.status, 400);
    assert.equal(res.text, "Invalid Preflight Request");
    assert.equal(res.headers.get("content-type"), "text/plain");
    assert.equal(res.headers.get("access-control-allow-origin"), APP);
    assert.equal(res.headers.get("access-control-allow-methods"), null);
  });

  it("hands an OPTIONS without an allowed Origin to Apollo, whose CSRF prevention refuses it", async () => {
    const elsewhere = { origin: "https://elsewhere.example", "access-control-request-method": "POST" };
    for (const headers of [{}, elsewhere] as Array<Record<string, string>>) {
      const res = await preflight(headers);
      assert.equal(res.status, 400);
      assert.deepEqual(
        (res.json as { errors: Array<{ extensions: { code: string } }> }).errors.map((e) => e.extensions.code),
        ["BAD_REQUEST"],
      );
      assert.equal(res.headers.get("access-control-allow-origin"), null);
    }
  });
});

describe("one reading of a request for the GraphQL route and Fastify's routes (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { TRUST_PROXY: "127.0.0.1" } });

  it("logs the same forwarded client address, under the id each response carries", async () => {
    const forwarded = { "x-forwarded-for": "203.0.113.7" };
    const before = t.logs.length;
    const graphql = await send(t.url, json({ query: "{ __typename }" }, forwarded));
    const health = await send(`${originOf(t.url)}/healthz`, { headers: forwarded });
    const incoming = (id: string | null) =>
      t.logs
        .slice(before)
        .map((line) => JSON.parse(line) as { reqId?: string; msg?: string; req?: Record<string, unknown> })
        .find((line) => line.reqId === id && line.msg === "incoming request");
    assert.equal(incoming(graphql.headers.get("x-request-id"))?.req?.ip, "203.0.113.7");
    assert.equal(incoming(health.headers.get("x-request-id"))?.req?.ip, "203.0.113.7");
  });
});

describe("which requests the GraphQL route serves (Fastify has the rest)", () => {
  const request = (method: string, url: string) => ({ method, url });
  const cases: Array<[string, { method: string; url: string }, boolean]> = [
    ["POST /graphql", request("POST", "/graphql"), true],
    ["GET /graphql with a query string", request("GET", "/graphql?query=%7B__typename%7D"), true],
    ["OPTIONS /graphql (a CORS preflight)", request("OPTIONS", "/graphql"), true],
    ["HEAD /graphql (Apollo's 405)", request("HEAD", "/graphql"), true],
    ["PUT /graphql (Fastify's 404)", request("PUT", "/graphql"), false],
    ["/graphql/ with a trailing slash (Fastify's 404)", request("POST", "/graphql/"), false],
    ["/graphqlx", request("POST", "/graphqlx"), false],
    ["/graphiql", request("GET", "/graphiql"), false],
    ["/healthz", request("GET", "/healthz"), false],
  ];
  for (const [name, req, served] of cases) {
    it(`${served ? "serves" : "leaves to Fastify"} ${name}`, () => {
      assert.equal(isGraphqlRequest(req), served);
    });
  }
});
