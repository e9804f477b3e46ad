import "reflect-metadata";

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import {
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isNonNullType,
  isObjectType,
} from "graphql";

import { type Requirement, requirementOf } from "../src/access/requires.js";
import { Role } from "../src/access/roles.js";
import { Scope } from "../src/access/scopes.js";
import { renderSchemaFile } from "../src/emit-schema.js";
import { buildAppSchema } from "../src/schema.js";

/** The repository root: the nearest folder above this file that holds package.json (the build folder varies). */
function findRepositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

const SCHEMA_FILE = join(findRepositoryRoot(), "schema", "schema.graphql");

type AnyField = GraphQLField<unknown, unknown>;

/** Every field of every object type the schema defines (introspection types left out). */
function allFields(schema: GraphQLSchema): Array<{ type: GraphQLObjectType; field: AnyField }> {
  return Object.values(schema.getTypeMap())
    .filter((type): type is GraphQLObjectType => isObjectType(type) && !type.name.startsWith("__"))
    .flatMap((type) => Object.values(type.getFields()).map((field) => ({ type, field })));
}

/** The requirement `@Requires` recorded on a field, or undefined for an unguarded one. */
function requirement(field: AnyField): Requirement | undefined {
  return requirementOf(field.extensions);
}

function rootField(schema: GraphQLSchema, operation: "Query" | "Mutation", name: string): AnyField {
  const type = operation === "Query" ? schema.getQueryType() : schema.getMutationType();
  const field = type?.getFields()[name];
  assert.ok(field, `${operation}.${name} is missing`);
  return field;
}

/** The first line on which two texts differ, for a failure message a person can act on. */
function firstDifference(actual: string, expected: string): string {
  const a = actual.split("\n");
  const e = expected.split("\n");
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i])
      return `line ${i + 1}: committed ${JSON.stringify(a[i] ?? "<end of file>")}, generated ${JSON.stringify(e[i] ?? "<end of file>")}`;
  }
  return "no line differs";
}

