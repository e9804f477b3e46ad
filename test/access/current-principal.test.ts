// @CurrentPrincipal() and @CurrentSession() hand a resolver the caller the guard has checked. On a
// guarded field the guard refuses first; on a field without one the decorators refuse the same way,
// with the same code, reason and message.
import "reflect-metadata";

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { execute, type GraphQLSchema, parse } from "graphql";
import { buildSchema, Query, Resolver } from "type-graphql";

import { createAuthChecker } from "../../src/access/auth-checker.js";
import { CurrentPrincipal, CurrentSession } from "../../src/access/current-principal.js";
import type { Principal, SessionPrincipal } from "../../src/access/principal.js";
import { Requires } from "../../src/access/requires.js";
import { Role } from "../../src/access/roles.js";
import { Scope } from "../../src/access/scopes.js";

@Resolver()
class CallerResolver {
  @Query(() => String)
  @Requires({ scope: Scope.PROFILE_READ })
  guardedPrincipal(@CurrentPrincipal() principal: Principal): string {
    return principal.userId;
  }

  @Query(() => String)
  @Requires({ session: true })
  guardedSession(@CurrentSession() session: SessionPrincipal): string {
    return session.sessionId;
  }

  @Query(() => String)
  unguardedPrincipal(@CurrentPrincipal() principal: Principal): string {
    return principal.userId;
  }

  @Query(() => String)
  unguardedSession(@CurrentSession() session: SessionPrincipal): string {
    return session.sessionId;
  }
}

const SESSION: SessionPrincipal = {
  kind: "session",
  userId: "u1",
  roles: [Role.USER],
  sessionId: "s1",
  tokenId: "t1",
  fresh: false,
  aal: 1,
  amr: ["pwd"],
  mfaPending: false,
};
const API_TOKEN: Principal = {
  kind: "api_token",
  userId: "u1",
  roles: [Role.USER],
  apiTokenId: "a1",
  scopes: [Scope.PROFILE_READ],
  ownerRoles: [Role.USER],
};
const NOT_SIGNED_IN = ["UNAUTHENTICATED", "NOT_SIGNED_IN", "You must be signed in to do this."];
const SESSION_ONLY = ["FORBIDDEN", "SCOPE", "API tokens cannot be used here: sign in for a session token."];

describe("the caller as a resolver parameter", () => {
  let schema: GraphQLSchema;
  before(async () => {
    schema = await buildSchema({ resolvers: [CallerResolver], authChecker: createAuthChecker() });
  });

  /** The field's value, or its error's code, reason and message. */
  async function ask(field: string, principal: Principal | null): Promise<string | unknown[]> {
    const result = await execute({ schema, document: parse(`{ ${field} }`), contextValue: { principal } });
    const error = result.errors?.[0];
    if (error) return [error.extensions.code, error.extensions.reason, error.message];
    return (result.data as Record<string, string>)[field]!;
  }

  const cases: Array<[string, Principal | null, string | string[]]> = [
    ["guardedPrincipal", SESSION, "u1"],
    ["guardedPrincipal", API_TOKEN, "u1"],
    ["guardedPrincipal", null, NOT_SIGNED_IN],
    ["guardedSession", SESSION, "s1"],
    ["guardedSession", API_TOKEN, SESSION_ONLY],
    ["guardedSession", null, NOT_SIGNED_IN],
    ["unguardedPrincipal", API_TOKEN, "u1"],
    ["unguardedPrincipal", null, NOT_SIGNED_IN],
    ["unguardedSession", SESSION, "s1"],
    ["unguardedSession", API_TOKEN, SESSION_ONLY],
    ["unguardedSession", null, NOT_SIGNED_IN],
  ];
  for (const [field, principal, expected] of cases) {
    it(`${field} with ${principal ? `a ${principal.kind} principal` : "no principal"}: ${String(expected)}`, async () => {
      assert.deepEqual(await ask(field, principal), expected);
    });
  }
});
