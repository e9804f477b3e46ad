// The credential mutations are declared once, with @CredentialMutation, and both lists are read off
// the built schema: the validation rule's (at most one per operation) and the bearer check's (an
// operation of only those that ignore the Authorization header runs anonymously). A mutation that
// gains the decorator joins both; the app's own declaration matches the rule's documented message.
import "reflect-metadata";

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { type GraphQLSchema, parse, validate } from "graphql";
import { Arg, buildSchema, Mutation, Query, Resolver } from "type-graphql";

import { createAuthChecker } from "../../src/access/auth-checker.js";
import { type BearerDeps, type BearerRequest, createContextFunction } from "../../src/access/bearer.js";
import { credentialFieldsOf, CredentialMutation } from "../../src/access/credential-operations.js";
import { Requires } from "../../src/access/requires.js";
import { ErrorCode, ErrorReason } from "../../src/errors.js";
import { SINGLE_AUTH_FIELD_MESSAGE, singleAuthFieldRule } from "../../src/graphql/single-auth-field.rule.js";
import { buildAppSchema } from "../../src/schema.js";

@Resolver()
class NewFeatureResolver {
  @Query(() => Boolean)
  ready(): boolean {
    return true;
  }

  @Mutation(() => Boolean)
  @CredentialMutation({ ignoresAuthorization: true })
  resetPassword(@Arg("token") _token: string): boolean {
    return true;
  }

  @Mutation(() => Boolean)
  @CredentialMutation()
  @Requires({ session: true })
  confirmPassword(@Arg("password") _password: string): boolean {
    return true;
  }

  @Mutation(() => Boolean)
  ping(): boolean {
    return true;
  }
}

@Resolver()
class ContradictoryResolver {
  @Query(() => Boolean)
  ready(): boolean {
    return true;
  }

  @Mutation(() => Boolean)
  @CredentialMutation({ ignoresAuthorization: true })
  @Requires({ session: true })
  both(): boolean {
    return true;
  }
}

function buildWith(resolver: typeof NewFeatureResolver | typeof ContradictoryResolver): Promise<GraphQLSchema> {
  return buildSchema({ resolvers: [resolver], authChecker: createAuthChecker() });
}

/** The messages of the single-auth-field rule alone for `document`. */
function problems(schema: GraphQLSchema, document: string): string[] {
  return validate(schema, parse(document), [singleAuthFieldRule]).map((e) => e.message);
}

/** The context of a request whose Authorization header is refused before any token service is asked. */
function contextOf(schema: GraphQLSchema, query: string) {
  const bearer = createContextFunction({
    ...({} as BearerDeps),
    maxTokens: 1000,
    ignoringAuthorization: credentialFieldsOf(schema).ignoringAuthorization,
    onRejected: () => {},
  });
  const request: BearerRequest = { id: "r1", ip: "127.0.0.1", headers: { authorization: "Basic x" }, body: { query } };
  return bearer(request);
}

describe("credential mutations, declared once", () => {
  describe("in the app's schema", () => {
    let schema: GraphQLSchema;
    before(async () => {
      schema = await buildAppSchema();
    });

    it("are login, register, refreshToken, changePassword, resetPassword, verifyEmail and the two passkey answers; changePassword, verifyEmail and verifyMfaWithPasskey use the caller's token", () => {
      const fields = credentialFieldsOf(schema);
      assert.deepEqual([...fields.all].sort(), [
        "changePassword",
        "finishPasskeySignIn",
        "login",
        "refreshToken",
        "register",
        "resetPassword",
        "verifyEmail",
        "verifyMfaWithPasskey",
      ]);
      assert.deepEqual([...fields.ignoringAuthorization].sort(), [
        "finishPasskeySignIn",
        "login",
        "refreshToken",
        "register",
        "resetPassword",
      ]);
    });

    it("are exactly the mutations the rule's documented message names", () => {
      const named = /at most one of (.*?) \(/.exec(SINGLE_AUTH_FIELD_MESSAGE)![1]!.split(/, | and /);
      assert.deepEqual(named.sort(), [...credentialFieldsOf(schema).all].sort());
    });
  });

  describe("a new mutation with the decorator", () => {
    let schema: GraphQLSchema;
    before(async () => {
      schema = await buildWith(NewFeatureResolver);
    });

    it("joins the list of the single-auth-field rule, with or without ignoresAuthorization", () => {
      assert.deepEqual([...credentialFieldsOf(schema).all].sort(), ["confirmPassword", "resetPassword"]);
      assert.deepEqual(problems(schema, `mutation { a: resetPassword(token: "x") b: resetPassword(token: "y") }`), [
        SINGLE_AUTH_FIELD_MESSAGE,
      ]);
      assert.deepEqual(problems(schema, `mutation { resetPassword(token: "x") confirmPassword(password: "p") }`), [
        SINGLE_AUTH_FIELD_MESSAGE,
      ]);
      assert.deepEqual(problems(schema, `mutation { resetPassword(token: "x") ping }`), []);
    });

    it("joins the list the bearer check lets through anonymously only when it ignores the Authorization header", async () => {
      assert.deepEqual([...credentialFieldsOf(schema).ignoringAuthorization], ["resetPassword"]);
      const context = await contextOf(schema, `mutation { resetPassword(token: "x") }`);
      assert.equal(context.principal, null);
      for (const query of [
        `mutation { confirmPassword(password: "p") }`,
        `mutation { resetPassword(token: "x") ping }`,
      ]) {
        await assert.rejects(contextOf(schema, query), (error: { extensions: Record<string, unknown> }) => {
          assert.equal(error.extensions.code, ErrorCode.UNAUTHENTICATED);
          assert.equal(error.extensions.reason, ErrorReason.TOKEN_INVALID);
          return true;
        });
      }
    });

    it("cannot both ignore the Authorization header and be guarded by @Requires", async () => {
      const contradictory = await buildWith(ContradictoryResolver);
      assert.throws(() => credentialFieldsOf(contradictory), {
        message: "Mutation.both ignores the Authorization header but is guarded by @Requires",
      });
    });
  });
});
