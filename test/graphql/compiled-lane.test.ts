// The compiled lane (src/graphql/compiled-lane.ts): on a small schema beside an Apollo Server built
// with the same shared pieces (so every answer can be compared with Apollo's own), then on the app
// over HTTP, with the lane on and off.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { type ApolloServer, HeaderMap } from "@apollo/server";
import {
  buildSchema,
  type GraphQLFieldResolver,
  type GraphQLSchema,
  type OperationDefinitionNode,
  parse,
} from "graphql";
import pino from "pino";

import type { Context } from "../../src/access/principal.js";
import { createApolloServer, createGraphqlShared } from "../../src/graphql/apollo.js";
import { type CompiledLane, createCompiledLane } from "../../src/graphql/compiled-lane.js";
import { LaneCache } from "../../src/graphql/compiled-lane-cache.js";
import { loadConfig } from "../../src/load-config.js";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { useTestApp } from "../helpers/app.js";

const SDL = `type Query { hello: String, down: String!, big: String, boom: String, missing: String!, echo(n: Int!): Int, many(n: Int): [Int], firsts(first: Int): [Int] }
type Mutation { poke: String }`;

function smallSchema(): GraphQLSchema {
  const schema = buildSchema(SDL);
  const resolvers: Record<string, GraphQLFieldResolver<unknown, Context, { n?: number }>> = {
    hello: () => "world",
    down: () => {
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    },
    big: () => "x".repeat(30_000),
    boom: () => {
      throw new Error("a bug");
    },
    missing: () => null,
    echo: (_source, args) => args.n,
    many: (_source, args) => Array.from({ length: args.n ?? 1 }, (_, i) => i),
    firsts: (_source, args) => Array.from({ length: (args as { first?: number }).first ?? 1 }, (_, i) => i),
  };
  const fields = schema.getQueryType()!.getFields();
  for (const [name, resolve] of Object.entries(resolvers))
    fields[name]!.resolve = resolve as GraphQLFieldResolver<unknown, unknown>;
  schema.getMutationType()!.getFields().poke!.resolve = () => "poked";
  return schema;
}

const CONTEXT: Context = { principal: null, requestId: "req-1", ip: "127.0.0.1", userAgent: undefined };

/** A POST as the route hands it over. */
function post(body: unknown, headers: Record<string, string> = {}) {
  return { method: "POST", headers: { "content-type": "application/json", ...headers }, body };
}

function counted(text: string, result: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`gta_compiled_lane_total{result="${result}"}`));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

