import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { getIntrospectionQuery } from "graphql";

import { createErrorFormatter } from "../../src/graphql/format-error.js";
import { codes, type GraphQLResponse, listUsernames } from "../helpers/api.js";
import { startTestApp, useTestApp } from "../helpers/app.js";
import { send } from "../helpers/http.js";

const ADMIN = { username: "root", password: "root password 1" };

/**
 * A query whose deepest path has `depth` fields, counted as the limit counts them (the leaf
 * included): `posts(first: 1) { author { posts(first: 1) { … { id } } } }`. One post per list, so
 * that only its depth, never its cost, can refuse it.
 */
function nested(depth: number): string {
  let selection = "id";
  for (let level = depth - 1; level >= 1; level--)
    selection = `${level % 2 === 1 ? "posts(first: 1)" : "author"} { ${selection} }`;
  return `{ ${selection} }`;
}

/** `count` copies of `make(i)`, separated by spaces. */
function repeat(count: number, make: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => make(i)).join(" ");
}

/** `{ __typename __typename … }`: exactly `tokens` tokens (the braces count too). */
function ofTokens(tokens: number): string {
  return `{ ${repeat(tokens - 2, () => "__typename")} }`;
}

// `first` posts, each with its author and that author's 20 newest posts (User.posts' default) with
// their authors: no aliases, no directives, 5 levels deep, 37 tokens. Objects cost 2, scalars 1,
// a body 20, and a list its `first` times its selection: a post's own fields 1 + 1 + 20 + 1 + 1 = 24,
// an inner author 2 + 4 = 6, the author's posts 20 × (2 + 24 + 6) = 640, the author 2 + 4 + 640 =
// 646, so first × (2 + 24 + 646) = 672 × first.
const COSTLY = (first: number) =>
  `{ posts(first: ${first}) { id title body createdAt updatedAt author { id username roles createdAt ` +
  `posts { id title body createdAt updatedAt author { id username roles createdAt } } } } }`;

/** Refused before anything ran: HTTP 400, one GRAPHQL_VALIDATION_FAILED error, no data. */
function assertRefused(res: GraphQLResponse): string {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED"]);
  assert.equal(res.body.data, undefined);
  return res.body.errors![0]!.message;
}

/** Refused in production: the one generic message, no number (limit or count) and no location anywhere. */
function assertRefusedQuietly(res: GraphQLResponse): void {
  assert.equal(assertRefused(res), "Query is too complex.");
  assert.doesNotMatch(JSON.stringify(res.body), /\d/);
}

describe("the error formatter and the parser's token limit", () => {
  const unexpected = () => assert.fail("a token-limit error is expected, not reported");
  const parseFailed = (message: string) => ({
    message,
    locations: [{ line: 1, column: 2993 }],
    extensions: { code: "GRAPHQL_PARSE_FAILED" },
  });

  it("turns graphql-js's token-limit syntax error, in either spelling, into GRAPHQL_VALIDATION_FAILED without a location", () => {
    const production = createErrorFormatter({ revealInternals: false, report: unexpected });
    const development = createErrorFormatter({ revealInternals: true, report: unexpected });
    // graphql 16 writes "more that"; the spelling may be fixed in a later release.
    for (const word of ["that", "than"]) {
      const error = parseFailed(`Syntax Error: Document contains more ${word} 500 tokens. Parsing aborted.`);
      assert.deepEqual(production(error, undefined), {
        message: "Query is too complex.",
        extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
      });
      assert.deepEqual(development(error, undefined), {
        message: "Token limit of 500 exceeded.",
        extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
      });
    }
  });

  it("leaves every other syntax error as GRAPHQL_PARSE_FAILED", () => {
    const production = createErrorFormatter({ revealInternals: false, report: unexpected });
    const error = parseFailed(
      `Syntax Error: Expected Name, found "Document contains more that 500 tokens. Parsing aborted.".`,
    );
    assert.deepEqual(production(error, undefined), error);
  });
});

