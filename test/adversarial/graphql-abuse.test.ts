// GraphQL-level abuse, as graphql-cop and friends automate it, against a production app over HTTP:
// alias and directive overloading, depth, field duplication, suggestion and introspection probing,
// batching, CSRF shapes, huge bodies and inputs, hostile variables, odd operation names, debug
// leaks. Every case asserts its exact status and code; at the end the data is what setup made.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { BODY_LIMIT_BYTES } from "../../src/http/server.js";
import { PASSWORD } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { errorCodes, postGraphQL, postJson, type RawResponse, send } from "../helpers/http.js";
import { assertUnchanged, countBy, type Snapshot, snapshot } from "./helpers.js";

const ADMIN = { username: "root", password: "root password 1" };
const TOO_COMPLEX = "Query is too complex.";
const KB = 1024;

interface Setup {
  t: TestApp;
  adminToken: string;
  author: { token: string; userId: string };
  postId: string;
}

interface AbuseCase {
  /** The attack, as scanners name it. */
  attack: string;
  name: string;
  send: (s: Setup) => Promise<RawResponse>;
  status: number;
  /** Every error's code; null when the request must succeed with no errors. */
  code: string | null;
  /** The exact number of errors (default 1; ignored when `code` is null). */
  errors?: number;
  /** Anything else this case must show. */
  check?: (res: RawResponse, s: Setup) => void | Promise<void>;
}

function gql(
  s: Setup,
  query: string,
  options: { variables?: unknown; token?: string; operationName?: unknown; extensions?: unknown } = {},
): Promise<RawResponse> {
  const { token, ...body } = options;
  return postGraphQL(s.t.url, { query, ...body }, token);
}

function getQuery(s: Setup, query: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return send(`${s.t.url}?query=${encodeURIComponent(query)}`, { headers });
}

const repeat = (count: number, make: (i: number) => string) =>
  Array.from({ length: count }, (_, i) => make(i)).join(" ");

/** `posts { author { posts { … { id } } } }` with `depth` fields on the deepest path. */
function nested(depth: number): string {
  let selection = "id";
  for (let level = depth - 1; level >= 1; level--)
    selection = `${level % 2 === 1 ? "posts" : "author"} { ${selection} }`;
  return `{ ${selection} }`;
}