describe("the published schema", () => {
  it("is exactly what the resolvers generate, so schema/schema.graphql is not stale", async () => {
    const committed = readFileSync(SCHEMA_FILE, "utf8");
    const generated = await renderSchemaFile();
    assert.ok(
      committed === generated,
      `schema/schema.graphql is stale: run \`npm run schema\` and commit the result (first difference at ${firstDifference(committed, generated)})`,
    );
  });

  it("ends the description of every guarded field with who may call it and with which token", async () => {
    const schema = await buildAppSchema();
    const guarded = allFields(schema).filter(({ field }) => requirement(field) !== undefined);
    assert.ok(guarded.length >= 15, `only ${guarded.length} guarded fields found`);
    for (const { type, field } of guarded) {
      const required = requirement(field)!;
      const stepUp = required.aal === 2 ? " at assurance AAL2 (a second factor proven) when the user has one" : "";
      const expected = required.session
        ? required.fresh
          ? `Requires: signed in with a fresh session token (from a sign-in: login, register, resetPassword or a passkey, and verifyMfa after one; not from refreshToken)${stepUp}; API tokens are refused.`
          : `Requires: signed in with a session token${stepUp}; API tokens are refused.`
        : required.role === Role.ADMIN && required.scope === Scope.ADMIN
          ? `Requires: ADMIN${stepUp}; scope ADMIN.`
          : required.role === undefined
            ? `Requires: signed in${stepUp}; scope ${required.scope}.`
            : undefined;
      assert.ok(expected, `${type.name}.${field.name} requires ${JSON.stringify(required)}, which no test expects`);
      const description = field.description ?? "";
      assert.ok(
        description.endsWith(expected),
        `${type.name}.${field.name}: ${JSON.stringify(description)} does not end with "${expected}"`,
      );
      assert.equal(
        description.split("Requires:").length,
        2,
        `${type.name}.${field.name} states its requirement more than once`,
      );
    }
  });

  it("names the requirement the resolvers enforce: the contract's scope and role for each guarded root field", async () => {
    const schema = await buildAppSchema();
    const ADMIN_ONLY: Requirement = { role: Role.ADMIN, scope: Scope.ADMIN };
    const cases: Array<readonly ["Query" | "Mutation", string, Requirement]> = [
      ["Query", "me", { scope: Scope.PROFILE_READ }],
      ["Query", "users", ADMIN_ONLY],
      ["Query", "auditEvents", ADMIN_ONLY],
      ["Mutation", "createPost", { scope: Scope.POSTS_WRITE }],
      ["Mutation", "updatePost", { scope: Scope.POSTS_WRITE }],
      ["Mutation", "deletePost", { scope: Scope.POSTS_WRITE }],
      ["Mutation", "setUserRoles", ADMIN_ONLY],
      ["Mutation", "revokeUserSessions", ADMIN_ONLY],
      ["Query", "sessions", { session: true }],
      ["Query", "apiTokens", { session: true }],
      ["Mutation", "logout", { session: true }],
      ["Mutation", "revokeSession", { session: true }],
      ["Mutation", "revokeApiToken", { session: true }],
      ["Mutation", "changePassword", { session: true, fresh: true, aal: 2 }],
      ["Mutation", "createApiToken", { session: true, fresh: true, aal: 2 }],
      ["Mutation", "deleteAccount", { session: true, fresh: true, aal: 2 }],
    ];
    for (const [operation, name, expected] of cases) {
      assert.deepEqual(requirement(rootField(schema, operation, name)), expected, `${operation}.${name}`);
    }
  });

  it("leaves the public fields posts, post, register and login unguarded and without a requirement", async () => {
    const schema = await buildAppSchema();
    for (const [operation, name] of [
      ["Query", "posts"],
      ["Query", "post"],
      ["Mutation", "register"],
      ["Mutation", "login"],
      ["Mutation", "refreshToken"],
    ] as const) {
      const field = rootField(schema, operation, name);
      assert.equal(requirement(field), undefined, `${operation}.${name} is guarded`);
      assert.ok(
        !field.description?.includes("Requires:"),
        `${operation}.${name} claims a requirement: ${JSON.stringify(field.description)}`,
      );
    }
  });

  it("claims a requirement only on fields that enforce one", async () => {
    const schema = await buildAppSchema();
    for (const { type, field } of allFields(schema)) {
      if (field.description?.includes("Requires:")) {
        assert.ok(requirement(field), `${type.name}.${field.name} says "Requires:" but nothing enforces it`);
      }
    }
  });

  it("states each requirement once, however many schemas are built in one process", async () => {
    await buildAppSchema();
    const schema = await buildAppSchema();
    assert.equal(
      rootField(schema, "Query", "me").description,
      "The signed-in user.\n\nRequires: signed in; scope PROFILE_READ.",
    );
  });
});

