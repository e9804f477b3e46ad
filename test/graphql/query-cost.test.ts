import "reflect-metadata";

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import {
  getNamedType,
  type GraphQLSchema,
  GraphQLString,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  Kind,
  type OperationDefinitionNode,
  parse,
} from "graphql";

import { maxLengthOf, operationCost } from "../../src/graphql/query-cost.js";
import { buildAppSchema } from "../../src/schema.js";

describe("operationCost", () => {
  let schema: GraphQLSchema;
  before(async () => {
    schema = await buildAppSchema();
  });

  /** The cost of the document's only operation with these variables. */
  const cost = (query: string, variables?: Record<string, unknown>) => {
    const document = parse(query);
    const operation = document.definitions.find(
      (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
    )!;
    return operationCost({ schema, document, operation, variables });
  };

  it("prices a scalar 1, an object 2 plus its selection, and a list its first times that", () => {
    assert.equal(cost(`{ __typename }`), 1);
    assert.equal(cost(`{ post(id: "x") { id title } }`), 2 + 2);
    assert.equal(cost(`{ posts(first: 3) { id title } }`), 3 * (2 + 2));
    // roles is a list without first: it counts once, like any scalar.
    assert.equal(cost(`{ me { roles } }`), 2 + 1);
  });

  it("takes first from a literal, a variable, the variable's default or the argument's default, in that order", () => {
    assert.equal(cost(`{ posts { id } }`), 50 * 3);
    assert.equal(cost(`{ posts(first: 7) { id } }`), 7 * 3);
    assert.equal(cost(`query($n: Int!) { posts(first: $n) { id } }`, { n: 9 }), 9 * 3);
    assert.equal(cost(`query($n: Int! = 11) { posts(first: $n) { id } }`, {}), 11 * 3);
    assert.equal(cost(`query($n: Int! = 11) { posts(first: $n) { id } }`, { n: 4 }), 4 * 3);
    assert.equal(cost(`query($n: Int) { me { posts(first: $n) { id } } }`, {}), 2 + 20 * 3);
    assert.equal(cost(`query($n: Int) { me { posts(first: $n) { id } } }`, { n: null }), 2 + 20 * 3);
    assert.equal(cost(`{ me { posts(first: null) { id } } }`), 2 + 20 * 3);
  });

  it("counts a first over 100 as 100 and one below 1 as nothing, since those lists are refused before their selection runs", () => {
    assert.equal(cost(`{ posts(first: 1000000) { id } }`), 100 * 3);
    assert.equal(cost(`query($n: Int!) { posts(first: $n) { id } }`, { n: 2 ** 40 }), 100 * 3);
    assert.equal(cost(`{ posts(first: 0) { id } }`), 0);
    assert.equal(cost(`{ posts(first: -3) { id } __typename }`), 1);
    // A variable of the wrong type is refused when it is coerced; until then it counts as the default.
    assert.equal(cost(`query($n: Int!) { posts(first: $n) { id } }`, { n: "100" }), 50 * 3);
  });

  it("multiplies nested lists: users × their posts", () => {
    assert.equal(cost(`{ users { posts { id } } }`), 50 * (2 + 20 * 3));
    assert.equal(
      cost(`query($a: Int, $b: Int) { users(first: $a) { posts(first: $b) { id } } }`, { a: 100, b: 100 }),
      100 * (2 + 100 * 3),
    );
  });

  it("counts fragments where they are spread, inline fragments too, and introspection not at all", () => {
    const viaFragments = cost(
      `query($n: Int) { posts(first: $n) { ...P author { ... on User { id } } } } fragment P on Post { id title }`,
      { n: 10 },
    );
    assert.equal(viaFragments, 10 * (2 + 2 + (2 + 1)));
    assert.equal(
      cost(`{ a: posts(first: 2) { ...P } b: posts(first: 3) { ...P } } fragment P on Post { id title }`),
      2 * 4 + 3 * 4,
    );
    assert.equal(cost(`{ __schema { types { name fields { name } } } __type(name: "Post") { name } }`), 0);
  });

  it("reads a declared maximum length on every String and custom-scalar field the schema answers with", () => {
    const unbounded: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith("__") || !(isObjectType(type) || isInterfaceType(type))) continue;
      for (const field of Object.values(type.getFields())) {
        const named = getNamedType(field.type);
        const isText = named === GraphQLString || (isScalarType(named) && !isSpecifiedScalarType(named));
        if (isText && maxLengthOf(field) === undefined) unbounded.push(`${type.name}.${field.name}: ${named.name}`);
      }
    }
    assert.deepEqual(
      unbounded,
      [],
      "declare each one's maximum length with @Bounded (or the scalar's in SCALAR_MAX_LENGTHS)",
    );
  });

  it("prices text by its declared maximum length: one unit per started 1,000 characters, at least 1", () => {
    // title (200) 1, body (20,000) 20; ids, dates and usernames 1 each.
    assert.equal(cost(`{ post(id: "x") { title body } }`), 2 + 1 + 20);
    assert.equal(cost(`{ post(id: "x") { createdAt author { username } } }`), 2 + 1 + (2 + 1));
    assert.equal(cost(`{ posts(first: 100) { body } }`), 100 * (2 + 20));
    // The access token's 4,096 characters cost 5.
    assert.equal(cost(`mutation { login(input: { username: "a", password: "b" }) { accessToken } }`), 2 + 5);
  });

  it("refuses the amplification of issue 22: 1,600 bodies from 125 bytes cost 35,364, not 4,964", () => {
    const attack = `{ post(id: "x") { author { posts(first: 40) { author { posts(first: 40) { body } } } } } }`;
    assert.equal(cost(attack), 2 + 2 + 40 * (2 + 2 + 40 * (2 + 20)));
    assert.equal(cost(attack), 35_364);
  });

  it("prices a long alias one unit per full 100 characters, in every item of the lists around it", () => {
    const alias = "a".repeat(5_000);
    assert.equal(cost(`{ posts(first: 10) { ${alias}: id } }`), 10 * (2 + 1 + 50));
    assert.equal(cost(`{ ${alias}: posts(first: 10) { id } }`), 10 * (2 + 50 + 1));
    assert.equal(cost(`{ ${alias}: __typename }`), 1 + 50);
    assert.equal(cost(`{ ${"b".repeat(99)}: __typename }`), 1);
  });

  it("prices the operation that runs, not the others in the document", () => {
    const document = parse(`query Small { __typename } query Big { posts(first: 100) { id } }`);
    const [small, big] = document.definitions as OperationDefinitionNode[];
    assert.equal(operationCost({ schema, document, operation: small! }), 1);
    assert.equal(operationCost({ schema, document, operation: big! }), 300);
  });
});