describe("query limits in production, with the default limits (sqlite)", () => {
  const t = useTestApp("sqlite", {
    env: { NODE_ENV: "production", ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
  });
  let adminToken: string;

  before(async () => {
    adminToken = await t.login(ADMIN.username, ADMIN.password);
  });

  const usernames = async () => (await listUsernames(t, adminToken)).sort();

  describe("refuses attacks with 400 GRAPHQL_VALIDATION_FAILED and 'Query is too complex.', naming no limit", () => {
    it("a query nested 12 deep", async () => {
      assertRefusedQuietly(await t.gql(nested(12)));
    });

    it("one field repeated 600 times", async () => {
      assertRefusedQuietly(await t.gql(`{ posts { ${repeat(600, () => "title")} } }`));
      assertRefusedQuietly(await t.gql(`{ ${repeat(600, () => "__typename")} }`));
    });

    it("600 aliases", async () => {
      assertRefusedQuietly(await t.gql(`{ ${repeat(600, (i) => `a${i}: __typename`)} }`));
      assertRefusedQuietly(await t.gql(`{ ${repeat(600, (i) => `p${i}: posts(first: 1) { id }`)} }`));
    });

    it("300 directives", async () => {
      assertRefusedQuietly(await t.gql(`{ __typename ${repeat(300, () => "@include(if: true)")} }`));
      assertRefusedQuietly(await t.gql(`{ ${repeat(300, () => "__typename @skip(if: false)")} }`));
    });

    it("a document of 50,000 tokens", async () => {
      assertRefusedQuietly(await t.gql(ofTokens(50_000)));
    });

    it("a costly query: 100 posts with their authors' posts and those posts' authors", async () => {
      assertRefusedQuietly(await t.gql(COSTLY(100)));
    });
  });

  describe("draws each line just past the default", () => {
    it("runs a query 10 deep and refuses one 11 deep", async () => {
      const ten = await t.gql(nested(10));
      assert.equal(ten.status, 200);
      assert.deepEqual(ten.body, { data: { posts: [] } });
      assertRefusedQuietly(await t.gql(nested(11)));
    });

    it("runs 15 aliases and refuses 16", async () => {
      const fifteen = await t.gql(`{ ${repeat(15, (i) => `p${i}: posts(first: 1) { id }`)} }`);
      assert.equal(fifteen.status, 200);
      assert.deepEqual(codes(fifteen), []);
      assertRefusedQuietly(await t.gql(`{ ${repeat(16, (i) => `p${i}: posts(first: 1) { id }`)} }`));
    });

    it("runs 50 directives and refuses 51", async () => {
      const fifty = await t.gql(`{ ${repeat(50, () => "__typename @include(if: true)")} }`);
      assert.equal(fifty.status, 200);
      assert.deepEqual(fifty.body, { data: { __typename: "Query" } });
      assertRefusedQuietly(await t.gql(`{ ${repeat(51, () => "__typename @include(if: true)")} }`));
    });

    it("runs a document of 500 tokens and refuses one of 501", async () => {
      const fiveHundred = await t.gql(ofTokens(500));
      assert.equal(fiveHundred.status, 200);
      assert.deepEqual(fiveHundred.body, { data: { __typename: "Query" } });
      assertRefusedQuietly(await t.gql(ofTokens(501)));
    });

    // Each post costs 2 + 24 (its body 20) + its author's 2 + 4 + 20 × (2 + 24 + 2 + 4) = 672.
    it("runs the costly query's shape for 17 posts (cost 11,424) and refuses it for 18 (cost 12,096)", async () => {
      const res = await t.gql(COSTLY(17));
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { posts: [] } });
      assertRefusedQuietly(await t.gql(COSTLY(18)));
    });
  });

  it("refuses 16 aliased register mutations before any of them runs: no user is created", async () => {
    const before = await usernames();
    const res = await t.gql(
      `mutation { ${repeat(16, (i) => `r${i}: register(input: { username: "alias${i}", password: "correct horse battery" }) { accessToken }`)} }`,
    );
    // Two validation rules refuse it: the alias limit and the one-auth-field-per-operation rule.
    assert.equal(res.status, 400);
    assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_VALIDATION_FAILED"]);
    assert.ok(res.body.errors!.some((e) => e.message === "Query is too complex."));
    assert.equal(res.body.data, undefined);
    assert.deepEqual(await usernames(), before);
  });

  it("refuses a too-deep query sent over GET the same way", async () => {
    const res = await send(`${t.url}?query=${encodeURIComponent(nested(12))}`, {
      headers: { "apollo-require-preflight": "true" },
    });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json, {
      errors: [{ message: "Query is too complex.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }],
    });
  });

  it("runs what a real client sends: the whole flow of test/flow.test.ts, with fragments and variables", async () => {
    const ok = (res: GraphQLResponse) => {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(codes(res), []);
      return res.body.data;
    };
    const registered = ok(
      await t.gql(
        `mutation { register(input: { username: "Alice", password: "correct horse battery" }) { accessToken refreshToken tokenType expiresIn user { id username roles } } }`,
      ),
    ).register;
    const alice = registered.accessToken as string;
    ok(
      await t.gql(
        `mutation { login(input: { username: "aLiCe", password: "correct horse battery" }) { accessToken user { id } } }`,
      ),
    );
    ok(await t.gql(`{ me { id username roles posts { id } } }`, { token: alice }));
    const postId = ok(
      await t.gql(
        `mutation { createPost(input: { title: "Hello", body: "First post" }) { id title body author { id } } }`,
        { token: alice },
      ),
    ).createPost.id;
    ok(await t.gql(`{ posts { id title author { username } } post(id: "${postId}") { body } }`));
    ok(
      await t.gql(
        `mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id title updatedAt } }`,
        {
          token: alice,
          variables: { id: postId, input: { title: "Hello again" } },
        },
      ),
    );
    ok(await t.gql(`{ users { username } }`, { token: adminToken }));
    ok(
      await t.gql(`mutation { setUserRoles(userId: "${registered.user.id}", roles: [ADMIN, USER]) { roles } }`, {
        token: adminToken,
      }),
    );
    ok(
      await t.gql(`mutation { refreshToken(refreshToken: "${registered.refreshToken}") { accessToken refreshToken } }`),
    );
    ok(await t.gql(`{ sessions { id createdAt lastUsedAt expiresAt userAgent ip current } }`, { token: alice }));

    // Apollo Client's style: a named operation, fragments, __typename on every object. A page of 100
    // posts, each with its author's 3 newest, bodies (20 each) and all:
    // 100 × (2 + 25 + (2 + 5 + 3 × (2 + 25 + 1) + 1) + 1) = 12,000, the default QUERY_MAX_COST.
    const feed = ok(
      await t.gql(
        `query Feed($first: Int!, $more: Int) { posts(first: $first) { ...PostCard author { ...Author posts(first: $more) { ...PostCard __typename } __typename } __typename } }
         fragment PostCard on Post { id title body createdAt updatedAt __typename }
         fragment Author on User { id username roles createdAt __typename }`,
        { variables: { first: 100, more: 3 } },
      ),
    );
    assert.equal(feed.posts.length, 1);
    assert.equal(feed.posts[0].author.posts[0].id, postId);
  });
});

