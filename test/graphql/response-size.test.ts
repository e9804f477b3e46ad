import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { GraphQLError } from "graphql";

import { ErrorCode, RESPONSE_TOO_LARGE_MESSAGE, ResponseTooLargeError } from "../../src/errors.js";
import { createResultStringifier, jsonByteLength, limitEventSize } from "../../src/graphql/response-size.js";
import type { LimitName } from "../../src/metrics.js";
import { codes } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { connect, Feed, untilLive } from "../helpers/ws.js";

/** A metrics recorder that keeps the names of the limits reached. */
function recorder(): { reached: LimitName[]; limitReached(limit: LimitName): void } {
  const reached: LimitName[] = [];
  return { reached, limitReached: (limit) => reached.push(limit) };
}

describe("jsonByteLength", () => {
  const nullPrototype = Object.assign(Object.create(null) as object, { id: "1", n: 2 });
  const values: Array<[string, unknown]> = [
    ["plain ASCII", { data: { me: { id: "0b6f5c3e-2c1a-4d7e-9f10-1234567890ab" } } }],
    ["quotes, backslashes, tab, LF and CR", { s: 'a"b\\c\td\ne\rf' }],
    ["C0 controls, six bytes each", { s: "\u0001\u001f\u0000" }],
    ["Latin-1, CJK and emoji", { s: "é漢字😀❤\ufe0f" }],
    ["a lone surrogate", { s: "a\ud800b" }],
    ["keys that need escaping", { 'k"\u0001é': 1 }],
    ["numbers, non-finite ones as null", [0, -0, 1.5, -2e-7, 1e21, Number.NaN, Number.POSITIVE_INFINITY]],
    ["booleans and null", [true, false, null]],
    [
      "undefined, functions and symbols: left out of objects, null in arrays",
      {
        a: undefined,
        b: () => 1,
        c: Symbol("x"),
        d: [undefined, () => 1, Symbol("y")],
      },
    ],
    [
      "toJSON: a Date and a GraphQLError",
      { at: new Date(0), error: new GraphQLError("no", { extensions: { code: "X" } }) },
    ],
    ["an object without a prototype, as graphql-js builds them", { data: nullPrototype }],
    ["empty containers", { a: [], o: {}, s: "" }],
    ["nested lists", { data: { posts: Array.from({ length: 20 }, (_, i) => ({ id: String(i), title: `t${i}` })) } }],
  ];
  for (const [name, value] of values) {
    it(`counts the bytes JSON.stringify writes: ${name}`, () => {
      assert.equal(jsonByteLength(value), Buffer.byteLength(JSON.stringify(value)));
    });
  }

  it("stops counting once past the limit", () => {
    const big = { data: { posts: Array.from({ length: 1000 }, () => ({ body: "x".repeat(1000) })) } };
    const limited = jsonByteLength(big, 10_000);
    assert.ok(limited > 10_000 && limited < 12_100, `${limited}`);
    assert.equal(jsonByteLength(big), Buffer.byteLength(JSON.stringify(big)));
  });
});

describe("createResultStringifier (Apollo's stringifyResult)", () => {
  it("writes what Apollo's default writes when the answer fits, and counts nothing", () => {
    const metrics = recorder();
    const stringify = createResultStringifier(1024, metrics);
    const answer = { data: { me: { id: "u1" } } };
    assert.equal(stringify(answer), `${JSON.stringify(answer)}\n`);
    assert.deepEqual(metrics.reached, []);
  });

  it("throws RESPONSE_TOO_LARGE (HTTP 400) without building the text when the answer is larger, and counts it", () => {
    const metrics = recorder();
    const stringify = createResultStringifier(1024, metrics);
    const answer = { data: { post: { body: "\u0001".repeat(200) } } };
    // 200 characters, but 1,200 bytes once escaped.
    assert.throws(
      () => stringify(answer),
      (error: unknown) =>
        error instanceof ResponseTooLargeError &&
        error.extensions.code === ErrorCode.RESPONSE_TOO_LARGE &&
        (error.extensions.http as { status: number }).status === 400,
    );
    assert.deepEqual(metrics.reached, ["RESPONSE_MAX_BYTES"]);
    // An answer exactly at the limit (the newline included) goes out.
    const fits = { data: { s: "a".repeat(1024 - 1 - '{"data":{"s":""}}'.length) } };
    assert.equal(Buffer.byteLength(stringify(fits)), 1024);
  });

  it("never refuses a response without data, so the refusal itself always goes out", () => {
    const stringify = createResultStringifier(1024, recorder());
    const errors = { errors: [{ message: "x".repeat(5000) }] };
    assert.equal(stringify(errors), `${JSON.stringify(errors)}\n`);
  });

  it("measures a `{ me { id } }` answer in about the time JSON.stringify takes to write it (under a microsecond or so)", (t) => {
    const stringify = createResultStringifier(6 * 1024 * 1024, recorder());
    const answer = { data: { me: { id: "0b6f5c3e-2c1a-4d7e-9f10-1234567890ab" } } };
    const rounds = 200_000;
    const time = (run: () => void) => {
      const started = process.hrtime.bigint();
      for (let i = 0; i < rounds; i++) run();
      return Number(process.hrtime.bigint() - started) / rounds;
    };
    let sink = 0;
    // Warm both up, then time them alternately.
    for (let i = 0; i < 3; i++) {
      time(() => (sink += JSON.stringify(answer).length));
      time(() => (sink += stringify(answer).length));
    }
    const plain = time(() => (sink += JSON.stringify(answer).length));
    const bounded = time(() => (sink += stringify(answer).length));
    t.diagnostic(
      `JSON.stringify ${plain.toFixed(0)} ns, with the size walk ${bounded.toFixed(0)} ns per answer (${sink > 0})`,
    );
  });
});

