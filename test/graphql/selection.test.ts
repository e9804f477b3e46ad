import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { buildSchema, graphql } from "graphql";

import { selectsOnly } from "../../src/graphql/selection.js";

const schema = buildSchema(`
  type User { id: ID! username: String! posts: [String!]! }
  type Query { me: User }
`);

/** What selectsOnly said about `me` in `query`, with only `id` and `__typename` allowed. */
async function answer(query: string): Promise<boolean> {
  let seen: boolean | undefined;
  const result = await graphql({
    schema,
    source: query,
    rootValue: {
      me: (_args: unknown, _context: unknown, info: Parameters<typeof selectsOnly>[0]) => {
        seen = selectsOnly(info, new Set(["__typename", "id"]));
        return { id: "1", username: "ada", posts: [] };
      },
    },
  });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  assert.notEqual(seen, undefined, "the resolver did not run");
  return seen!;
}

describe("selectsOnly: whether a field asks for nothing but some fields", () => {
  it("is true for allowed fields, aliased or not", async () => {
    assert.equal(await answer(`{ me { id } }`), true);
    assert.equal(await answer(`{ me { __typename key: id } }`), true);
  });

  it("is false as soon as one other field is asked for", async () => {
    assert.equal(await answer(`{ me { id username } }`), false);
    assert.equal(await answer(`{ me { name: username } }`), false);
  });

  it("looks through named and inline fragments", async () => {
    assert.equal(await answer(`{ me { ...F } } fragment F on User { id }`), true);
    assert.equal(await answer(`{ me { ...F } } fragment F on User { id ... on User { username } }`), false);
    assert.equal(await answer(`{ me { ... on User { id } } }`), true);
    assert.equal(await answer(`{ me { ... { username } } }`), false);
  });

  it("counts a field under @skip or @include, whatever the condition", async () => {
    assert.equal(await answer(`{ me { id username @skip(if: true) } }`), false);
    assert.equal(await answer(`query($no: Boolean! = false) { me { id username @include(if: $no) } }`), false);
  });

  it("sees every occurrence of the field that graphql-js merges into one", async () => {
    assert.equal(await answer(`{ me { id } me { username } }`), false);
    assert.equal(await answer(`{ me { id } me { __typename } }`), true);
  });
});
