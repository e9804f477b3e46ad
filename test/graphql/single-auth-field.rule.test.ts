import "reflect-metadata";

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { type GraphQLSchema, parse, validate } from "graphql";

import { SINGLE_AUTH_FIELD_MESSAGE, singleAuthFieldRule } from "../../src/graphql/single-auth-field.rule.js";
import { buildAppSchema } from "../../src/schema.js";

const LOGIN = `login(input: { username: "u", password: "p" }) { accessToken }`;
const REGISTER = `register(input: { username: "u", password: "p" }) { accessToken }`;

describe("the one-auth-field-per-operation validation rule", () => {
  let schema: GraphQLSchema;
  before(async () => {
    schema = await buildAppSchema();
  });

  /** The messages of this rule alone for `document`. */
  function problems(document: string): string[] {
    return validate(schema, parse(document), [singleAuthFieldRule]).map((e) => e.message);
  }

  const accepted: Array<[string, string]> = [
    ["one login", `mutation { ${LOGIN} }`],
    [
      "one login next to other mutations",
      `mutation { ${LOGIN} logout createPost(input: { title: "t", body: "b" }) { id } }`,
    ],
    ["one login in each of two operations", `mutation A { ${LOGIN} } mutation B { ${LOGIN} }`],
    ["a query, which cannot hold them", `{ posts { id } me { id } }`],
    [
      "one register reached through nested fragments",
      `mutation { ...A } fragment A on Mutation { ...B } fragment B on Mutation { ${REGISTER} }`,
    ],
    [
      "a fragment cycle holding one login (another rule refuses the cycle; this one must end)",
      `mutation { ...A } fragment A on Mutation { ${LOGIN} ...B } fragment B on Mutation { ...A }`,
    ],
  ];
  for (const [name, document] of accepted) {
    it(`accepts ${name}`, () => {
      assert.deepEqual(problems(document), []);
    });
  }

  const refused: Array<[string, string]> = [
    ["two aliased logins", `mutation { a: ${LOGIN} b: ${LOGIN} }`],
    ["login and register", `mutation { ${LOGIN} ${REGISTER} }`],
    [
      "refreshToken and changePassword",
      `mutation { refreshToken(refreshToken: "x") { accessToken } changePassword(input: { currentPassword: "a", newPassword: "b" }) }`,
    ],
    [
      "a login inside an inline fragment next to one outside",
      `mutation { ... on Mutation { a: ${LOGIN} } b: ${LOGIN} }`,
    ],
    ["a fragment with one login spread twice", `mutation { ...L ...L } fragment L on Mutation { ${LOGIN} }`],
    [
      "a fragment spread twice two levels down",
      `mutation { ...A } fragment A on Mutation { ...B ...B } fragment B on Mutation { ${REGISTER} }`,
    ],
    [
      "a login in one fragment and a register in another",
      `mutation { ...A ...B } fragment A on Mutation { ${LOGIN} } fragment B on Mutation { ${REGISTER} }`,
    ],
  ];
  for (const [name, document] of refused) {
    it(`refuses ${name}, once, with a message naming the fields`, () => {
      assert.deepEqual(problems(document), [SINGLE_AUTH_FIELD_MESSAGE]);
    });
  }

  it("reports each offending operation of a document separately", () => {
    assert.deepEqual(
      problems(`mutation A { a: ${LOGIN} b: ${LOGIN} } mutation B { ${LOGIN} } mutation C { ${REGISTER} ${LOGIN} }`),
      [SINGLE_AUTH_FIELD_MESSAGE, SINGLE_AUTH_FIELD_MESSAGE],
    );
  });
});