describe("query limits in development (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "development" } });

  it("answers Apollo Sandbox's full introspection query (every option on), whose type references nest 9 deep", async () => {
    const query = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
      oneOf: true,
    });
    const res = await t.gql(query);
    assert.equal(res.status, 200);
    assert.deepEqual(codes(res), []);
    assert.equal(res.body.data.__schema.queryType.name, "Query");
    assert.ok(res.body.data.__schema.types.some((type: { name: string }) => type.name === "AuthPayload"));
  });

  it("says which limit a query broke, with the numbers, for the developer", async () => {
    const cases: Array<[string, string]> = [
      [nested(12), "Query depth limit of 10 exceeded, found 12."],
      [`{ ${repeat(16, (i) => `p${i}: posts(first: 1) { id }`)} }`, "Aliases limit of 15 exceeded, found 16."],
      [`{ ${repeat(51, () => "__typename @include(if: true)")} }`, "Directives limit of 50 exceeded, found 51."],
      [ofTokens(501), "Token limit of 500 exceeded."],
      [`{ ${repeat(600, () => "__typename")} }`, "Token limit of 500 exceeded."],
      [COSTLY(100), "Query Cost limit of 12000 exceeded, found 67200."],
    ];
    for (const [query, message] of cases) assert.equal(assertRefused(await t.gql(query)), message);
  });

  /** Answered: HTTP 200 and no error at all. */
  const assertRan = (res: GraphQLResponse) => {
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(codes(res), []);
  };
  // Each author's posts with an id, a title and a body (1 + 1 + 20): an author costs 2 + first × 24, a
  // post 2 more than that.
  const AUTHORS_POSTS = `posts { id title body }`;

  it("counts a list without first as its schema default: 50 posts × 20 of each author's", async () => {
    // 50 × (2 + 2 + 20 × 24) = 24,200, exactly what the same query costs with the defaults written out.
    assert.equal(
      assertRefused(await t.gql(`{ posts { author { ${AUTHORS_POSTS} } } }`)),
      "Query Cost limit of 12000 exceeded, found 24200.",
    );
    assert.equal(
      assertRefused(await t.gql(`{ posts(first: 50) { author { posts(first: 20) { id title body } } } }`)),
      "Query Cost limit of 12000 exceeded, found 24200.",
    );
    // 24 posts: 11,616.
    assertRan(await t.gql(`{ posts(first: 24) { author { ${AUTHORS_POSTS} } } }`));
  });

  it("counts a literal first: 10 × (2 + 2 + 50 × 24) = 12,040 is refused, 49 of each author's (11,800) runs", async () => {
    assert.equal(
      assertRefused(await t.gql(`{ posts(first: 10) { author { posts(first: 50) { id title body } } } }`)),
      "Query Cost limit of 12000 exceeded, found 12040.",
    );
    assertRan(await t.gql(`{ posts(first: 10) { author { posts(first: 49) { id title body } } } }`));
  });

  it("counts first given as a variable, per request: one document is refused or run by its variables alone", async () => {
    const query = `query($n: Int!, $m: Int) { posts(first: $n) { author { posts(first: $m) { id title body } } } }`;
    assert.equal(
      assertRefused(await t.gql(query, { variables: { n: 10, m: 50 } })),
      "Query Cost limit of 12000 exceeded, found 12040.",
    );
    assertRan(await t.gql(query, { variables: { n: 10, m: 49 } }));
    // Apollo caches the validated document: the variables of each request still count.
    assert.equal(
      assertRefused(await t.gql(query, { variables: { n: 10, m: 50 } })),
      "Query Cost limit of 12000 exceeded, found 12040.",
    );
    // null means the argument's default (20): 10 × (4 + 20 × 24) = 4,840.
    assertRan(await t.gql(query, { variables: { n: 10, m: null } }));
    // Left out, a variable counts as its default in the operation, or else as the argument's.
    const withDefault = `query($n: Int! = 10, $m: Int = 50) { posts(first: $n) { author { posts(first: $m) { id title body } } } }`;
    assert.equal(
      assertRefused(await t.gql(withDefault, { variables: {} })),
      "Query Cost limit of 12000 exceeded, found 12040.",
    );
    assertRan(await t.gql(query, { variables: { n: 24 } }));
  });

  it("counts a first over 100 as 100, so the client hears which argument is wrong rather than 'too complex'", async () => {
    // 5,000 × 24 would be 120,000; counted as 100 it is 2,400, and the resolver refuses the argument.
    const res = await t.gql(`{ posts(first: 5000) { id title body } }`);
    assert.equal(res.status, 200);
    assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
    assert.deepEqual(res.body.errors![0]!.extensions!.fields, [
      { field: "first", rule: "max", message: "must be at most 100" },
    ]);
  });
});

