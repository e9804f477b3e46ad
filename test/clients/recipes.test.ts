// The client recipes of docs/clients.md, run against a real production server that runs only the
// documents of its manifest (TRUSTED_DOCUMENTS): each signs in, lets its access token expire, sends
// operations together and must refresh exactly once for all of them; once the session is ended
// elsewhere it must sign out without trying to refresh. Every document a recipe sends comes from
// test/clients/recipes/operations.graphql, generated into a manifest (gql/persisted-documents.json,
// kept current by a test below) and sent as its id alone; one the manifest lacks is refused with
// PERSISTED_QUERY_NOT_ALLOWED through each client. The docs quote the recipe modules and the example
// web app's (whole, or a `// #region` at a time; its browser test, test/browser/example-web.test.ts,
// runs those), and the last suite keeps the quotes and the files identical and the line counts true.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { CombinedGraphQLErrors, ServerError } from "@apollo/client";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { CombinedError } from "@urql/core";
import { type DocumentNode, parse, print } from "graphql";
import { ClientError } from "graphql-request";

import { documentHash } from "../../src/graphql/trusted-documents.js";
import { claimsOf, login, LOGIN_DOCUMENT, PASSWORD, REGISTER_DOCUMENT, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { CONFIRM_TOTP_DOCUMENT, ENROLL_TOTP_DOCUMENT, enrollUser, wrongTotp } from "../helpers/mfa.js";
import { createApolloClient } from "./recipes/apollo-client.js";
import {
  MeADocument,
  MeBDocument,
  MeCDocument,
  MeDocument,
  SessionsAgainDocument,
  SessionsDocument,
} from "./recipes/gql/graphql.js";
import { createGraphQLRequestClient } from "./recipes/graphql-request.js";
import { signIn } from "./recipes/sign-in.js";
import { createTokenStore, type TokenStore } from "./recipes/token-store.js";
import { createUrqlClient } from "./recipes/urql.js";

/** A generated document with no variables. */
type Document<T> = TypedDocumentNode<T, { [key: string]: never }>;

/** What the test needs of a recipe's client: send a document, get its data or a rejection; and stop. */
interface RecipeClient {
  query<T>(document: Document<T>): Promise<T>;
  stop(): void;
}

interface Recipe {
  name: string;
  file: string;
  build(url: string, store: TokenStore): RecipeClient;
  /** The `extensions.code` of the first GraphQL error in what the client rejected with, as the client presents it. */
  codeOf(error: unknown): unknown;
}

const RECIPES: Recipe[] = [
  {
    name: "Apollo Client 4",
    file: "test/clients/recipes/apollo-client.ts",
    build(url, store) {
      const client = createApolloClient(url, store);
      return {
        async query(document) {
          const result = await client.query({ query: document, fetchPolicy: "no-cache" });
          return result.data!;
        },
        stop: () => client.stop(),
      };
    },
    // A 4xx answer that is not application/graphql-response+json arrives as a ServerError.
    codeOf: (error) =>
      CombinedGraphQLErrors.is(error)
        ? error.errors[0]?.extensions?.code
        : ServerError.is(error)
          ? (JSON.parse(error.bodyText) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions
              .code
          : undefined,
  },
  {
    name: "urql with @urql/exchange-auth",
    file: "test/clients/recipes/urql.ts",
    build(url, store) {
      const client = createUrqlClient(url, store);
      return {
        async query(document) {
          const result = await client.query(document, {}, { requestPolicy: "network-only" });
          if (result.error) throw result.error;
          return result.data!;
        },
        stop: () => undefined,
      };
    },
    codeOf: (error) => (error instanceof CombinedError ? error.graphQLErrors[0]?.extensions?.code : undefined),
  },
  {
    name: "graphql-request 7",
    file: "test/clients/recipes/graphql-request.ts",
    build(url, store) {
      const client = createGraphQLRequestClient(url, store);
      return { query: (document) => client.request(document), stop: () => undefined };
    },
    codeOf: (error) => (error instanceof ClientError ? error.response.errors?.[0]?.extensions?.code : undefined),
  },
];

/** Three `me` queries that no client merges into one request (each has its own operation name). */
const CONCURRENT_QUERIES = [MeADocument, MeBDocument, MeCDocument];

/** The texts the test itself sends (registering, signing in elsewhere, ending every session, enrolling TOTP). */
const LOGOUT_ALL = "mutation { logout(scope: ALL) }";
const HARNESS_DOCUMENTS = [REGISTER_DOCUMENT, LOGIN_DOCUMENT, LOGOUT_ALL, ENROLL_TOTP_DOCUMENT, CONFIRM_TOTP_DOCUMENT];

/**
 * The servers' manifest: the recipes' generated one, plus the test's own documents (sent as their
 * exact text, which a manifest lets through too). In a temporary folder, removed at the end.
 */
function writeManifest(): string {
  const manifestDir = mkdtempSync(join(tmpdir(), "recipes-manifest-"));
  after(() => rmSync(manifestDir, { recursive: true, force: true }));
  const file = join(manifestDir, "persisted-documents.json");
  const generated = readFileSync(join(repositoryRoot(), RECIPES_MANIFEST), "utf8");
  const listed = JSON.parse(generated) as Record<string, string>;
  for (const text of HARNESS_DOCUMENTS) listed[documentHash(text)] = text;
  writeFileSync(file, JSON.stringify(listed));
  return file;
}

const RECIPES_MANIFEST = "test/clients/recipes/gql/persisted-documents.json";
const SERVER_ENV = { NODE_ENV: "production", TRUSTED_DOCUMENTS: writeManifest() };

/** A document a client was built with but the server's manifest lacks (deployed before its manifest). */
const UNLISTED: Document<{ me: { id: string; username: string } }> = (() => {
  const document = parse("query Unlisted { me { id username } }");
  return { ...document, __meta__: { hash: `sha256:${documentHash(print(document))}` } } as DocumentNode;
})();

/**
 * The `query` texts the clients and the test sent, by URL: the recipes send ids only, so every text
 * must be one of the test's own. Every client here calls the global fetch when it sends.
 */
const textsSent = new Map<string, string[]>();
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const { query } = (typeof init?.body === "string" ? JSON.parse(init.body) : {}) as { query?: string };
  if (query !== undefined) textsSent.set(url, [...(textsSent.get(url) ?? []), query]);
  return realFetch(input, init);
};
after(() => (globalThis.fetch = realFetch));

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
        const t = useTestApp(kind, { env: { ...SERVER_ENV, JWT_ACCESS_TOKEN_EXPIRES: "2s" } });

        it("refreshes once for operations that fail together on an expired token, then signs out when the session ends", async () => {
          const signOuts: string[] = [];
          const store = createTokenStore((reason) => signOuts.push(reason));
          const client = recipe.build(t.url, store);
          try {
            const signedIn = await registerUser(t, "casey");
            const signedInAt = Date.now();
            store.save(signedIn);
            assert.equal((await client.query(MeDocument)).me?.id, signedIn.userId);

            // A document the server's manifest lacks: refused, the same way through every client,
            // and no reason to refresh or sign out.
            const refused = await client.query(UNLISTED).then(
              () => assert.fail("an unlisted document ran"),
              (error: unknown) => error,
            );
            assert.equal(recipe.codeOf(refused), "PERSISTED_QUERY_NOT_ALLOWED");
            assert.equal(store.accessToken, signedIn.accessToken);

            // Real clock: the server checks exp against its own time, to the second.
            const expiresAt = (claimsOf(signedIn.accessToken).exp as number) * 1000;
            await sleep(Math.max(signedInAt + 2500, expiresAt + 100) - Date.now());

            const before = requestsSoFar(t);
            const results = await Promise.all(CONCURRENT_QUERIES.map((document) => client.query(document)));
            assert.deepEqual(
              results.map((data) => data.me?.id),
              [signedIn.userId, signedIn.userId, signedIn.userId],
            );
            assert.equal(await refreshes(t, signedIn.userId), 1, "one refreshToken for the three operations");
            assert.equal(requestsSoFar(t) - before, 7, "3 refused with TOKEN_EXPIRED, 1 refreshToken, 3 retries");
            assert.notEqual(store.accessToken, signedIn.accessToken);
            assert.notEqual(store.refreshToken, signedIn.refreshToken);
            assert.deepEqual(signOuts, []);

            // The same user, signed in elsewhere, ends every session, this client's included.
            const elsewhere = await login(t, "casey");
            const logout = await t.gql(LOGOUT_ALL, { token: elsewhere.accessToken });
            assert.deepEqual(logout.body, { data: { logout: true } });

            const afterLogout = requestsSoFar(t);
            await assert.rejects(client.query(MeDocument));
            assert.deepEqual(signOuts, ["SESSION_ENDED"]);
            assert.equal(store.accessToken, undefined);
            assert.equal(store.refreshToken, undefined);
            assert.equal(requestsSoFar(t) - afterLogout, 1, "the refused operation only: no refresh, no retry");
            assert.equal(await refreshes(t, signedIn.userId), 1);

            // Signed out, the client sends no token: refused as NOT_SIGNED_IN, nothing more.
            const signedOut = requestsSoFar(t);
            await assert.rejects(client.query(MeDocument));
            assert.deepEqual(signOuts, ["SESSION_ENDED"]);
            assert.equal(requestsSoFar(t) - signedOut, 1);
            assert.equal(await refreshes(t, signedIn.userId), 1);

            const texts = (textsSent.get(t.url) ?? []).filter((text) => !HARNESS_DOCUMENTS.includes(text));
            assert.deepEqual(texts, [], "the recipe sent ids only");
          } finally {
            client.stop();
          }
        });
      });
    }
  }
});

