import "reflect-metadata";

import type { GraphQLSchema } from "graphql";
import { buildSchema, type ClassType, type ContainerType } from "type-graphql";

import { createAuthChecker } from "./access/auth-checker.js";
import { describeRequirements } from "./access/requires.js";
import type { Config } from "./config.js";
import { resolverClasses } from "./features.js";
import { LocalPubSub } from "./graphql/pub-sub.js";
import { validateArgument } from "./graphql/validation.js";
import type { Services } from "./services.js";

/**
 * Builds the executable schema: type-graphql resolvers with our auth checker and validation, and
 * each guarded field's description extended with its requirement. The resolver classes are every
 * feature's, in the order of features.ts; their instances are those the features built into
 * `services`, one set per app (no global container). Without `services` the schema can be printed
 * but not executed (`npm run schema`, tests of its shape). `mfa` gives the auth checker
 * MFA_REQUIRED_ROLES (default: none); the descriptions never depend on it, so the published schema
 * is the same under every configuration.
 */
export async function buildAppSchema(
  services?: Services,
  mfa: Pick<Config["mfa"], "requiredRoles"> = { requiredRoles: [] },
): Promise<GraphQLSchema> {
  const resolvers = resolverClasses();
  const instances = new Map<ClassType, object>(
    services?.resolvers.map((instance) => [instance.constructor as ClassType, instance]) ?? [],
  );
  const container: ContainerType = {
    get(someClass) {
      const instance = instances.get(someClass as ClassType);
      if (!instance) throw new Error(`No instance wired for resolver ${(someClass as ClassType).name}`);
      return instance;
    },
  };
  const schema = await buildSchema({
    resolvers: resolvers as [ClassType, ...ClassType[]],
    container,
    authChecker: createAuthChecker({
      onApiTokenUse: (scope) => services?.metrics.apiTokenUsed(scope),
      mfaRequiredRoles: mfa.requiredRoles,
    }),
    validateFn: validateArgument,
    // Without services (printing the schema) nothing is ever published.
    pubSub: services?.events ?? new LocalPubSub(),
  });
  return describeRequirements(schema);
}