describe("the compiled lane beside Apollo, on a small schema", () => {
  let dir: string;
  let apollo: ApolloServer<Context>;
  let lane: CompiledLane;
  let metrics: Metrics;
  let shared: ReturnType<typeof createGraphqlShared>;
  const cache = new LaneCache(3, 10_000);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "lane-"));
    const config = loadConfig(
      { NODE_ENV: "development", DATA_DIR: dir, RESPONSE_MAX_BYTES: "20000", QUERY_MAX_COST: "50" },
      dir,
    );
    const schema = smallSchema();
    const logger = pino({ level: "silent" });
    metrics = createMetrics({ defaultMetrics: false });
    shared = createGraphqlShared(config, logger, metrics);
    lane = createCompiledLane({ schema, shared, metrics, cache });
    apollo = await createApolloServer(schema, config, logger, metrics, undefined, undefined, {
      shared,
      plugins: [lane.plugin],
    });
  });
  after(async () => {
    await apollo.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Apollo's answer to `request` (status, headers, body), registering its document in the lane. */
  async function viaApollo(request: ReturnType<typeof post>, context: Context = CONTEXT) {
    const headers = new HeaderMap(Object.entries(request.headers));
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: request.method, headers, search: "", body: request.body },
      context: async () => context,
    });
    assert.equal(response.body.kind, "complete");
    const body = response.body.kind === "complete" ? response.body.string : "";
    return { status: response.status ?? 200, headers: [...response.headers].sort(), body: stripFrames(body) };
  }
  async function viaLane(request: ReturnType<typeof post>, context: Context = CONTEXT) {
    const answer = await lane.serve({ ...request, context: async () => context });
    if (!answer) return undefined;
    return { status: answer.status, headers: [...answer.headers].sort(), body: stripFrames(answer.body) };
  }

  it("serves a document Apollo ran once, with Apollo's answer, and counts it", async () => {
    const request = post({ query: "{ hello }" });
    const before = counted(await metrics.text(), "served");
    assert.equal(await viaLane(request), undefined, "a first-time document is Apollo's");
    const apollo = await viaApollo(request);
    assert.deepEqual(await viaLane(request), apollo);
    assert.deepEqual(apollo, {
      status: 200,
      headers: [["content-type", "application/json; charset=utf-8"]],
      body: '{"data":{"hello":"world"}}\n',
    });
    assert.equal(counted(await metrics.text(), "served"), before + 1);
  });

  it("answers errors exactly as Apollo: an outage 503 with Retry-After, a masked bug, a null in a non-null field, a too-large answer", async () => {
    for (const query of ["{ down }", "{ boom }", "{ missing }", "{ big }", "{ hello down }"]) {
      const request = post({ query });
      const apollo = await viaApollo(request);
      assert.deepEqual(await viaLane(request), apollo, query);
    }
    const outage = await viaApollo(post({ query: "{ down }" }));
    assert.equal(outage.status, 503);
    assert.ok(outage.headers.some(([name, value]) => name === "retry-after" && /^\d+$/.test(value)));
    assert.match(outage.body, /SERVICE_UNAVAILABLE/);
    const tooLarge = await viaApollo(post({ query: "{ big }" }));
    assert.equal(tooLarge.status, 400);
    assert.match(tooLarge.body, /RESPONSE_TOO_LARGE/);
  });

  it("hands over a variables error, a GET, an Accept it cannot answer, a persisted query, another key, an MFA-pending session", async () => {
    const echo = "query($n: Int!) { echo(n: $n) }";
    await viaApollo(post({ query: echo, variables: { n: 1 } }));
    assert.equal((await viaLane(post({ query: echo, variables: { n: 2 } })))?.body, '{"data":{"echo":2}}\n');
    const refused = [
      post({ query: echo, variables: { n: "two" } }),
      post({ query: echo, variables: {} }),
      { ...post({ query: echo, variables: { n: 1 } }), method: "GET" },
      post({ query: echo, variables: { n: 1 } }, { accept: "text/html" }),
      post({ query: echo, variables: { n: 1 }, extensions: { persistedQuery: { version: 1, sha256Hash: "x" } } }),
      post({ query: echo, variables: { n: 1 }, documentId: "x" }),
      post({ query: echo, variables: { n: 1 } }, { "content-type": "text/plain" }),
    ];
    for (const request of refused) assert.equal(await viaLane(request), undefined, JSON.stringify(request));
    const pending: Context = {
      ...CONTEXT,
      principal: {
        kind: "session",
        userId: "u",
        roles: [],
        sessionId: "s",
        tokenId: "t",
        fresh: false,
        aal: 1,
        amr: ["pwd"],
        mfaPending: true,
      },
    };
    assert.equal(await viaLane(post({ query: echo, variables: { n: 1 } }), pending), undefined);
    // An Accept it can answer is negotiated as Apollo does.
    const graphqlJson = post({ query: echo, variables: { n: 1 } }, { accept: "application/graphql-response+json" });
    assert.deepEqual(await viaLane(graphqlJson), await viaApollo(graphqlJson));
  });

  it("hands over while the in-flight budget has no room at once, and never takes a mutation", async () => {
    const many = "query($n: Int) { many(n: $n) }";
    await viaApollo(post({ query: many, variables: { n: 2 } }));
    const { inFlight } = shared.rules.cost;
    const release = inFlight.tryAcquire(inFlight.budget, "10.0.0.9");
    assert.ok(release, "the whole budget taken by another client");
    assert.equal(await viaLane(post({ query: many, variables: { n: 2 } })), undefined);
    release();
    assert.equal((await viaLane(post({ query: many, variables: { n: 2 } })))?.body, '{"data":{"many":[0,1]}}\n');
    assert.equal(inFlight.held, 0, "the lane gave its cost back");
    await viaApollo(post({ query: "mutation { poke }" }));
    assert.equal(await viaLane(post({ query: "mutation { poke }" })), undefined);
  });

  it("prices a document without variables once and still holds its cost in flight; one with variables each time", async () => {
    const fixed = post({ query: "{ firsts(first: 3) }" });
    await viaApollo(fixed);
    const { inFlight } = shared.rules.cost;
    for (let i = 0; i < 3; i++) assert.equal((await viaLane(fixed))?.body, '{"data":{"firsts":[0,1,2]}}\n');
    const release = inFlight.tryAcquire(inFlight.budget, "10.0.0.9");
    assert.ok(release, "the whole budget taken by another client");
    assert.equal(await viaLane(fixed), undefined, "its remembered cost still has to fit");
    release();
    assert.equal((await viaLane(fixed))?.body, '{"data":{"firsts":[0,1,2]}}\n');
    assert.equal(inFlight.held, 0, "the lane gave its cost back");

    const firsts = "query($n: Int) { firsts(first: $n) }";
    await viaApollo(post({ query: firsts, variables: { n: 2 } }));
    assert.equal((await viaLane(post({ query: firsts, variables: { n: 3 } })))?.body, '{"data":{"firsts":[0,1,2]}}\n');
    const tooCostly = post({ query: firsts, variables: { n: 60 } });
    assert.equal(await viaLane(tooCostly), undefined, "over QUERY_MAX_COST with these variables: Apollo's");
    const refusal = await viaApollo(tooCostly);
    assert.equal(refusal.status, 400);
    assert.match(refusal.body, /Query Cost limit of 50 exceeded, found 60/);
    assert.equal((await viaLane(post({ query: firsts, variables: { n: 1 } })))?.body, '{"data":{"firsts":[0]}}\n');
  });

  it("answers each Accept as Apollo does, however they alternate, and keeps handing over one it cannot answer", async () => {
    const query = "{ accepted: hello }";
    await viaApollo(post({ query }));
    const accepts = [
      "application/graphql-response+json",
      undefined,
      "application/json",
      "text/html",
      "application/json;q=0.5, application/graphql-response+json",
      "application/graphql-response+json",
      "text/html",
      "*/*",
    ];
    for (const accept of accepts) {
      const request = post({ query }, accept === undefined ? {} : { accept });
      const lanes = await viaLane(request);
      if (accept === "text/html") assert.equal(lanes, undefined, "Apollo answers 406 itself");
      else assert.deepEqual(lanes, await viaApollo(request), String(accept));
    }
  });

  it("holds at most its bound of documents, the least recently used dropped first", async () => {
    for (const query of ["{ a: hello }", "{ b: hello }", "{ c: hello }", "{ d: hello }"])
      await viaApollo(post({ query }));
    assert.equal(lane.size.documents, 3);
    assert.equal(await viaLane(post({ query: "{ a: hello }" })), undefined, "the oldest was dropped");
    assert.ok(await viaLane(post({ query: "{ d: hello }" })));
    // A document served is used: the one left unused is dropped next, not the oldest registered.
    assert.ok(await viaLane(post({ query: "{ b: hello }" })));
    await viaApollo(post({ query: "{ e: hello }" }));
    assert.ok(await viaLane(post({ query: "{ b: hello }" })), "served recently, kept");
    assert.equal(await viaLane(post({ query: "{ c: hello }" })), undefined, "unused longest, dropped");
    assert.ok(await viaLane(post({ query: "{ d: hello }" })));
    assert.ok(await viaLane(post({ query: "{ e: hello }" })));
  });

  it("drops the least recently used documents to stay within its bytes, and keeps none heavier than the bound", () => {
    const documents = new LaneCache(10, 100);
    const entry = (bytes: number) => ({ ...parseEntry("{ hello }"), bytes });
    documents.set("a", entry(40));
    documents.set("b", entry(40));
    assert.ok(documents.get("a"));
    documents.set("c", entry(40));
    assert.deepEqual(documents.size, { documents: 2, bytes: 80 });
    assert.equal(documents.get("b"), undefined, "the least recently used went");
    assert.ok(documents.get("a") && documents.get("c"));
    documents.set("d", entry(101));
    assert.equal(documents.get("d"), undefined);
    assert.deepEqual(documents.size, { documents: 2, bytes: 80 });
    documents.set("a", entry(10));
    assert.deepEqual(documents.size, { documents: 2, bytes: 50 }, "a key set again replaces its entry");
  });
});