// The challenge step: the fetch sign-in of sign-in.ts with a user who has TOTP, and each client
// sending the user to the code prompt on MFA_REQUIRED instead of refreshing, retrying or signing out.
describe("the challenge step of docs/clients.md", { concurrency: true }, () => {
  for (const kind of DATABASES) {
    // One test at a time: the clients' tests count the app's requests.
    describe(`sign-in.ts and the three clients (${kind})`, { concurrency: false }, () => {
      const t = useTestApp(kind, { env: SERVER_ENV });

      it("signs in with the password, asks for a code until one is accepted, and keeps the AAL2 pair verifyMfa returned", async () => {
        const registered = await registerUser(t, "quinn");
        const totp = await enrollUser(t, registered.accessToken);
        const signOuts: string[] = [];
        const store = createTokenStore((reason) => signOuts.push(reason));
        const asked: Array<string | undefined> = [];
        const result = await signIn(t.url, store, { username: "quinn", password: PASSWORD }, async (problem) => {
          asked.push(problem);
          return asked.length === 1 ? wrongTotp(totp.secret) : totp.nextCode();
        });
        assert.deepEqual(result, { signedIn: true });
        assert.deepEqual(asked, [undefined, "Invalid input: code is not a valid code."]);
        const claims = claimsOf(store.accessToken!);
        assert.equal(claims.aal, "aal2");
        assert.deepEqual(claims.amr, ["pwd", "otp"]);
        assert.equal(claims.mfa_pending, undefined);
        assert.deepEqual(signOuts, []);
      });

      it("ends the half-open session when the user gives up on the code", async () => {
        await registerUser(t, "rowan").then((user) => enrollUser(t, user.accessToken));
        const signOuts: string[] = [];
        const store = createTokenStore((reason) => signOuts.push(reason));
        const result = await signIn(t.url, store, { username: "rowan", password: PASSWORD }, async () => undefined);
        assert.deepEqual(result, { signedIn: false, code: "CANCELLED" });
        assert.deepEqual(signOuts, ["SIGNED_OUT"]);
        assert.equal(store.accessToken, undefined);
        const live = await t.app.database.db
          .selectFrom("sessions")
          .innerJoin("users", "users.id", "sessions.user_id")
          .select("sessions.id")
          .where("users.username", "=", "rowan")
          .where("sessions.revoked_at", "is", null)
          .execute();
        assert.equal(live.length, 1, "only the session enrollment was done in: the half-open one ended");
      });

      for (const recipe of RECIPES) {
        it(`${recipe.name} sends the user to the code prompt on MFA_REQUIRED, once, with no refresh, retry or sign-out`, async () => {
          const username = `mfa-${recipe.file.replace(/\W/g, "").slice(-12)}`;
          await registerUser(t, username).then((user) => enrollUser(t, user.accessToken));
          const signOuts: string[] = [];
          let prompts = 0;
          const store = createTokenStore(
            (reason) => signOuts.push(reason),
            () => prompts++,
          );
          const pending = await login(t, username);
          store.save(pending);
          const client = recipe.build(t.url, store);
          try {
            const before = requestsSoFar(t);
            await assert.rejects(client.query(SessionsDocument));
            await assert.rejects(client.query(SessionsAgainDocument));
            assert.equal(prompts, 1, "one prompt for the operations refused while the factor is owed");
            assert.deepEqual(signOuts, []);
            assert.equal(store.accessToken, pending.accessToken, "the tokens are kept");
            assert.equal(requestsSoFar(t) - before, 2, "the refused operations only: no refresh, no retry");
          } finally {
            client.stop();
          }
        });
      }
    });
  }
});

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