describe("the contract's names", () => {
  it("has the object types User, Post and AuthPayload with the contract's fields", async () => {
    const schema = await buildAppSchema();
    const expected: Record<string, Record<string, string>> = {
      User: { id: "ID!", username: "String!", roles: "[Role!]!", createdAt: "DateTimeISO!", posts: "[Post!]!" },
      Post: {
        id: "ID!",
        title: "String!",
        body: "String!",
        author: "User!",
        createdAt: "DateTimeISO!",
        updatedAt: "DateTimeISO!",
      },
      AuthPayload: {
        accessToken: "String!",
        // Round 2: null in cookie mode, where the refresh token travels as a cookie.
        refreshToken: "String",
        tokenType: "String!",
        expiresIn: "Int!",
        user: "User!",
      },
      Session: {
        id: "ID!",
        createdAt: "DateTimeISO!",
        lastUsedAt: "DateTimeISO",
        userAgent: "String",
        current: "Boolean!",
      },
    };
    for (const [typeName, fields] of Object.entries(expected)) {
      const type = schema.getType(typeName);
      assert.ok(isObjectType(type), `${typeName} is not an object type`);
      for (const [fieldName, fieldType] of Object.entries(fields)) {
        assert.equal(String(type.getFields()[fieldName]?.type), fieldType, `${typeName}.${fieldName}`);
      }
    }
  });

  it("has the enum Role with exactly USER and ADMIN", async () => {
    const schema = await buildAppSchema();
    const role = schema.getType("Role");
    assert.ok(isEnumType(role), "Role is not an enum");
    assert.deepEqual(
      role.getValues().map((v) => v.name),
      ["USER", "ADMIN"],
    );
  });

  it("has the contract's queries and mutations with its argument names and types", async () => {
    const schema = await buildAppSchema();
    const expected = [
      ["Query", "me", "User!", {}],
      ["Query", "users", "[User!]!", {}],
      ["Query", "posts", "[Post!]!", {}],
      ["Query", "post", "Post", { id: "ID!" }],
      ["Mutation", "register", "AuthPayload!", { input: "RegisterInput!" }],
      ["Mutation", "login", "AuthPayload!", { input: "LoginInput!" }],
      ["Mutation", "createPost", "Post!", { input: "CreatePostInput!" }],
      ["Mutation", "updatePost", "Post!", { id: "ID!", input: "UpdatePostInput!" }],
      ["Mutation", "deletePost", "Boolean!", { id: "ID!" }],
      ["Mutation", "setUserRoles", "User!", { userId: "ID!", roles: "[Role!]!" }],
      ["Query", "sessions", "[Session!]!", {}],
      // Round 2: without the argument, the cookie of cookie mode is used.
      ["Mutation", "refreshToken", "AuthPayload!", { refreshToken: "String" }],
      ["Mutation", "logout", "Boolean!", {}],
      ["Mutation", "revokeSession", "Boolean!", { id: "ID!" }],
      ["Mutation", "changePassword", "Boolean!", { input: "ChangePasswordInput!" }],
    ] as const;
    for (const [operation, name, returns, args] of expected) {
      const field = rootField(schema, operation, name);
      assert.equal(String(field.type), returns, `${operation}.${name} returns ${String(field.type)}`);
      for (const [argName, argType] of Object.entries(args)) {
        const arg = field.args.find((a) => a.name === argName);
        assert.ok(arg, `${operation}.${name} has no argument ${argName}`);
        assert.equal(String(arg.type), argType, `${operation}.${name}(${argName})`);
      }
      // The contract allows added arguments only when callers may leave them out.
      for (const arg of field.args.filter((a) => !(a.name in args))) {
        assert.ok(
          !isNonNullType(arg.type) || arg.defaultValue !== undefined,
          `${operation}.${name}(${arg.name}) is an added required argument`,
        );
      }
    }
  });

  it("has the contract's input types with their field names, and adds no required ones", async () => {
    const schema = await buildAppSchema();
    const expected: Record<string, Record<string, string>> = {
      RegisterInput: { username: "String!", password: "String!", useCookie: "Boolean" },
      LoginInput: { username: "String!", password: "String!", useCookie: "Boolean" },
      CreatePostInput: { title: "String!", body: "String!" },
      UpdatePostInput: { title: "String", body: "String" },
      ChangePasswordInput: { currentPassword: "String!", newPassword: "String!" },
    };
    for (const [typeName, fields] of Object.entries(expected)) {
      const type = schema.getType(typeName);
      assert.ok(isInputObjectType(type), `${typeName} is not an input type`);
      for (const field of Object.values(type.getFields())) {
        if (field.name in fields) assert.equal(String(field.type), fields[field.name], `${typeName}.${field.name}`);
        else
          assert.ok(
            !isNonNullType(field.type) || field.defaultValue !== undefined,
            `${typeName}.${field.name} is an added required field`,
          );
      }
      for (const name of Object.keys(fields)) assert.ok(type.getFields()[name], `${typeName}.${name} is missing`);
    }
  });
});