function parseEntry(query: string) {
  const document = parse(query);
  return { document, operation: document.definitions[0] as OperationDefinitionNode };
}

describe("the compiled lane over HTTP, answering as Apollo does with the lane off", () => {
  const on = useTestApp("sqlite");
  const off = useTestApp("sqlite", { env: { GRAPHQL_COMPILED_LANE: "false" } });
  const served = async () => counted(await on.app.metrics.text(), "served");

  it("answers me, UNAUTHENTICATED without a token and FORBIDDEN users to a non-admin as Apollo does", async () => {
    const alice = await on.register("alice");
    const bob = await off.register("alice");
    for (const [query, withToken] of [
      ["{ me { username roles } }", true],
      ["{ me { id } }", false],
      ["{ users { id } }", true],
    ] as const) {
      const first = await on.gql(query, withToken ? { token: alice.token } : {});
      const start = await served();
      const second = await on.gql(query, withToken ? { token: alice.token } : {});
      assert.equal(await served(), start + 1, `${query} took the lane the second time`);
      const apollo = await off.gql(query, withToken ? { token: bob.token } : {});
      assert.deepEqual([second.status, second.body], [first.status, first.body]);
      assert.deepEqual(
        [second.status, JSON.stringify(second.body).replace(/"id":"[^"]+"/g, "")],
        [apollo.status, JSON.stringify(apollo.body).replace(/"id":"[^"]+"/g, "")],
      );
    }
  });

  it("never serves a mutation", async () => {
    const start = await served();
    for (let i = 0; i < 2; i++) await on.gql("mutation { logout }", {});
    assert.equal(await served(), start);
  });
});

/** Stack traces compared by their first line (docs/performance.md, "Compiled lane"). */
function stripFrames(body: string): string {
  if (!body.includes('"stacktrace"')) return body;
  return JSON.stringify(JSON.parse(body), (key, value: unknown) =>
    key === "stacktrace" && Array.isArray(value) ? value.slice(0, 1) : value,
  );
}