/** The example web app's modules (not the generated ones of examples/web/src/gql/). */
function exampleSources(root: string): string[] {
  const dir = "examples/web/src";
  return readdirSync(join(root, dir))
    .filter((name) => /\.tsx?$/.test(name))
    .map((name) => `${dir}/${name}`);
}

/**
 * The regions of a module: the lines between `// #region <name>` and the next `// #endregion`, by
 * name, each line with its newline (as a fenced block quotes it). Nested, repeated, stray or
 * unclosed markers are refused, so a quote can never stand for something else than it seems to.
 */
function regionsOf(source: string): Map<string, string> {
  const regions = new Map<string, string>();
  let open: { name: string; lines: string[] } | undefined;
  for (const line of source.split("\n")) {
    const start = /^\/\/ #region ([\w-]+)$/.exec(line)?.[1];
    if (start !== undefined) {
      if (open) throw new Error(`#region ${start} opens inside #region ${open.name}`);
      if (regions.has(start)) throw new Error(`#region ${start} appears twice`);
      open = { name: start, lines: [] };
    } else if (line === "// #endregion") {
      if (!open) throw new Error("#endregion without a #region");
      regions.set(open.name, open.lines.map((text) => `${text}\n`).join(""));
      open = undefined;
    } else if (/\/\/ #(end)?region\b/.test(line)) {
      throw new Error(`a marker not on a line of its own: ${line}`);
    } else open?.lines.push(line);
  }
  if (open) throw new Error(`#region ${open.name} is never closed`);
  return regions;
}

