import "reflect-metadata";

import type { GraphQLSchema } from "graphql";
import { buildSchema, type ContainerType } from "type-graphql";

import { AuditResolver } from "./audit/audit.resolver.js";
import { authChecker } from "./auth/auth-checker.js";
import { AuthResolver } from "./auth/auth.resolver.js";
import { describeRequirements } from "./auth/requires.js";
import { PostResolver } from "./posts/post.resolver.js";
import { SessionResolver } from "./sessions/session.resolver.js";
import { UserResolver } from "./users/user.resolver.js";
import { validateArgument } from "./validation.js";

export const RESOLVERS = [AuthResolver, UserResolver, PostResolver, SessionResolver, AuditResolver] as const;

/** Resolver instances wired by hand in app.ts, one set per app (no global container). */
export type ResolverInstances = Map<Function, object>;

/**
 * Builds the executable schema: type-graphql resolvers with our auth checker and validation, and
 * each guarded field's description extended with its requirement. With no `instances` the schema
 * can be printed but not executed (used by `npm run schema`).
 */
export async function buildAppSchema(instances: ResolverInstances = new Map()): Promise<GraphQLSchema> {
  const container: ContainerType = {
    get(someClass) {
      const instance = instances.get(someClass as Function);
      if (!instance) throw new Error(`No instance wired for resolver ${(someClass as Function).name}`);
      return instance;
    },
  };
  const schema = await buildSchema({
    resolvers: [...RESOLVERS],
    container,
    authChecker,
    validateFn: validateArgument,
  });
  return describeRequirements(schema);
}
