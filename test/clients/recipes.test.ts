// The client recipes of docs/clients.md, run against a real server: each signs in, lets its access
// token expire, sends operations together and must refresh exactly once for all of them; once the
// session is ended elsewhere it must sign out without trying to refresh. The docs quote the recipe
// modules, and the last suite keeps the quotes and the files identical.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { gql as apolloGql } from "@apollo/client";

import { claimsOf, login, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { createApolloClient } from "./recipes/apollo-client.js";
import { createGraphQLRequestClient } from "./recipes/graphql-request.js";
import { createTokenStore, type TokenStore } from "./recipes/token-store.js";
import { createUrqlClient } from "./recipes/urql.js";

/** What the test needs of a recipe's client: send a query, get its data or a rejection; and stop. */
interface RecipeClient {
  query(source: string): Promise<{ me: { id: string } }>;
  stop(): void;
}

interface Recipe {
  name: string;
  file: string;
  build(url: string, store: TokenStore): RecipeClient;
}

const RECIPES: Recipe[] = [
  {
    name: "Apollo Client 4",
    file: "test/clients/recipes/apollo-client.ts",
    build(url, store) {
      const client = createApolloClient(url, store);
      return {
        async query(source) {
          const result = await client.query<{ me: { id: string } }>({
            query: apolloGql(source),
            fetchPolicy: "no-cache",
          });
          return result.data!;
        },
        stop: () => client.stop(),
      };
    },
  },
  {
    name: "urql with @urql/exchange-auth",
    file: "test/clients/recipes/urql.ts",
    build(url, store) {
      const client = createUrqlClient(url, store);
      return {
        async query(source) {
          const result = await client.query<{ me: { id: string } }>(source, {}, { requestPolicy: "network-only" });
          if (result.error) throw result.error;
          return result.data!;
        },
        stop: () => undefined,
      };
    },
  },
  {
    name: "graphql-request 7",
    file: "test/clients/recipes/graphql-request.ts",
    build(url, store) {
      const client = createGraphQLRequestClient(url, store);
      return { query: (source) => client.request(source), stop: () => undefined };
    },
  },
];

/** Three `me` queries that no client merges into one request (each has its own operation name). */
const CONCURRENT_QUERIES = ["query MeA { me { id } }", "query MeB { me { id } }", "query MeC { me { id } }"];

/** How many HTTP requests the app has logged so far. */
function requestsSoFar(t: TestApp): number {
  return t.logs.filter((line) => (JSON.parse(line) as { msg?: string }).msg === "incoming request").length;
}

/** The types of the audit events of `userId`, in order. */
async function auditTypes(t: TestApp, userId: string): Promise<string[]> {
  const rows = await t.app.database.db
    .selectFrom("audit_events")
    .select("type")
    .where("user_id", "=", userId)
    .orderBy("id")
    .execute();
  return rows.map((row) => row.type);
}

const refreshes = async (t: TestApp, userId: string) =>
  (await auditTypes(t, userId)).filter((type) => type === "TOKEN_REFRESHED").length;

// Each recipe on each database has an app of its own (so the request counts are its own), and they
// all wait for their tokens to expire at the same time.
describe("the client recipes of docs/clients.md", { concurrency: true }, () => {
  for (const kind of DATABASES) {
    for (const recipe of RECIPES) {
      describe(`${recipe.name} (${kind})`, () => {
        const t = useTestApp(kind, { env: { JWT_ACCESS_TOKEN_EXPIRES: "2s" } });

        it("refreshes once for operations that fail together on an expired token, then signs out when the session ends", async () => {
          const signOuts: string[] = [];
          const store = createTokenStore((reason) => signOuts.push(reason));
          const client = recipe.build(t.url, store);
          try {
            const signedIn = await registerUser(t, "casey");
            const signedInAt = Date.now();
            store.save(signedIn);
            assert.equal((await client.query("{ me { id } }")).me.id, signedIn.userId);

            // Real clock: the server checks exp against its own time, to the second.
            const expiresAt = (claimsOf(signedIn.accessToken).exp as number) * 1000;
            await sleep(Math.max(signedInAt + 2500, expiresAt + 100) - Date.now());

            const before = requestsSoFar(t);
            const results = await Promise.all(CONCURRENT_QUERIES.map((source) => client.query(source)));
            assert.deepEqual(
              results.map((data) => data.me.id),
              [signedIn.userId, signedIn.userId, signedIn.userId],
            );
            assert.equal(await refreshes(t, signedIn.userId), 1, "one refreshToken for the three operations");
            assert.equal(requestsSoFar(t) - before, 7, "3 refused with TOKEN_EXPIRED, 1 refreshToken, 3 retries");
            assert.notEqual(store.accessToken, signedIn.accessToken);
            assert.notEqual(store.refreshToken, signedIn.refreshToken);
            assert.deepEqual(signOuts, []);

            // The same user, signed in elsewhere, ends every session, this client's included.
            const elsewhere = await login(t, "casey");
            const logout = await t.gql(`mutation { logout(scope: ALL) }`, { token: elsewhere.accessToken });
            assert.deepEqual(logout.body, { data: { logout: true } });

            const afterLogout = requestsSoFar(t);
            await assert.rejects(client.query("{ me { id } }"));
            assert.deepEqual(signOuts, ["SESSION_ENDED"]);
            assert.equal(store.accessToken, undefined);
            assert.equal(store.refreshToken, undefined);
            assert.equal(requestsSoFar(t) - afterLogout, 1, "the refused operation only: no refresh, no retry");
            assert.equal(await refreshes(t, signedIn.userId), 1);

            // Signed out, the client sends no token: refused as NOT_SIGNED_IN, nothing more.
            const signedOut = requestsSoFar(t);
            await assert.rejects(client.query("{ me { id } }"));
            assert.deepEqual(signOuts, ["SESSION_ENDED"]);
            assert.equal(requestsSoFar(t) - signedOut, 1);
            assert.equal(await refreshes(t, signedIn.userId), 1);
          } finally {
            client.stop();
          }
        });
      });
    }
  }
});

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

describe("docs/clients.md", () => {
  const root = repositoryRoot();
  const page = readFileSync(join(root, "docs/clients.md"), "utf8");
  // A fenced block whose first line is `// <path>` quotes that file.
  const quotes = new Map(
    [...page.matchAll(/^```ts\n\/\/ (test\/clients\/recipes\/[\w.-]+\.ts)\n([\s\S]*?)^```$/gm)].map((m) => [
      m[1]!,
      m[2]!,
    ]),
  );

  it("quotes every recipe module and its token store, each once", () => {
    assert.deepEqual(
      [...quotes.keys()].sort(),
      [...RECIPES.map((r) => r.file), "test/clients/recipes/token-store.ts"].sort(),
    );
  });

  for (const [path, quoted] of quotes) {
    it(`quotes ${path} exactly as it is`, () => {
      assert.equal(quoted, readFileSync(join(root, path), "utf8"));
    });
  }
});
