// The auth checker's assurance rules, on a schema of its own (no Apollo, so no HTTP gate in front):
// a session that owes its second factor reaches no guarded root field but those of
// MFA_PENDING_FIELDS; `aal: 2` is step-up (MFA_REQUIRED for such a session, a user without a second
// factor passes); MFA_REQUIRED_ROLES is strict (MFA_ENROLLMENT_REQUIRED for a user without one).
import "reflect-metadata";

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { execute, type GraphQLSchema, parse } from "graphql";
import { buildSchema, Field, Mutation, ObjectType, Query, Resolver } from "type-graphql";

import { createAuthChecker, MFA_REQUIRED_MESSAGE, mfaEnrollmentRequiredError } from "../../src/access/auth-checker.js";
import type { Principal, SessionPrincipal } from "../../src/access/principal.js";
import { Requires } from "../../src/access/requires.js";
import { Role } from "../../src/access/roles.js";
import { Scope } from "../../src/access/scopes.js";

@ObjectType()
class Profile {
  @Field(() => String)
  name!: string;

  @Field(() => String)
  @Requires({ scope: Scope.PROFILE_READ })
  secret!: string;
}

@Resolver()
class AssuranceResolver {
  @Query(() => Profile)
  @Requires({ scope: Scope.PROFILE_READ })
  me(): Profile {
    return Object.assign(new Profile(), { name: "me", secret: "s" });
  }

  @Query(() => String)
  @Requires({ scope: Scope.PROFILE_READ })
  profile(): string {
    return "profile";
  }

  @Query(() => String)
  @Requires({ session: true, aal: 2 })
  stepUp(): string {
    return "stepUp";
  }

  @Query(() => String)
  @Requires({ scope: Scope.PROFILE_READ, aal: 2 })
  stepUpScoped(): string {
    return "stepUpScoped";
  }

  @Query(() => String)
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN })
  admin(): string {
    return "admin";
  }

  @Mutation(() => String)
  @Requires({ session: true })
  enrollTotp(): string {
    return "enrollTotp";
  }
}

function session(assurance: Pick<SessionPrincipal, "aal" | "mfaPending">, roles = [Role.USER]): SessionPrincipal {
  return {
    kind: "session",
    userId: "u1",
    roles,
    sessionId: "s1",
    tokenId: "t1",
    fresh: true,
    amr: assurance.aal === 2 ? ["pwd", "otp"] : ["pwd"],
    ...assurance,
  };
}

const AAL1 = session({ aal: 1, mfaPending: false });
const PENDING = session({ aal: 1, mfaPending: true });
const AAL2 = session({ aal: 2, mfaPending: false });
const ADMIN_AAL1 = session({ aal: 1, mfaPending: false }, [Role.ADMIN, Role.USER]);
const ADMIN_PENDING = session({ aal: 1, mfaPending: true }, [Role.ADMIN, Role.USER]);
const ADMIN_AAL2 = session({ aal: 2, mfaPending: false }, [Role.ADMIN, Role.USER]);
const ADMIN_TOKEN: Principal = {
  kind: "api_token",
  userId: "u1",
  roles: [Role.ADMIN, Role.USER],
  apiTokenId: "a1",
  scopes: [Scope.ADMIN, Scope.PROFILE_READ],
  ownerRoles: [Role.ADMIN, Role.USER],
};

const MFA_REQUIRED = ["FORBIDDEN", "MFA_REQUIRED", MFA_REQUIRED_MESSAGE];
const enrollmentRequired = (role: Role) => [
  "FORBIDDEN",
  "MFA_ENROLLMENT_REQUIRED",
  mfaEnrollmentRequiredError(role).message,
];
const ROLE = ["FORBIDDEN", "ROLE", "This needs the ADMIN role."];
const SCOPE = ["FORBIDDEN", "SCOPE", "API tokens cannot be used here: sign in for a session token."];

type Case = readonly [operation: string, principal: Principal, expected: unknown];

function runCases(title: string, mfaRequiredRoles: readonly Role[], cases: readonly Case[]): void {
  describe(title, () => {
    let schema: GraphQLSchema;
    before(async () => {
      schema = await buildSchema({
        resolvers: [AssuranceResolver],
        authChecker: createAuthChecker({ mfaRequiredRoles }),
      });
    });
    for (const [operation, principal, expected] of cases) {
      const who =
        principal.kind === "session"
          ? `${principal.roles.join("+")} aal${principal.aal}${principal.mfaPending ? " pending" : ""}`
          : "ADMIN API token";
      it(`${operation} as ${who}: ${JSON.stringify(expected)}`, async () => {
        const result = await execute({ schema, document: parse(operation), contextValue: { principal } });
        const error = result.errors?.[0];
        const got = error
          ? [error.extensions.code, error.extensions.reason, error.message]
          : JSON.parse(JSON.stringify(result.data));
        assert.deepEqual(got, expected);
      });
    }
  });
}

runCases(
  "the auth checker without MFA_REQUIRED_ROLES",
  [],
  [
    ["{ me { name secret } }", PENDING, { me: { name: "me", secret: "s" } }],
    ["{ profile }", PENDING, MFA_REQUIRED],
    ["{ profile }", AAL1, { profile: "profile" }],
    ["{ stepUp }", PENDING, MFA_REQUIRED],
    ["{ stepUp }", AAL1, { stepUp: "stepUp" }],
    ["{ stepUp }", AAL2, { stepUp: "stepUp" }],
    ["{ stepUp }", ADMIN_TOKEN, SCOPE],
    ["{ stepUpScoped }", ADMIN_TOKEN, { stepUpScoped: "stepUpScoped" }],
    ["{ admin }", ADMIN_AAL1, { admin: "admin" }],
    ["mutation { enrollTotp }", PENDING, MFA_REQUIRED],
  ],
);

runCases(
  "the auth checker with MFA_REQUIRED_ROLES=ADMIN",
  [Role.ADMIN],
  [
    ["{ admin }", ADMIN_AAL1, enrollmentRequired(Role.ADMIN)],
    ["{ admin }", ADMIN_PENDING, MFA_REQUIRED],
    ["{ admin }", ADMIN_AAL2, { admin: "admin" }],
    ["{ admin }", ADMIN_TOKEN, { admin: "admin" }],
    ["{ admin }", AAL1, ROLE],
    ["{ profile }", ADMIN_AAL1, { profile: "profile" }],
    ["{ me { name } }", ADMIN_AAL1, { me: { name: "me" } }],
  ],
);

runCases(
  "the auth checker with MFA_REQUIRED_ROLES=USER",
  [Role.USER],
  [
    ["{ profile }", AAL1, enrollmentRequired(Role.USER)],
    ["{ profile }", AAL2, { profile: "profile" }],
    ["{ profile }", ADMIN_TOKEN, { profile: "profile" }],
    ["{ stepUp }", AAL1, enrollmentRequired(Role.USER)],
    ["{ me { name secret } }", AAL1, { me: { name: "me", secret: "s" } }],
    ["mutation { enrollTotp }", AAL1, { enrollTotp: "enrollTotp" }],
    ["{ admin }", ADMIN_AAL1, enrollmentRequired(Role.USER)],
    ["{ admin }", ADMIN_AAL2, { admin: "admin" }],
  ],
);
