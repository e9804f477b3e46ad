// GraphQL Yoga on node:http with @graphql-yoga/plugin-jwt, configured as its documentation shows:
// an inline (string) HS256 secret, the Authorization header, issuer and audience checked; requests
// without a token pass (the resolver decides), an invalid token is refused.
import { createServer } from "node:http";

import { createInlineSigningKeyProvider, extractFromHeader, useJWT } from "@graphql-yoga/plugin-jwt";
import { createGraphQLError, createSchema, createYoga } from "graphql-yoga";

import { announceReady, AUDIENCE, HOST, ISSUER, jwtSecret, listenPort, USER } from "./shared.mjs";

const yoga = createYoga({
  schema: createSchema({
    typeDefs: `
      type User { id: ID! username: String! }
      type Query { me: User! }
    `,
    resolvers: {
      Query: {
        me: (_root, _args, context) => {
          const sub = context.jwt?.payload?.sub;
          if (!sub) throw createGraphQLError("Not signed in.", { extensions: { code: "UNAUTHENTICATED" } });
          return sub === USER.id ? USER : null;
        },
      },
    },
  }),
  plugins: [
    useJWT({
      signingKeyProviders: [createInlineSigningKeyProvider(jwtSecret())],
      tokenLookupLocations: [extractFromHeader({ name: "authorization", prefix: "Bearer" })],
      tokenVerification: { algorithms: ["HS256"], issuer: ISSUER, audience: AUDIENCE },
      reject: { missingToken: false, invalidToken: true },
    }),
  ],
  graphiql: false,
  landingPage: false,
  logging: false,
});

const server = createServer(yoga);
server.listen(listenPort(), HOST, () => announceReady(server.address().port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
