import "reflect-metadata";

import type { GraphQLSchema } from "graphql";
import { buildSchema, type ClassType, type ContainerType } from "type-graphql";

import { AccountResolver } from "./accounts/account.resolver.js";
import { createAuthChecker } from "./access/auth-checker.js";
import { describeRequirements } from "./access/requires.js";
import { ApiTokenResolver } from "./api-tokens/api-token.resolver.js";
import { AuditResolver } from "./audit/audit.resolver.js";
import { AuthResolver } from "./auth/auth.resolver.js";
import { type EventBus, LocalPubSub } from "./graphql/pub-sub.js";
import { withReplays } from "./graphql/replay.js";
import { PostTopic } from "./posts/post-events.js";
import { validateArgument } from "./graphql/validation.js";
import { PostResolver } from "./posts/post.resolver.js";
import { UserPostsResolver } from "./posts/user-posts.resolver.js";
import type { Services } from "./services.js";
import { SessionResolver } from "./sessions/session.resolver.js";
import { UserResolver } from "./users/user.resolver.js";

/** Every resolver class, with how to build it from the services: the one list the schema is made of. */
const RESOLVERS: ReadonlyArray<readonly [ClassType, (services: Services) => object]> = [
  [AuthResolver, (s) => new AuthResolver(s.auth, s.refreshes)],
  [UserResolver, (s) => new UserResolver(s.users)],
  [PostResolver, (s) => new PostResolver(s.posts, s.users)],
  [UserPostsResolver, (s) => new UserPostsResolver(s.posts)],
  [SessionResolver, (s) => new SessionResolver(s.sessions)],
  [AuditResolver, (s) => new AuditResolver(s.audit)],
  [ApiTokenResolver, (s) => new ApiTokenResolver(s.apiTokens)],
  [AccountResolver, (s) => new AccountResolver(s.accounts)],
];

/** The services' event bus, with the topics a subscription can resume (`postCreated(after)`). */
function replaying(services: Services): EventBus {
  return withReplays(services.events, {
    [PostTopic.CREATED]: {
      read: (after) => services.posts.createdAfter(after),
      key: (post) => (post as { id: string }).id,
    },
  });
}

/**
 * Builds the executable schema: type-graphql resolvers with our auth checker and validation, and
 * each guarded field's description extended with its requirement. Resolvers are built from
 * `services`, one set per app (no global container). Without `services` the schema can be printed
 * but not executed (`npm run schema`, tests of its shape).
 */
export async function buildAppSchema(services?: Services): Promise<GraphQLSchema> {
  const instances = new Map<ClassType, object>(
    services ? RESOLVERS.map(([resolver, build]) => [resolver, build(services)]) : [],
  );
  const container: ContainerType = {
    get(someClass) {
      const instance = instances.get(someClass as ClassType);
      if (!instance) throw new Error(`No instance wired for resolver ${(someClass as ClassType).name}`);
      return instance;
    },
  };
  const schema = await buildSchema({
    resolvers: RESOLVERS.map(([resolver]) => resolver) as [ClassType, ...ClassType[]],
    container,
    authChecker: createAuthChecker((scope) => services?.metrics.apiTokenUsed(scope)),
    validateFn: validateArgument,
    // Without services (printing the schema) nothing is ever published.
    pubSub: services ? replaying(services) : new LocalPubSub(),
  });
  return describeRequirements(schema);
}
