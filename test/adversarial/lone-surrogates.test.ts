// Lone UTF-16 surrogates: JSON can carry "\ud800", but it is not Unicode text. SQLite would store it
// as invalid UTF-8 and PostgreSQL as U+FFFD, so the two databases would disagree; it is refused in
// every argument, with BAD_USER_INPUT naming the field, the same way on both, and nothing is stored.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  getNamedType,
  getNullableType,
  type GraphQLInputType,
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isListType,
  isScalarType,
} from "graphql";

import { WELL_FORMED_RULE } from "../../src/graphql/validation.js";
import { PASSWORD, sessionOf } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { errorCodes, postGraphQL, postJson, type RawResponse } from "../helpers/http.js";
import { assertUnchanged, type Snapshot, snapshot } from "./helpers.js";

const ADMIN = { username: "root", password: "root password 1" };
const MESSAGE = "must be well-formed Unicode text (no unpaired UTF-16 surrogate)";

/** Half a pair alone, either half, and a pair in the wrong order. */
const MALFORMED = [
  { name: "a lone high surrogate", text: "\ud800" },
  { name: "a lone low surrogate", text: "\udc00" },
  { name: "a reversed pair", text: "\ude00\ud83d" },
] as const;

interface Setup {
  t: TestApp;
  adminToken: string;
  author: { token: string; userId: string };
  postId: string;
  sessionId: string;
  refreshToken: string;
}

interface Row {
  name: string;
  /** The field `extensions.fields` must name. */
  field: string;
  send: (s: Setup, bad: string) => Promise<RawResponse>;
  /** What `data` is on refusal: null for a non-null root field, `{ post: null }` for `post`. */
  data?: unknown;
}

function gql(s: Setup, query: string, variables: Record<string, unknown>, token?: string): Promise<RawResponse> {
  return postGraphQL(s.t.url, { query, variables }, token);
}