describe("query limits set by configuration (sqlite, development)", () => {
  // One app per variable, so that only that limit is tight: [value, a query at the limit, one past it, the refusal].
  const cases: Array<[string, string, string, string, string]> = [
    ["QUERY_MAX_DEPTH", "3", nested(3), nested(4), "Query depth limit of 3 exceeded, found 4."],
    [
      "QUERY_MAX_ALIASES",
      "2",
      `{ a: __typename b: __typename }`,
      `{ a: __typename b: __typename c: __typename }`,
      "Aliases limit of 2 exceeded, found 3.",
    ],
    [
      "QUERY_MAX_DIRECTIVES",
      "1",
      `{ __typename @include(if: true) }`,
      `{ __typename @include(if: true) __typename @skip(if: false) }`,
      "Directives limit of 1 exceeded, found 2.",
    ],
    [
      "QUERY_MAX_TOKENS",
      "12",
      `{ posts(first: 1) { id title } }`,
      `{ posts(first: 1) { id title body } }`,
      "Token limit of 12 exceeded.",
    ],
    // Two posts of three scalars: 2 × (2 + 3) = 10; three posts: 15.
    [
      "QUERY_MAX_COST",
      "10",
      `{ posts(first: 2) { id title createdAt } }`,
      `{ posts(first: 3) { id title createdAt } }`,
      "Query Cost limit of 10 exceeded, found 15.",
    ],
  ];
  for (const [variable, value, atLimit, pastLimit, refusal] of cases) {
    it(`applies ${variable}=${value}`, async () => {
      const t = await startTestApp("sqlite", { env: { NODE_ENV: "development", [variable]: value } });
      try {
        const res = await t.gql(atLimit);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(codes(res), []);
        assert.equal(assertRefused(await t.gql(pastLimit)), refusal);
        // Counted once, under the variable's name.
        assert.match(await t.app.metrics.text(), new RegExp(`gta_limit_refusals_total\\{limit="${variable}"\\} 1\\b`));
      } finally {
        await t.close();
        await t.database.drop();
      }
    });
  }

  it("lets every limit count on its own: 600 aliases and 300 directives meet their own limits once tokens allow them", async () => {
    const t = await startTestApp("sqlite", { env: { NODE_ENV: "development", QUERY_MAX_TOKENS: "100000" } });
    try {
      assert.equal(
        assertRefused(await t.gql(`{ ${repeat(600, (i) => `a${i}: __typename`)} }`)),
        "Aliases limit of 15 exceeded, found 600.",
      );
      assert.equal(
        assertRefused(await t.gql(`{ ${repeat(300, () => "__typename @include(if: true)")} }`)),
        "Directives limit of 50 exceeded, found 300.",
      );
    } finally {
      await t.close();
      await t.database.drop();
    }
  });
});
