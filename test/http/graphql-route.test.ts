// GET and POST /graphql are served by the route of src/http/graphql-route.ts on node:http, in
// front of Fastify; Fastify's own /graphql route still serves what needs its plugins (with
// CORS_ORIGINS set, a request that carries an Origin). Both must answer alike. With an allowed
// Origin on one request and none on the other, each request below goes once through each route,
// and everything but the CORS headers must be the same: status, body and every other header.
import assert from "node:assert/strict";
import { type IncomingMessage, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, it } from "node:test";

import { type GraphqlRouteDeps, createGraphqlRoute } from "../../src/http/graphql-route.js";
import { BODY_LIMIT_BYTES } from "../../src/http/server.js";
import { PASSWORD } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { type RawResponse, send } from "../helpers/http.js";

const APP = "https://app.example";
/** Headers that differ per request, or that only the CORS plugin sets. */
const PER_REQUEST = new Set(["date", "x-request-id", "keep-alive", "connection", "vary"]);

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

describe("the GraphQL route on node:http and Fastify's /graphql route answer alike (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { CORS_ORIGINS: APP } });
  const big = "x".repeat(BODY_LIMIT_BYTES + 1);
  const cases: Array<[string, (extra: Record<string, string>) => RequestInit, string?]> = [
    ["a query", (h) => json({ query: "{ posts { id } }" }, h)],
    ["a validation error", (h) => json({ query: "{ posts { nope } }" }, h)],
    ["malformed JSON", (h) => json("{", h)],
    ["a __proto__ key", (h) => json('{"query":"{ __typename }","__proto__":{"polluted":true}}', h)],
    ["an empty JSON body", (h) => json("", h)],
    [
      "a text/plain post (CSRF)",
      (h) => ({ method: "POST", headers: { "content-type": "text/plain", ...h }, body: "{}" }),
    ],
    [
      "a form post (CSRF)",
      (h) => ({
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...h },
        body: "query=x",
      }),
    ],
    ["a post without a body or content type", (h) => ({ method: "POST", headers: h })],
    ["a body over the limit", (h) => json({ query: big }, h)],
    ["a subscription over POST", (h) => json({ query: "subscription { postCreated { id } }" }, h)],
    [
      "a query beside a subscription",
      (h) => json({ query: "query Q { __typename } subscription S { postCreated { id } }", operationName: "Q" }, h),
    ],
    ["a GET query", (h) => ({ headers: { "apollo-require-preflight": "1", ...h } }), "?query=%7B__typename%7D"],
    ["a GET without the CSRF header", (h) => ({ headers: h }), "?query=%7B__typename%7D"],
    [
      "a GET subscription",
      (h) => ({ headers: { "apollo-require-preflight": "1", ...h } }),
      "?query=subscription%7BpostCreated%7Bid%7D%7D",
    ],
    ["a junk token", (h) => json({ query: "{ me { id } }" }, { authorization: "Bearer junk", ...h })],
    ["the landing page", (h) => ({ headers: { accept: "text/html", ...h } })],
    ["JSON null", (h) => json("null", h)],
  ];
  for (const [name, init, search = ""] of cases) {
    it(`answers ${name} the same on both routes`, async () => {
      const direct = await send(`${t.url}${search}`, init({}));
      const viaFastify = await send(`${t.url}${search}`, init({ origin: APP }));
      assert.equal(viaFastify.headers.get("access-control-allow-origin"), APP, "Fastify's CORS plugin answered");
      assert.equal(direct.headers.get("access-control-allow-origin"), null);
      assert.deepEqual(comparable(direct), comparable(viaFastify));
      assert.match(direct.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    });
  }

  it("sets the same refresh cookie in cookie mode, and reads it back on refresh", async () => {
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
    const viaFastify = await login({ origin: APP });
    assert.equal(direct.status, 200, direct.text);
    assert.deepEqual(comparable(direct), comparable(viaFastify));
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

describe("which requests the node:http route takes from Fastify", () => {
  // takes() reads only the method, the URL and the Origin header; the rest of the route is not built.
  const route = createGraphqlRoute({ securityHeaders: {} } as unknown as GraphqlRouteDeps);
  const request = (method: string, url: string, headers: Record<string, string> = {}) =>
    ({ method, url, headers }) as IncomingMessage;
  const cases: Array<[string, IncomingMessage, boolean, boolean]> = [
    ["POST /graphql", request("POST", "/graphql"), false, true],
    ["GET /graphql with a query string", request("GET", "/graphql?query=%7B__typename%7D"), false, true],
    ["OPTIONS /graphql (a CORS preflight)", request("OPTIONS", "/graphql"), false, false],
    ["HEAD /graphql", request("HEAD", "/graphql"), false, false],
    ["PUT /graphql", request("PUT", "/graphql"), false, false],
    ["/graphql/ with a trailing slash (Fastify's 404)", request("POST", "/graphql/"), false, false],
    ["/graphqlx", request("POST", "/graphqlx"), false, false],
    ["/graphiql", request("GET", "/graphiql"), false, false],
    ["/healthz", request("GET", "/healthz"), false, false],
    ["a POST with an Origin, CORS_ORIGINS unset", request("POST", "/graphql", { origin: APP }), false, true],
    ["a POST with an Origin, CORS_ORIGINS set", request("POST", "/graphql", { origin: APP }), true, false],
    ["a POST without an Origin, CORS_ORIGINS set", request("POST", "/graphql"), true, true],
  ];
  for (const [name, req, cors, taken] of cases) {
    it(`${taken ? "takes" : "leaves to Fastify"} ${name}`, () => {
      assert.equal(route.takes(req, cors), taken);
    });
  }
});