const CREATE_POST = `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`;
const UPDATE_POST = `mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id } }`;
const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { accessToken } }`;
const LOGIN = `mutation($input: LoginInput!) { login(input: $input) { accessToken } }`;

const ROWS: Row[] = [
  {
    name: "createPost title",
    field: "title",
    send: (s, bad) => gql(s, CREATE_POST, { input: { title: `Hello ${bad}`, body: "World" } }, s.author.token),
  },
  {
    name: "createPost body",
    field: "body",
    send: (s, bad) => gql(s, CREATE_POST, { input: { title: "Hello", body: `World ${bad}!` } }, s.author.token),
  },
  {
    name: "updatePost title",
    field: "title",
    send: (s, bad) => gql(s, UPDATE_POST, { id: s.postId, input: { title: bad } }, s.author.token),
  },
  {
    name: "updatePost body",
    field: "body",
    send: (s, bad) => gql(s, UPDATE_POST, { id: s.postId, input: { body: `x${bad}` } }, s.author.token),
  },
  {
    name: "updatePost id",
    field: "id",
    send: (s, bad) => gql(s, UPDATE_POST, { id: `${s.postId}${bad}`, input: { title: "Changed" } }, s.author.token),
  },
  {
    name: "deletePost id",
    field: "id",
    send: (s, bad) => gql(s, `mutation($id: ID!) { deletePost(id: $id) }`, { id: `${s.postId}${bad}` }, s.author.token),
  },
  {
    name: "post id",
    field: "id",
    data: { post: null },
    send: (s, bad) => gql(s, `query($id: ID!) { post(id: $id) { id } }`, { id: bad }),
  },
  {
    name: "register username",
    field: "username",
    send: (s, bad) => gql(s, REGISTER, { input: { username: `newbie${bad}`, password: PASSWORD } }),
  },
  {
    name: "register password",
    field: "password",
    send: (s, bad) => gql(s, REGISTER, { input: { username: "newbie", password: `${PASSWORD}${bad}` } }),
  },
  {
    name: "login username",
    field: "username",
    send: (s, bad) => gql(s, LOGIN, { input: { username: `author${bad}`, password: PASSWORD } }),
  },
  {
    name: "login password",
    field: "password",
    send: (s, bad) => gql(s, LOGIN, { input: { username: "author", password: `${PASSWORD}${bad}` } }),
  },
  {
    name: "changePassword newPassword",
    field: "newPassword",
    send: (s, bad) =>
      gql(
        s,
        `mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`,
        { input: { currentPassword: PASSWORD, newPassword: `new password ${bad}` } },
        s.author.token,
      ),
  },
  {
    name: "refreshToken",
    field: "refreshToken",
    send: (s, bad) =>
      gql(s, `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`, {
        r: `${s.refreshToken}${bad}`,
      }),
  },
  {
    name: "revokeSession id",
    field: "id",
    send: (s, bad) =>
      gql(s, `mutation($id: ID!) { revokeSession(id: $id) }`, { id: `${s.sessionId}${bad}` }, s.author.token),
  },
  {
    name: "setUserRoles userId",
    field: "userId",
    send: (s, bad) =>
      gql(
        s,
        `mutation($id: ID!) { setUserRoles(userId: $id, roles: [ADMIN]) { id } }`,
        { id: `${s.author.userId}${bad}` },
        s.adminToken,
      ),
  },
];

/**
 * The problems of the well-formedness rule only (a bad username also breaks the username pattern),
 * sorted by field: their order follows the arguments', which the schema does not fix.
 */
function wellFormedProblems(res: RawResponse): unknown[] {
  const fields = (res.json?.errors?.[0]?.extensions?.fields ?? []) as Array<{ field: string; rule: string }>;
  return fields.filter((problem) => problem.rule === WELL_FORMED_RULE).sort((a, b) => a.field.localeCompare(b.field));
}

const expectedProblems = (fields: readonly string[]) =>
  [...fields].sort((a, b) => a.localeCompare(b)).map((field) => ({ field, rule: WELL_FORMED_RULE, message: MESSAGE }));

function assertRefused(res: RawResponse, fields: readonly string[], data: unknown = null): void {
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(errorCodes(res), ["BAD_USER_INPUT"], res.text);
  assert.deepEqual(res.json.data, data, res.text);
  assert.deepEqual(wellFormedProblems(res), expectedProblems(fields), res.text);
  assert.ok(
    !/[\ud800-\udfff]/.test(res.text) &&
      !res.text.includes("\\ud8") &&
      !res.text.includes("\\udc") &&
      !res.text.includes("\\ude"),
    "the value is not echoed",
  );
}

/** A value of `type` for the schema walk: every String and ID leaf is `bad`; other leaves get a valid value. */
function fill(type: GraphQLInputType, bad: string, path: string, leaves: string[]): unknown {
  const nullable = getNullableType(type);
  if (isListType(nullable)) return [fill(nullable.ofType, bad, `${path}.0`, leaves)];
  if (isInputObjectType(nullable)) {
    return Object.fromEntries(
      Object.values(nullable.getFields()).map((field) => [
        field.name,
        fill(field.type, bad, path === "" ? field.name : `${path}.${field.name}`, leaves),
      ]),
    );
  }
  if (isEnumType(nullable)) return nullable.getValues()[0]!.value;
  if (isScalarType(nullable) && (nullable.name === "String" || nullable.name === "ID")) {
    leaves.push(path);
    return `x${bad}`;
  }
  // JSON (a WebAuthn answer) takes any JSON value: a string, checked like any other text.
  if (isScalarType(nullable) && nullable.name === "JSON") {
    leaves.push(path);
    return `x${bad}`;
  }
  if (isScalarType(nullable) && nullable.name === "Int") return 1;
  if (isScalarType(nullable) && nullable.name === "Boolean") return false;
  throw new Error(`the schema walk has no value for ${nullable.toString()} at ${path}: teach it one`);
}

/** Every root field with a String or ID somewhere in its arguments, with variables that are all `bad` there. */
function everyTextArgument(schema: GraphQLSchema, bad: string) {
  const cases = [];
  for (const [keyword, root] of [
    ["query", schema.getQueryType()],
    ["mutation", schema.getMutationType()],
  ] as const) {
    for (const field of Object.values(root?.getFields() ?? {})) {
      if (field.args.length === 0) continue;
      const leaves: string[] = [];
      const variables: Record<string, unknown> = {};
      for (const arg of field.args) {
        // Input objects' fields are named without the argument, as class-validator names them.
        const named = getNamedType(arg.type);
        variables[arg.name] = fill(
          arg.type,
          bad,
          isInputObjectType(named) && !isListType(getNullableType(arg.type)) ? "" : arg.name,
          leaves,
        );
      }
      if (leaves.length === 0) continue;
      const definitions = field.args.map((arg) => `$${arg.name}: ${arg.type.toString()}`).join(", ");
      const uses = field.args.map((arg) => `${arg.name}: $${arg.name}`).join(", ");
      const selection = isScalarType(getNamedType(field.type)) ? "" : " { __typename }";
      cases.push({
        keyword,
        field: field.name,
        nullable: !field.type.toString().endsWith("!"),
        leaves,
        variables,
        query: `${keyword}(${definitions}) { ${field.name}(${uses})${selection} }`,
      });
    }
  }
  return cases;
}

for (const kind of DATABASES) {
  describe(`lone surrogates in every argument are refused (${kind})`, () => {
    const s = {} as Setup;
    let initial: Snapshot;

    before(async () => {
      s.t = await startTestApp(kind, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
      s.adminToken = await s.t.login(ADMIN.username, ADMIN.password);
      const registered = await gql(
        s,
        `mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id } } }`,
        { input: { username: "author", password: PASSWORD } },
      );
      const payload = registered.json.data.register;
      s.author = { token: payload.accessToken, userId: payload.user.id };
      s.refreshToken = payload.refreshToken;
      s.sessionId = sessionOf(payload.accessToken);
      const created = await gql(s, CREATE_POST, { input: { title: "Hello", body: "World" } }, s.author.token);
      s.postId = created.json.data.createPost.id;
      initial = await snapshot(s.t.app.database.db);
    });
    after(async () => {
      await s.t?.close();
      await s.t?.database.drop();
    });

    for (const row of ROWS) {
      for (const bad of MALFORMED) {
        it(`refuses ${bad.name} in ${row.name} with BAD_USER_INPUT naming ${row.field}`, async () => {
          assertRefused(await row.send(s, bad.text), [row.field], row.data);
        });
      }
    }

    it("names every malformed field of one request, in every argument", async () => {
      const res = await gql(
        s,
        UPDATE_POST,
        { id: "\ud800", input: { title: "\udc00", body: "ok \ud83d" } },
        s.author.token,
      );
      assertRefused(res, ["id", "title", "body"]);
    });

    it("refuses a lone surrogate in every String and ID argument of the schema, found by walking it", async (c) => {
      const cases = everyTextArgument(s.t.app.schema, "\ud800");
      assert.ok(cases.length >= 10, `only ${cases.length} fields with text arguments found`);
      for (const entry of cases) {
        const res = await gql(s, entry.query, entry.variables, s.adminToken);
        const why = `${entry.field}: ${res.text}`;
        assert.equal(res.status, 200, why);
        assert.deepEqual(errorCodes(res), ["BAD_USER_INPUT"], why);
        assert.deepEqual(res.json.data, entry.nullable ? { [entry.field]: null } : null, why);
        assert.deepEqual(wellFormedProblems(res), expectedProblems(entry.leaves), why);
      }
      c.diagnostic(
        `${cases.length} fields: ${cases.map((entry) => `${entry.field}(${entry.leaves.join(", ")})`).join("; ")}`,
      );
    });

    it("refuses an escaped lone surrogate written inline in the document at parse time (400 GRAPHQL_PARSE_FAILED)", async () => {
      const res = await postJson(
        s.t.url,
        { query: `mutation { createPost(input: { title: "\\ud800", body: "x" }) { id } }` },
        { authorization: `Bearer ${s.author.token}` },
      );
      assert.equal(res.status, 400, res.text);
      assert.deepEqual(errorCodes(res), ["GRAPHQL_PARSE_FAILED"]);
    });

    it("changed nothing stored: users, posts, sessions and refresh tokens are as before", async () => {
      assertUnchanged(initial, await snapshot(s.t.app.database.db), "after every refused request");
      const posts = await s.t.app.database.db
        .selectFrom("posts")
        .select(({ fn }) => fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      assert.equal(Number(posts.n), 1);
    });

    it("still accepts a proper surrogate pair (an emoji) and stores it exactly", async () => {
      const title = "Hello 😀";
      const body = "🎉 a party 👩‍👩‍👧";
      const created = await gql(s, CREATE_POST, { input: { title, body } }, s.author.token);
      assert.equal(created.status, 200, created.text);
      assert.equal(created.json.errors, undefined, created.text);
      const id = created.json.data.createPost.id;
      const read = await gql(s, `query($id: ID!) { post(id: $id) { title body } }`, { id });
      assert.deepEqual(read.json, { data: { post: { title, body } } });
      const stored = await s.t.app.database.db
        .selectFrom("posts")
        .select(["title", "body"])
        .where("id", "=", id)
        .executeTakeFirstOrThrow();
      assert.deepEqual(stored, { title, body });

      const password = "correct horse 😀";
      const registered = await gql(s, REGISTER, { input: { username: "emoji_fan", password } });
      assert.equal(registered.json.errors, undefined, registered.text);
      const login = await gql(s, LOGIN, { input: { username: "emoji_fan", password } });
      assert.equal(typeof login.json.data?.login?.accessToken, "string", login.text);
    });
  });
}