const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { accessToken } }`;
const REGISTER_INLINE = (username: string) =>
  `mutation { register(input: { username: "${username}", password: "${PASSWORD}" }) { accessToken } }`;
const SET_ROLES = `mutation($userId: ID!, $roles: [Role!]!) { setUserRoles(userId: $userId, roles: $roles) { id roles } }`;
const big = (bytes: number) => "p".repeat(bytes);

const CASES: AbuseCase[] = [
  // Alias overloading: one request doing the work of many.
  {
    attack: "alias overloading",
    name: "100 aliased `me`",
    send: (s) => gql(s, `{ ${repeat(100, (i) => `a${i}: me { id }`)} }`, { token: s.author.token }),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
    check: (res) => assert.equal(res.json.errors[0].message, TOO_COMPLEX),
  },
  {
    attack: "alias overloading",
    name: "16 aliased logins guessing the admin's password (brute force in one request)",
    send: (s) =>
      gql(
        s,
        `mutation { ${repeat(16, (i) => `g${i}: login(input: { username: "root", password: "guess-${i}-xx" }) { accessToken }`)} }`,
      ),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
    // Refused twice over: by the alias limit and by the one-auth-field-per-operation rule.
    errors: 2,
    check: (res) =>
      assert.match(
        res.json.errors[1].message,
        /^An operation may contain at most one of login, register, refreshToken, changePassword, resetPassword, verifyEmail, finishPasskeySignIn and verifyMfaWithPasskey/,
      ),
  },
  {
    attack: "alias overloading",
    name: "2 aliased logins, under the alias limit (brute force in one request)",
    send: (s) =>
      gql(
        s,
        `mutation { a: login(input: { username: "root", password: "guess-a-xx" }) { accessToken } b: login(input: { username: "root", password: "guess-b-xx" }) { accessToken } }`,
      ),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
    check: (res) => assert.match(res.json.errors[0].message, /^An operation may contain at most one of login/),
  },
  {
    attack: "alias overloading",
    name: "16 aliased `__typename`",
    send: (s) => gql(s, `{ ${repeat(16, (i) => `t${i}: __typename`)} }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },

  // Depth: nested lists multiply the work.
  {
    attack: "depth",
    name: "posts.author.posts… 12 deep",
    send: (s) => gql(s, nested(12)),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
    check: (res) => assert.equal(res.json.errors[0].message, TOO_COMPLEX),
  },
  {
    attack: "depth",
    name: "12 deep, hidden in nested fragments",
    send: (s) =>
      gql(
        s,
        `{ posts { ...P1 } } fragment P1 on Post { author { ...U1 } } fragment U1 on User { posts { ...P2 } } fragment P2 on Post { author { ...U2 } } ` +
          `fragment U2 on User { posts { ...P3 } } fragment P3 on Post { author { ...U3 } } fragment U3 on User { posts { author { posts { author { posts { id } } } } } }`,
      ),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "depth",
    name: "fragments that spread each other in a cycle",
    send: (s) => gql(s, `{ ...A } fragment A on Query { posts { id } ...B } fragment B on Query { ...A }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },

  // Field duplication: the same field, over and over.
  {
    attack: "field duplication",
    name: "600 copies of one field",
    send: (s) => gql(s, `{ posts { ${repeat(600, () => "id")} } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "field duplication",
    name: "200 copies of a field with arguments",
    send: (s) => gql(s, `{ ${repeat(200, () => "posts(first: 100) { id }")} }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },

  // Directive overloading.
  {
    attack: "directive overloading",
    name: "300 @include directives on one field",
    send: (s) => gql(s, `{ posts { id ${repeat(300, () => "@include(if: true)")} } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "directive overloading",
    name: "300 unknown directives on one field",
    send: (s) => gql(s, `{ posts { id ${repeat(300, () => "@aa")} } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },

  // Field suggestions: "Did you mean" would map the schema for someone without introspection.
  {
    attack: "field suggestions",
    name: "a misspelled query field",
    send: (s) => gql(s, `{ mee { id } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
    check: (res) => assert.equal(res.json.errors[0].message, `Cannot query field "mee" on type "Query".`),
  },
  {
    attack: "field suggestions",
    name: "a misspelled object field",
    send: (s) => gql(s, `{ posts { titel } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "field suggestions",
    name: "a misspelled argument",
    send: (s) => gql(s, `{ posts(frist: 1) { id } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "field suggestions",
    name: "a misspelled enum value, inline",
    send: (s) => gql(s, `mutation { logout(scope: CURRNT) }`, { token: s.author.token }),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "field suggestions",
    name: "a misspelled enum value, as a variable",
    send: (s) =>
      gql(s, `mutation($s: LogoutScope) { logout(scope: $s) }`, { token: s.author.token, variables: { s: "CURRNT" } }),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  {
    attack: "field suggestions",
    name: "a misspelled input type",
    send: (s) =>
      gql(s, `mutation($i: RegisterInptu!) { register(input: $i) { accessToken } }`, { variables: { i: {} } }),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "field suggestions",
    name: "a misspelled input field, as a variable",
    send: (s) => gql(s, REGISTER, { variables: { input: { usernme: "probe", password: PASSWORD } } }),
    status: 400,
    code: "BAD_USER_INPUT",
    errors: 2,
  },

  // Introspection is off in production, however it is asked for.
  {
    attack: "introspection",
    name: "__schema",
    send: (s) => gql(s, `{ __schema { types { name fields { name } } } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "introspection",
    name: "__type",
    send: (s) => gql(s, `{ __type(name: "User") { fields { name } } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "introspection",
    name: "__schema under an alias",
    send: (s) => gql(s, `{ s: __schema { queryType { name } } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "introspection",
    name: "__schema inside a fragment",
    send: (s) => gql(s, `{ ...F } fragment F on Query { __schema { queryType { name } } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "introspection",
    name: "__schema over GET with a preflight header",
    send: (s) => getQuery(s, `{ __schema { queryType { name } } }`, { "apollo-require-preflight": "true" }),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    attack: "introspection",
    name: "the circular introspection query (types.fields.type.fields…)",
    send: (s) =>
      gql(s, `{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
    // Apollo's own introspection-depth rule and its introspection ban both object.
    errors: 2,
  },
  {
    attack: "introspection",
    name: "__typename, which is not introspection, still answers",
    send: (s) => gql(s, `{ __typename }`),
    status: 200,
    code: null,
    check: (res) => assert.deepEqual(res.json, { data: { __typename: "Query" } }),
  },

  // Batching: an array of operations is refused whole.
  {
    attack: "batching",
    name: "a JSON array of two registrations",
    send: (s) => postJson(s.t.url, [{ query: REGISTER_INLINE("batch1") }, { query: REGISTER_INLINE("batch2") }]),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "batching",
    name: "a JSON array of 100 logins",
    send: (s) =>
      postJson(
        s.t.url,
        Array.from({ length: 100 }, (_, i) => ({
          query: `mutation { login(input: { username: "root", password: "guess-${i}-xx" }) { accessToken } }`,
        })),
      ),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "batching",
    name: "an empty JSON array",
    send: (s) => postJson(s.t.url, []),
    status: 400,
    code: "BAD_REQUEST",
  },

  // CSRF: the shapes a browser sends cross-site without a preflight.
  ...["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz"].map(
    (contentType): AbuseCase => ({
      attack: "CSRF",
      name: `a registration POSTed as ${contentType.split(";")[0]}`,
      send: (s) =>
        send(s.t.url, {
          method: "POST",
          headers: { "content-type": contentType },
          body: JSON.stringify({ query: REGISTER_INLINE("csrf") }),
        }),
      status: 400,
      code: "BAD_REQUEST",
      check: (res) => assert.match(res.json.errors[0].message, /Cross-Site Request Forgery/),
    }),
  ),
  {
    attack: "CSRF",
    name: "a registration POSTed with no content type",
    send: (s) =>
      send(s.t.url, {
        method: "POST",
        headers: { "content-type": "" },
        body: JSON.stringify({ query: REGISTER_INLINE("csrf") }),
      }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "CSRF",
    name: "a GET query without a preflight header",
    send: (s) => getQuery(s, `{ posts { id } }`),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "CSRF",
    name: "a GET mutation without a preflight header",
    send: (s) => getQuery(s, REGISTER_INLINE("viaget")),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "CSRF",
    name: "a GET mutation with a preflight header",
    send: (s) => getQuery(s, REGISTER_INLINE("viaget"), { "apollo-require-preflight": "true" }),
    status: 405,
    code: "BAD_REQUEST",
    check: (res) => assert.equal(res.headers.get("allow"), "POST"),
  },
  {
    attack: "CSRF",
    name: "a browser's GET of /graphql looking for a playground",
    send: (s) => send(s.t.url, { headers: { accept: "text/html" } }),
    status: 400,
    code: "BAD_REQUEST",
    check: (res) => assert.match(res.headers.get("content-type") ?? "", /^application\/json/),
  },

  // Huge bodies and huge inputs.
  {
    attack: "huge body",
    name: "a body one byte over 1 MB",
    send: (s) => postJson(s.t.url, padTo({ query: REGISTER_INLINE("toolarge") }, BODY_LIMIT_BYTES + 1)),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    attack: "huge body",
    name: "a body of 5 MB",
    send: (s) => postJson(s.t.url, padTo({ query: `{ posts { id } }` }, 5 * KB * KB)),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    attack: "huge input",
    name: "register with a 900 KB password",
    send: (s) => gql(s, REGISTER, { variables: { input: { username: "hugepass", password: big(900 * KB) } } }),
    status: 200,
    code: "BAD_USER_INPUT",
    check: (res) => {
      assert.deepEqual(res.json.errors[0].extensions.fields, [
        { field: "password", rule: "isPassword", message: "must be at most 128 characters" },
      ]);
      assert.ok(res.text.length < 1000, "the password is not echoed");
    },
  },
  {
    attack: "huge input",
    name: "login with a 900 KB password",
    send: (s) =>
      gql(s, `mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
        variables: { input: { username: "root", password: big(900 * KB) } },
      }),
    status: 200,
    code: "BAD_USER_INPUT",
    check: (res) => assert.ok(res.text.length < 1000),
  },
  {
    attack: "huge input",
    name: "changePassword to a 900 KB password",
    send: (s) =>
      gql(s, `mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
        token: s.author.token,
        variables: { input: { currentPassword: PASSWORD, newPassword: big(900 * KB) } },
      }),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    attack: "huge input",
    name: "register with a 900 KB username",
    send: (s) => gql(s, REGISTER, { variables: { input: { username: "u".repeat(900 * KB), password: PASSWORD } } }),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    attack: "huge input",
    name: "createPost with a 900 KB title",
    send: (s) =>
      gql(s, `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
        token: s.author.token,
        variables: { input: { title: "t".repeat(900 * KB), body: "b" } },
      }),
    status: 200,
    code: "BAD_USER_INPUT",
  },

  // Hostile variables.
  {
    attack: "hostile variables",
    name: "roles nested 400,000 lists deep",
    send: (s) =>
      postJson(
        s.t.url,
        `{"query":${JSON.stringify(SET_ROLES)},"variables":{"userId":"x","roles":${"[".repeat(400_000)}${"]".repeat(400_000)}}}`,
        { authorization: `Bearer ${s.adminToken}` },
      ),
    // Refused by the nesting scan before any parsing (JSON_MAX_NESTING, docs/limits.md).
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "a username nested 150,000 objects deep",
    send: (s) =>
      postJson(
        s.t.url,
        `{"query":${JSON.stringify(REGISTER)},"variables":{"input":{"username":${'{"a":'.repeat(150_000)}1${"}".repeat(150_000)},"password":"${PASSWORD}"}}}`,
      ),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "an unused variable nested 400,000 lists deep (refused before parsing all the same)",
    send: (s) =>
      postJson(s.t.url, `{"query":"{ posts { id } }","variables":{"x":${"[".repeat(400_000)}${"]".repeat(400_000)}}}`),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "a __proto__ key (prototype pollution)",
    send: (s) => postJson(s.t.url, `{"query":"{ posts { id } }","variables":{"__proto__":{"isAdmin":true}}}`),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "a __proto__ key inside an input object",
    send: (s) =>
      postJson(
        s.t.url,
        `{"query":${JSON.stringify(REGISTER)},"variables":{"input":{"username":"proto","password":"${PASSWORD}","__proto__":{"roles":["ADMIN"]}}}}`,
      ),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "constructor.prototype (prototype pollution)",
    send: (s) =>
      postJson(
        s.t.url,
        `{"query":"{ posts { id } }","variables":{"x":{"constructor":{"prototype":{"isAdmin":true}}}}}`,
      ),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "variables as a JSON-encoded string",
    send: (s) =>
      postJson(s.t.url, {
        query: REGISTER,
        variables: JSON.stringify({ input: { username: "str", password: PASSWORD } }),
      }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "hostile variables",
    name: "explicit null for an argument that has a default (posts(first: $n))",
    send: (s) => gql(s, `query($n: Int) { posts(first: $n) { id } }`, { variables: { n: null } }),
    status: 200,
    code: "BAD_USER_INPUT",
    check: (res) => {
      assert.equal(res.json.data, null);
      assert.deepEqual(res.json.errors[0].extensions.fields, [
        { field: "first", rule: "type", message: "must not be null" },
      ]);
    },
  },
  {
    attack: "hostile variables",
    name: "setUserRoles with 10,000 copies of USER: stored once",
    send: (s) =>
      gql(s, SET_ROLES, {
        token: s.adminToken,
        variables: { userId: s.author.userId, roles: Array(10_000).fill("USER") },
      }),
    status: 200,
    code: null,
    check: async (res, s) => {
      assert.deepEqual(res.json.data.setUserRoles, { id: s.author.userId, roles: ["USER"] });
      const row = await s.t.app.database.db
        .selectFrom("users")
        .select("roles")
        .where("id", "=", s.author.userId)
        .executeTakeFirstOrThrow();
      assert.equal(row.roles, '["USER"]');
    },
  },
  {
    attack: "hostile variables",
    name: "setUserRoles with 10,000 roles for a user that does not exist",
    send: (s) =>
      gql(s, SET_ROLES, {
        token: s.adminToken,
        variables: { userId: "00000000-0000-0000-0000-000000000000", roles: Array(10_000).fill("ADMIN") },
      }),
    status: 200,
    code: "NOT_FOUND",
  },
  {
    attack: "hostile variables",
    name: "setUserRoles with 10,000 roles that do not exist: at most 50 errors and one 'too many'",
    send: (s) =>
      gql(s, SET_ROLES, {
        token: s.adminToken,
        variables: { userId: s.author.userId, roles: Array(10_000).fill("ROOT") },
      }),
    status: 400,
    code: "BAD_USER_INPUT",
    errors: 51,
  },
  {
    attack: "hostile variables",
    name: "setUserRoles with 10,000 roles as a user without ADMIN",
    send: (s) =>
      gql(s, SET_ROLES, {
        token: s.author.token,
        variables: { userId: s.author.userId, roles: Array(10_000).fill("ADMIN") },
      }),
    status: 200,
    code: "FORBIDDEN",
  },

  // Operation names.
  {
    attack: "operation names",
    name: "a NUL inside the document's operation name",
    send: (s) => gql(s, `query A\u0000B { posts { id } }`),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  {
    attack: "operation names",
    name: "a non-ASCII operation name in the document",
    send: (s) => gql(s, `query Ünïcödé { posts { id } }`),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  {
    attack: "operation names",
    name: "an emoji operation name in the document",
    send: (s) => gql(s, `query 💥 { posts { id } }`),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  {
    attack: "operation names",
    name: "operationName with a NUL",
    send: (s) => gql(s, `query A { posts { id } }`, { operationName: "A\u0000" }),
    status: 400,
    code: "OPERATION_RESOLUTION_FAILURE",
  },
  {
    attack: "operation names",
    name: "operationName with a right-to-left override",
    send: (s) => gql(s, `query A { posts { id } }`, { operationName: "\u202eA" }),
    status: 400,
    code: "OPERATION_RESOLUTION_FAILURE",
  },
  {
    attack: "operation names",
    name: "operationName as a number",
    send: (s) => gql(s, `query A { posts { id } }`, { operationName: 1 }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "operation names",
    name: "two operations and no operationName",
    send: (s) => gql(s, `query A { posts { id } } mutation B { logout }`),
    status: 400,
    code: "OPERATION_RESOLUTION_FAILURE",
  },

  // Debug output and odd protocol paths.
  {
    attack: "debug leaks",
    name: "a request for tracing output",
    send: (s) => gql(s, `{ posts { id } }`, { extensions: { tracing: true } }),
    status: 200,
    code: null,
    check: (res) => assert.deepEqual(Object.keys(res.json), ["data"]),
  },
  {
    attack: "debug leaks",
    name: "a syntax error (no stack trace, no source excerpt)",
    send: (s) => gql(s, `{ posts { id }`),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  {
    attack: "debug leaks",
    name: "malformed JSON",
    send: (s) => postJson(s.t.url, `{"query": "{ posts { id } }"`),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    attack: "debug leaks",
    name: "a persisted-query hash nobody registered (automatic persisted queries are off)",
    send: (s) => postJson(s.t.url, { extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } }),
    status: 200,
    code: "PERSISTED_QUERY_NOT_SUPPORTED",
  },
  {
    attack: "debug leaks",
    name: "a persisted query sent with another query's hash (cache poisoning; nothing is registered)",
    send: (s) => {
      const hash = createHash("sha256").update(`{ posts { id } }`).digest("hex");
      return postJson(s.t.url, {
        query: `{ __typename }`,
        extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
      });
    },
    status: 200,
    code: "PERSISTED_QUERY_NOT_SUPPORTED",
  },
];

/** A JSON body of exactly `bytes` bytes: the object plus padding in an ignored member. */
function padTo(body: Record<string, unknown>, bytes: number): string {
  const empty = JSON.stringify({ ...body, pad: "" });
  return JSON.stringify({ ...body, pad: "x".repeat(bytes - Buffer.byteLength(empty)) });
}

/** The one runner: the exact status and codes, and nothing a production server must not show. */
async function answer(s: Setup, row: AbuseCase): Promise<void> {
  const res = await row.send(s);
  assert.equal(res.status, row.status, `status: ${res.text.slice(0, 300)}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.ok(res.json !== undefined, "the body is JSON");
  const codes = errorCodes(res);
  if (row.code === null) {
    assert.deepEqual(codes, [], res.text.slice(0, 300));
  } else {
    assert.equal(codes.length, row.errors ?? 1, `error count: ${res.text.slice(0, 300)}`);
    assert.deepEqual(new Set(codes), new Set([row.code]), res.text.slice(0, 300));
  }
  if (res.status >= 400) assert.equal("data" in res.json, false, "a refused request has no data key");
  assert.doesNotMatch(res.text, /Did you mean/, "no field suggestions in production");
  assert.doesNotMatch(res.text, /stacktrace|exception|\bat [\w.]+ \(/, "no stack traces in production");
  await row.check?.(res, s);
}

describe("GraphQL abuse against a production app (sqlite)", () => {
  const s = {} as Setup;
  let initial: Snapshot;

  before(async () => {
    s.t = await startTestApp("sqlite", {
      env: { NODE_ENV: "production", ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    });
    s.adminToken = await s.t.login(ADMIN.username, ADMIN.password);
    s.author = await s.t.register("author", PASSWORD);
    const created = await gql(s, `mutation { createPost(input: { title: "Hello", body: "World" }) { id } }`, {
      token: s.author.token,
    });
    s.postId = created.json.data.createPost.id;
    initial = await snapshot(s.t.app.database.db, { ignoreUserTimes: true });
  });
  after(async () => {
    await s.t?.close();
    await s.t?.database.drop();
  });

  for (const row of CASES) {
    const expected = row.code === null ? "no error" : row.code;
    it(`[${row.attack}] answers ${row.name} with ${row.status} ${expected}`, async () => {
      await answer(s, row);
    });
  }

  it("leaves users, posts, sessions and refresh tokens exactly as setup made them", async (c) => {
    assertUnchanged(initial, await snapshot(s.t.app.database.db, { ignoreUserTimes: true }), "after every abuse case");
    const users = await s.t.app.database.db.selectFrom("users").select("username").orderBy("username").execute();
    assert.deepEqual(
      users.map((u) => u.username),
      ["author", "root"],
    );
    const posts = await s.t.app.database.db.selectFrom("posts").select("id").execute();
    assert.deepEqual(
      posts.map((p) => p.id),
      [s.postId],
    );
    for (const [attack, count] of countBy(CASES, (row) => row.attack)) c.diagnostic(`${attack}: ${count}`);
    c.diagnostic(`total: ${CASES.length} GraphQL abuse cases`);
  });

  it("logged no unexpected error for any of them: every refusal above was an expected outcome", () => {
    const unexpected = s.t.logs.filter((line) => /"msg":"(unexpected error|request failed)"/.test(line));
    assert.deepEqual(unexpected, []);
  });
});

// PostgreSQL's text cannot hold U+0000 and errors on a comparison with it, where SQLite simply finds
// nothing: the same request must get the same coded answer on both, never an internal error.
const NUL_CASES: AbuseCase[] = [
  {
    attack: "NUL",
    name: "post(id) with a NUL",
    send: (s) => gql(s, `query($id: ID!) { post(id: $id) { id } }`, { variables: { id: "\u0000" } }),
    status: 200,
    code: null,
    check: (res) => assert.deepEqual(res.json, { data: { post: null } }),
  },
  {
    attack: "NUL",
    name: "post(id) with a NUL written inline",
    send: (s) => gql(s, `{ post(id: "a\\u0000") { id } }`),
    status: 200,
    code: null,
    check: (res) => assert.deepEqual(res.json, { data: { post: null } }),
  },
  {
    attack: "NUL",
    name: "updatePost of an id with a NUL",
    send: (s) =>
      gql(s, `mutation($id: ID!) { updatePost(id: $id, input: { title: "x" }) { id } }`, {
        token: s.author.token,
        variables: { id: `${s.postId}\u0000` },
      }),
    status: 200,
    code: "NOT_FOUND",
  },
  {
    attack: "NUL",
    name: "deletePost of an id with a NUL",
    send: (s) =>
      gql(s, `mutation($id: ID!) { deletePost(id: $id) }`, {
        token: s.author.token,
        variables: { id: `${s.postId}\u0000` },
      }),
    status: 200,
    code: "NOT_FOUND",
  },
  {
    attack: "NUL",
    name: "revokeSession of an id with a NUL",
    send: (s) =>
      gql(s, `mutation($id: ID!) { revokeSession(id: $id) }`, { token: s.author.token, variables: { id: "\u0000" } }),
    status: 200,
    code: "NOT_FOUND",
  },
  {
    attack: "NUL",
    name: "setUserRoles of a user id with a NUL",
    send: (s) =>
      gql(s, SET_ROLES, { token: s.adminToken, variables: { userId: `${s.author.userId}\u0000`, roles: ["USER"] } }),
    status: 200,
    code: "NOT_FOUND",
  },
  {
    attack: "NUL",
    name: "createPost with a NUL in the title",
    send: (s) =>
      gql(s, `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
        token: s.author.token,
        variables: { input: { title: "a\u0000b", body: "body" } },
      }),
    status: 200,
    code: "BAD_USER_INPUT",
    check: (res) =>
      assert.deepEqual(res.json.errors[0].extensions.fields, [
        { field: "title", rule: "hasNoNul", message: "must not contain the NUL character (U+0000)" },
      ]),
  },
  {
    attack: "NUL",
    name: "createPost with other C0 controls in the body (U+0001 would answer as six bytes each)",
    send: (s) =>
      gql(s, `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
        token: s.author.token,
        variables: { input: { title: "tab\tLF\nCR\r are text", body: "a\u0001b\u001fc" } },
      }),
    status: 200,
    code: "BAD_USER_INPUT",
    check: (res) =>
      assert.deepEqual(res.json.errors[0].extensions.fields, [
        {
          field: "body",
          rule: "hasNoControlCharacters",
          message:
            "must not contain control characters (U+0001 to U+001F) other than tab, line feed and carriage return",
        },
      ]),
  },
  {
    attack: "NUL",
    name: "updatePost with a NUL in the body",
    send: (s) =>
      gql(s, `mutation($id: ID!) { updatePost(id: $id, input: { body: "\\u0000" }) { id } }`, {
        token: s.author.token,
        variables: { id: s.postId },
      }),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    attack: "NUL",
    name: "login with a NUL in the username",
    send: (s) =>
      gql(s, `mutation { login(input: { username: "root\\u0000", password: "${ADMIN.password}" }) { accessToken } }`),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    attack: "NUL",
    name: "refreshToken with a NUL",
    send: (s) =>
      gql(s, `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`, {
        variables: { r: "rt_\u0000" },
      }),
    status: 200,
    code: "UNAUTHENTICATED",
  },
];

for (const kind of DATABASES) {
  describe(`NUL characters in ids and texts (${kind}, production)`, () => {
    const s = {} as Setup;
    let initial: Snapshot;

    before(async () => {
      s.t = await startTestApp(kind, {
        env: { NODE_ENV: "production", ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
      });
      s.adminToken = await s.t.login(ADMIN.username, ADMIN.password);
      s.author = await s.t.register("author", PASSWORD);
      const created = await gql(s, `mutation { createPost(input: { title: "Hello", body: "World" }) { id } }`, {
        token: s.author.token,
      });
      s.postId = created.json.data.createPost.id;
      initial = await snapshot(s.t.app.database.db);
    });
    after(async () => {
      await s.t?.close();
      await s.t?.database.drop();
    });

    for (const row of NUL_CASES) {
      it(`[${row.attack}] answers ${row.name} with ${row.status} ${row.code ?? "and data"}`, async () => {
        await answer(s, row);
      });
    }

    it("changed nothing and logged no unexpected error", async () => {
      assertUnchanged(initial, await snapshot(s.t.app.database.db), "after the NUL cases");
      assert.deepEqual(
        s.t.logs.filter((line) => /"msg":"(unexpected error|request failed)"/.test(line)),
        [],
      );
    });
  });
}
