// The naive recipe most tutorials give: Apollo Server 5 standalone, type-graphql with
// @Authorized, and a context that calls jsonwebtoken.verify with the secret as a string.
// jsonwebtoken then turns the string into a key on every call (first trying it as a PEM public
// key), which is what this project avoids by holding a KeyObject.
//
// Plain JavaScript has no decorator syntax on Node 20, so the type-graphql decorators are applied
// by calling them, exactly as TypeScript's compiled output does.
import "reflect-metadata";

import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { GraphQLError } from "graphql";
import jwt from "jsonwebtoken";
import { Authorized, buildSchema, Ctx, Field, ID, ObjectType, Query, Resolver } from "type-graphql";

import { announceReady, AUDIENCE, HOST, ISSUER, jwtSecret, listenPort, USER } from "./shared.mjs";

const secret = jwtSecret();

class User {}
Field(() => ID)(User.prototype, "id");
Field(() => String)(User.prototype, "username");
ObjectType()(User);

class MeResolver {
  me(context) {
    return context.user.sub === USER.id ? USER : null;
  }
}
const me = Object.getOwnPropertyDescriptor(MeResolver.prototype, "me");
Ctx()(MeResolver.prototype, "me", 0);
Authorized()(MeResolver.prototype, "me", me);
Query(() => User)(MeResolver.prototype, "me", me);
Resolver()(MeResolver);

const schema = await buildSchema({
  resolvers: [MeResolver],
  authChecker: ({ context }) => context.user !== null,
  validate: false,
});

const apollo = new ApolloServer({ schema, introspection: false });
const { url } = await startStandaloneServer(apollo, {
  listen: { host: HOST, port: listenPort() },
  context: async ({ req }) => {
    const header = req.headers.authorization;
    if (!header) return { user: null };
    try {
      const user = jwt.verify(header.replace(/^Bearer /, ""), secret, {
        algorithms: ["HS256"],
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      return { user };
    } catch {
      throw new GraphQLError("Invalid token.", { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
    }
  },
});
announceReady(new URL(url).port);
process.on("SIGTERM", () => apollo.stop().then(() => process.exit(0)));
