import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { sql } from "kysely";

import { codes, type GraphQLResponse } from "./helpers/api.js";
import { useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";
import { send } from "./helpers/http.js";

const ADMIN = { username: "root", password: "root password 1" };

/** Every error's extensions carry a code and never a stack trace. */
function assertNoStacktrace(res: GraphQLResponse): void {
  assert.ok((res.body.errors ?? []).length > 0, "the response has errors");
  for (const error of res.body.errors!) {
    assert.equal(typeof error.extensions?.code, "string");
    assert.equal(error.extensions?.stacktrace, undefined, `${error.extensions?.code} carries a stack trace`);
    assert.equal(error.extensions?.exception, undefined);
  }
}

describe("in production (sqlite)", () => {
  const t = useTestApp("sqlite", {
    env: { NODE_ENV: "production", ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
  });
  let user: { token: string; userId: string };

  before(async () => {
    user = await t.register("plainuser");
  });

  it("serves no landing page: a browser GET of /graphql gets JSON, not HTML", async () => {
    const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    const requests: Array<Record<string, string>> = [
      { accept: browser },
      { accept: browser, "apollo-require-preflight": "true" },
    ];
    for (const headers of requests) {
      const response = await send(t.url, { headers });
      const text = response.text;
      assert.equal(response.status, 400);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      assert.doesNotMatch(text, /<html|<!DOCTYPE/i);
      assert.deepEqual(
        JSON.parse(text).errors.map((e: any) => e.extensions.code),
        ["BAD_REQUEST"],
      );
    }
  });

  it("refuses introspection with 400 and code GRAPHQL_VALIDATION_FAILED", async () => {
    for (const query of [`{ __schema { types { name } } }`, `{ __type(name: "User") { fields { name } } }`]) {
      const res = await t.gql(query);
      assert.equal(res.status, 400);
      assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED"]);
      assert.equal(res.body.data, undefined);
    }
  });

  it("gives no 'Did you mean' suggestion for a misspelled field, argument or type", async () => {
    const field = await t.gql(`{ posts { titel } }`);
    assert.equal(field.status, 400);
    assert.deepEqual(codes(field), ["GRAPHQL_VALIDATION_FAILED"]);
    assert.equal(field.body.errors![0]!.message, `Cannot query field "titel" on type "Post".`);

    const argument = await t.gql(`{ posts(frist: 3) { id } }`);
    assert.deepEqual(codes(argument), ["GRAPHQL_VALIDATION_FAILED"]);
    assert.doesNotMatch(JSON.stringify(argument.body), /Did you mean/);

    const type = await t.gql(`mutation($input: RegistrInput!) { register(input: $input) { accessToken } }`, {
      variables: { input: { username: "someone", password: "correct horse battery" } },
    });
    assert.deepEqual(codes(type), ["GRAPHQL_VALIDATION_FAILED"]);
    assert.doesNotMatch(JSON.stringify(type.body), /Did you mean/);
  });

  it("gives no 'Did you mean' suggestion for a misspelled input field or enum value in variables", async () => {
    const inputField = await t.gql(`mutation($input: RegisterInput!) { register(input: $input) { accessToken } }`, {
      variables: { input: { usernme: "someone", password: "correct horse battery" } },
    });
    assert.equal(inputField.status, 400);
    assert.ok(codes(inputField).length > 0 && codes(inputField).every((c) => c === "BAD_USER_INPUT"));
    assert.doesNotMatch(JSON.stringify(inputField.body), /Did you mean/);

    const enumValue = await t.gql(`mutation($roles: [Role!]!) { setUserRoles(userId: "x", roles: $roles) { id } }`, {
      variables: { roles: ["ADMN"] },
    });
    assert.equal(enumValue.status, 400);
    assert.deepEqual(codes(enumValue), ["BAD_USER_INPUT"]);
    assert.doesNotMatch(JSON.stringify(enumValue.body), /Did you mean|"ADMIN"/);
  });

  it("puts no stacktrace in UNAUTHENTICATED, BAD_USER_INPUT, FORBIDDEN, NOT_FOUND or validation errors", async () => {
    const unauthenticated = await t.gql(`{ me { id } }`);
    assert.deepEqual(codes(unauthenticated), ["UNAUTHENTICATED"]);
    assertNoStacktrace(unauthenticated);

    const badToken = await t.gql(`{ me { id } }`, { token: "not.a.token" });
    assert.equal(badToken.status, 401);
    assert.deepEqual(codes(badToken), ["UNAUTHENTICATED"]);
    assertNoStacktrace(badToken);

    const badInput = await t.gql(`mutation { register(input: { username: "x", password: "short" }) { accessToken } }`);
    assert.deepEqual(codes(badInput), ["BAD_USER_INPUT"]);
    assertNoStacktrace(badInput);

    const forbidden = await t.gql(`{ users { id } }`, { token: user.token });
    assert.deepEqual(codes(forbidden), ["FORBIDDEN"]);
    assertNoStacktrace(forbidden);

    const notFound = await t.gql(`mutation { deletePost(id: "no-such-post") }`, { token: user.token });
    assert.deepEqual(codes(notFound), ["NOT_FOUND"]);
    assertNoStacktrace(notFound);

    const invalid = await t.gql(`{ posts { nope } }`);
    assert.deepEqual(codes(invalid), ["GRAPHQL_VALIDATION_FAILED"]);
    assertNoStacktrace(invalid);
  });
});

for (const kind of DATABASES) {
  for (const mode of ["production", "development"] as const) {
    describe(`an unexpected internal error in ${mode} (${kind})`, () => {
      const t = useTestApp(kind, { env: { NODE_ENV: mode } });
      before(async () => {
        await t.register("author");
      });

      /** The log entries written at level error for the request with this id. */
      function errorLogsOf(requestId: string): any[] {
        return t.logs.map((line) => JSON.parse(line)).filter((entry) => entry.level >= 50 && entry.reqId === requestId);
      }

      if (mode === "production") {
        it("hides a database driver's error as INTERNAL_SERVER_ERROR 'Internal server error.', and logs it with the request id", async () => {
          await sql`drop table posts`.execute(t.app.database.db);
          const res = await t.gql(`{ posts { id } }`);
          assert.equal(res.status, 200);
          assert.equal(res.body.data, null);
          assert.deepEqual(
            res.body.errors?.map((e) => [e.message, e.extensions]),
            [["Internal server error.", { code: "INTERNAL_SERVER_ERROR" }]],
          );
          assert.doesNotMatch(JSON.stringify(res.body), /posts"? does not exist|no such table|relation|sqlite|SQL/i);

          const logged = errorLogsOf(res.headers.get("x-request-id")!);
          assert.equal(logged.length, 1, "one error line carries the request id");
          assert.match(logged[0].err.message, /no such table: posts|relation "posts" does not exist/);
        });

        it("hides a closed database as INTERNAL_SERVER_ERROR 'Internal server error.', and logs it with the request id", async () => {
          await t.app.database.close();
          const res = await t.gql(`{ posts { id } }`);
          assert.equal(res.status, 200);
          assert.equal(res.body.data, null);
          assert.deepEqual(
            res.body.errors?.map((e) => [e.message, e.extensions]),
            [["Internal server error.", { code: "INTERNAL_SERVER_ERROR" }]],
          );
          assert.doesNotMatch(JSON.stringify(res.body), /destroyed|driver|kysely|stack/i);

          const logged = errorLogsOf(res.headers.get("x-request-id")!);
          assert.equal(logged.length, 1, "one error line carries the request id");
          assert.match(logged[0].err.message, /driver has already been destroyed/);
        });
      } else {
        it("shows the message and stack trace of an internal error to the developer, still as INTERNAL_SERVER_ERROR", async () => {
          await t.app.database.close();
          const res = await t.gql(`{ posts { id } }`);
          assert.equal(res.status, 200);
          assert.deepEqual(codes(res), ["INTERNAL_SERVER_ERROR"]);
          const error = res.body.errors![0]!;
          assert.equal(error.message, "driver has already been destroyed");
          assert.ok(Array.isArray(error.extensions!.stacktrace));
          assert.equal(error.extensions!.stacktrace[0], "Error: driver has already been destroyed");
          assert.equal(errorLogsOf(res.headers.get("x-request-id")!).length, 1);
        });
      }
    });
  }
}
