// The ceiling: node:http answering every request with one fixed JSON body, after reading the
// request body (as a GraphQL server must). No parsing, no GraphQL, no token.
import { createServer } from "node:http";

import { announceReady, HOST, listenPort, USER } from "./shared.mjs";

const body = Buffer.from(JSON.stringify({ data: { __typename: "Query", me: { id: USER.id } } }));

const server = createServer((request, response) => {
  request.resume();
  request.on("end", () => {
    response.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": body.length });
    response.end(body);
  });
});
server.listen(listenPort(), HOST, () => announceReady(server.address().port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
