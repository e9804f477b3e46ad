import "reflect-metadata";

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { type GraphQLSchema, type OperationDefinitionNode, Kind, parse } from "graphql";

import { operationCost } from "../../src/graphql/query-cost.js";
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

  it("prices the operation that runs, not the others in the document", () => {
    const document = parse(`query Small { __typename } query Big { posts(first: 100) { id } }`);
    const [small, big] = document.definitions as OperationDefinitionNode[];
    assert.equal(operationCost({ schema, document, operation: small! }), 1);
    assert.equal(operationCost({ schema, document, operation: big! }), 300);
  });
});