/** The lines of a module that are in no region, blank lines and the markers left out. */
function outsideRegions(source: string): string[] {
  let inside = false;
  return source.split("\n").filter((line) => {
    if (/^\/\/ #region /.test(line)) inside = true;
    else if (line === "// #endregion") inside = false;
    else return !inside && line.trim() !== "";
    return false;
  });
}

/** A module's lines, and how many of them are code: blank lines and comments left out, as docs/clients.md counts. */
function lineCounts(source: string): { lines: number; code: number } {
  const lines = source.replace(/\n$/, "").split("\n");
  let inComment = false;
  let code = 0;
  for (const line of lines.map((text) => text.trim())) {
    if (inComment) inComment = !line.includes("*/");
    else if (line.startsWith("/*")) inComment = !line.includes("*/");
    else if (line !== "" && !line.startsWith("//")) code++;
  }
  return { lines: lines.length, code };
}

/**
 * The quotes of a page: a fenced block whose first line is `// <path>` quotes that whole file;
 * `// <path> #region <name>`, that region of it.
 */
function quotesOf(page: string): Array<{ path: string; region?: string; text: string }> {
  const blocks = page.matchAll(
    /^```ts\n\/\/ ((?:test\/clients\/recipes|examples\/web\/src)\/[\w.-]+\.ts)(?: #region ([\w-]+))?\n([\s\S]*?)^```$/gm,
  );
  return [...blocks].map((m) => ({ path: m[1]!, ...(m[2] === undefined ? {} : { region: m[2] }), text: m[3]! }));
}

describe("the recipes' manifest", () => {
  it("is what codegen makes of test/clients/recipes/operations.graphql and schema/schema.graphql", async () => {
    const root = repositoryRoot();
    const args = [
      "--check",
      "--documents",
      "test/clients/recipes/operations.graphql",
      "--out",
      "test/clients/recipes/gql",
    ];
    await promisify(execFile)(process.execPath, [join(root, "examples/web/codegen.mjs"), ...args], { cwd: root }).catch(
      (error: Error & { stderr?: string; stdout?: string }) => {
        assert.fail(`codegen.mjs ${args.join(" ")}: ${error.stderr ?? ""}${error.stdout ?? error.message}`);
      },
    );
  });
});

describe("docs/clients.md", () => {
  const root = repositoryRoot();
  const read = (path: string) => readFileSync(join(root, path), "utf8");
  const page = read("docs/clients.md");
  const quotes = quotesOf(page);
  const wholeFiles = quotes.filter((quote) => quote.region === undefined).map((quote) => quote.path);
  const regions = quotes.filter((quote) => quote.region !== undefined).map((q) => `${q.path} #region ${q.region}`);

  it("quotes every recipe module, its token store and the example app's client and feed, each once and whole", () => {
    assert.deepEqual(
      wholeFiles.sort(),
      [
        ...RECIPES.map((r) => r.file),
        "test/clients/recipes/token-store.ts",
        "test/clients/recipes/sign-in.ts",
        "examples/web/src/client.ts",
        "examples/web/src/feed.ts",
      ].sort(),
    );
  });

  it("quotes every #region of the example app's modules once, and every line of its auth module is in one", () => {
    const defined = exampleSources(root).flatMap((path) =>
      [...regionsOf(read(path)).keys()].map((name) => `${path} #region ${name}`),
    );
    assert.ok(defined.length >= 5, `only ${defined.length} regions in the example's modules`);
    assert.deepEqual(regions.sort(), defined.sort());
    assert.deepEqual(outsideRegions(read("examples/web/src/auth.ts")), [], "docs/clients.md quotes auth.ts whole");
  });

  for (const quote of quotes) {
    const name = quote.region === undefined ? quote.path : `${quote.path} #region ${quote.region}`;
    it(`quotes ${name} exactly as it is`, () => {
      const source = read(quote.path);
      const text = quote.region === undefined ? source : regionsOf(source).get(quote.region);
      assert.equal(quote.text, text);
    });
  }

  it("counts the lines of each module as they are, in the table of Lines of client code", () => {
    const rows = [...page.matchAll(/^\| .* \| `([\w./-]+\.ts)` \| (\d+) \| (\d+) \|$/gm)];
    assert.ok(rows.length >= 7, `only ${rows.length} rows with line counts`);
    assert.ok(rows.some((row) => row[1] === "examples/web/src/auth.ts"));
    for (const [, path, lines, code] of rows)
      assert.deepEqual({ lines: Number(lines), code: Number(code) }, lineCounts(read(path!)), path);
  });

  it("finds regions, refuses broken markers and counts code lines, so the checks above can fail", () => {
    const source =
      "// a\n// #region one\nconst a = 1;\n\n// #endregion\nlet b;\n// #region two\n/**\n * x\n */\n// #endregion\n";
    assert.deepEqual(
      [...regionsOf(source)],
      [
        ["one", "const a = 1;\n\n"],
        ["two", "/**\n * x\n */\n"],
      ],
    );
    assert.deepEqual(outsideRegions(source), ["// a", "let b;"]);
    assert.deepEqual(lineCounts(source), { lines: 11, code: 2 });
    for (const [broken, problem] of [
      ["// #region a\n// #region b\n// #endregion\n", /opens inside #region a/],
      ["// #region a\n", /never closed/],
      ["// #endregion\n", /without a #region/],
      ["// #region a\n// #endregion\n// #region a\n// #endregion\n", /appears twice/],
      ["const x = 1; // #region a\n", /not on a line of its own/],
      ["// #region a\n  // #endregion\n", /not on a line of its own/],
    ] as const)
      assert.throws(() => regionsOf(broken), problem);
  });
});
