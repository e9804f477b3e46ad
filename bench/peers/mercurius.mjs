// The fastest peer: Fastify + Mercurius (graphql-jit) + @fastify/jwt (fast-jwt underneath),
// verifying `Authorization: Bearer` in an onRequest hook the way @fastify/jwt documents it.
import fastifyJwt from "@fastify/jwt";
import Fastify from "fastify";
import mercurius from "mercurius";

import { announceReady, AUDIENCE, HOST, ISSUER, jwtSecret, listenPort, USER } from "./shared.mjs";

const app = Fastify({ logger: false });
await app.register(fastifyJwt, {
  secret: jwtSecret(),
  verify: { algorithms: ["HS256"], allowedIss: ISSUER, allowedAud: AUDIENCE },
});

app.addHook("onRequest", async (request, reply) => {
  if (request.headers.authorization === undefined) return;
  try {
    await request.jwtVerify();
  } catch {
    reply.code(401).header("www-authenticate", 'Bearer error="invalid_token"');
    return reply.send({ errors: [{ message: "Invalid token.", extensions: { code: "UNAUTHENTICATED" } }] });
  }
});

const schema = `
  type User { id: ID! username: String! }
  type Query { me: User! }
`;
const resolvers = {
  Query: {
    me: (_root, _args, context) => {
      if (!context.user) throw new mercurius.ErrorWithProps("Not signed in.", { code: "UNAUTHENTICATED" });
      return context.user.sub === USER.id ? USER : null;
    },
  },
};
await app.register(mercurius, {
  schema,
  resolvers,
  jit: 1,
  graphiql: false,
  context: (request) => ({ user: request.user ?? null }),
});

await app.listen({ host: HOST, port: listenPort() });
announceReady(app.server.address().port);
process.on("SIGTERM", () => app.close().then(() => process.exit(0)));