describe("limitEventSize (graphql-ws's onNext)", () => {
  it("keeps an event that fits and replaces a larger one with one RESPONSE_TOO_LARGE error, counted", () => {
    const metrics = recorder();
    const small = { data: { postUpdated: { id: "p", body: "short" } } };
    assert.equal(limitEventSize(small, 1024, metrics), small);
    const large = { data: { postUpdated: { id: "p", body: "x".repeat(2000) } } };
    assert.deepEqual(limitEventSize(large, 1024, metrics), {
      errors: [{ message: RESPONSE_TOO_LARGE_MESSAGE, extensions: { code: "RESPONSE_TOO_LARGE" } }],
    });
    assert.deepEqual(metrics.reached, ["RESPONSE_MAX_BYTES"]);
  });
});

for (const kind of DATABASES) {
  describe(`answers over RESPONSE_MAX_BYTES (${kind})`, () => {
    const t = useTestApp(kind, { env: { RESPONSE_MAX_BYTES: "20000" } });

    const CREATE = `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`;

    it("refuses an HTTP answer over the limit with 400 RESPONSE_TOO_LARGE and a small body, and serves the next", async () => {
      const { token } = await t.register("wordy");
      for (let i = 0; i < 3; i++) {
        const res = await t.gql(CREATE, { token, variables: { input: { title: `p${i}`, body: "w".repeat(9000) } } });
        assert.deepEqual(codes(res), []);
      }
      const res = await t.gql(`{ posts(first: 3) { body } }`);
      assert.equal(res.status, 400);
      assert.deepEqual(res.body, {
        errors: [{ message: RESPONSE_TOO_LARGE_MESSAGE, extensions: { code: "RESPONSE_TOO_LARGE" } }],
      });
      const fits = await t.gql(`{ posts(first: 2) { body } }`);
      assert.equal(fits.status, 200);
      assert.equal(fits.body.data.posts.length, 2);
      assert.match(await t.app.metrics.text(), /gta_limit_refusals_total\{limit="RESPONSE_MAX_BYTES"\} 1\b/);
    });

    it("replaces a WebSocket event over the limit with a RESPONSE_TOO_LARGE error and keeps the subscription", async () => {
      const { token } = await t.register("updater");
      const created = await t.gql(CREATE, { token, variables: { input: { title: "live", body: "short" } } });
      const id = created.body.data.createPost.id as string;
      const update = (body: string) =>
        t.gql(`mutation($id: ID!, $body: String!) { updatePost(id: $id, input: { body: $body }) { id } }`, {
          token,
          variables: { id, body },
        });
      const ws = connect(t.url);
      try {
        await ws.connected;
        const feed = new Feed(ws.client, {
          query: `subscription($id: ID!) { postUpdated(id: $id) { id body } }`,
          variables: { id },
        });
        await untilLive(feed, () => update("short again"));
        const before = feed.results.length;
        assert.deepEqual(codes(await update("b".repeat(19_990))), []);
        await update("small");
        await feed.until((f) => f.results.length >= before + 2);
        assert.deepEqual(feed.results.slice(before), [
          { errors: [{ message: RESPONSE_TOO_LARGE_MESSAGE, extensions: { code: "RESPONSE_TOO_LARGE" } }] },
          { data: { postUpdated: { id, body: "small" } } },
        ]);
      } finally {
        await ws.client.dispose();
      }
    });
  });
}
