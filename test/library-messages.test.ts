/**
 * One test per entry of src/library-messages.ts: each provokes the real library into the real error
 * and checks that the entry still matches its message, so an upgrade that rewords one fails here
 * instead of silently changing what the app does. The last test checks that every entry has one.
 *
 * The PostgreSQL entries run against TEST_DATABASE_URL (skipped without it; with CI=true a missing
 * URL fails, see helpers/databases.ts), reaching it directly or through a TCP proxy that can freeze
 * or cut the connection, so the shared server itself is never touched.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ApolloArmor } from "@escape.tech/graphql-armor";
import Database from "better-sqlite3";
import { buildSchema, execute, type GraphQLError, parse, validate } from "graphql";
import jwt from "jsonwebtoken";
import pg from "pg";

import * as libraryMessages from "../src/library-messages.js";
import {
  GRAPHQL_ARMOR_MESSAGES,
  GRAPHQL_MESSAGES,
  JSONWEBTOKEN_MESSAGES,
  POSTGRES_MESSAGES,
  SQLITE_MESSAGES,
} from "../src/library-messages.js";
import { DATABASES } from "./helpers/databases.js";
import { hmac, jws } from "./helpers/jwt.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";

const postgresUrl = DATABASES.includes("postgres") ? process.env.TEST_DATABASE_URL : undefined;

/** Asserts that `pattern` matches `message` and returns the match (an exact `===` for a string). */
function expectMatch(pattern: RegExp | string, message: string): RegExpExecArray | null {
  if (typeof pattern === "string") {
    assert.equal(message, pattern);
    return null;
  }
  const match = pattern.exec(message);
  assert.ok(match, `${pattern} no longer matches the library's message ${JSON.stringify(message)}`);
  return match;
}

/** What `fn` throws (synchronously or by rejecting), which must be an Error. */
async function thrown(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the call to throw");
}

// ---------------------------------------------------------------------------------------------
// graphql-js

const schema = buildSchema(`
  input LoginInput { username: String!, password: String! }
  type User { id: ID!, username: String! }
  type Query {
    me: User
    posts(first: Int! = 10): [Int!]
    count(n: Int!): Int
    sum(numbers: [Int!]!): Int
    login(input: LoginInput!): String
  }
`);

/** `execute` on a document that was *not* validated, as graphql-js's own coercion sees it. */
function executeErrors(source: string, variableValues?: Record<string, unknown>): readonly GraphQLError[] {
  const result = execute({ schema, document: parse(source), variableValues });
  assert.ok(!(result instanceof Promise), "synchronous schema");
  return result.errors ?? [];
}

function validationErrors(source: string): readonly GraphQLError[] {
  return validate(schema, parse(source));
}

// ---------------------------------------------------------------------------------------------
// jsonwebtoken: tokens signed by hand, so payloads jwt.sign would refuse (a string `exp`) can be made.

const SECRET = "a-secret-long-enough-for-hs256-0123456789";
const ISSUER = "graphql-token-auth";
const AUDIENCE = "graphql-token-auth-api";

function forge(
  payload: Record<string, unknown>,
  options: { alg?: "HS256" | "HS384"; secret?: string; unsigned?: boolean } = {},
): string {
  const alg = options.alg ?? "HS256";
  return jws(
    { alg, typ: "JWT" },
    payload,
    options.unsigned ? undefined : hmac(options.secret ?? SECRET, alg === "HS256" ? "sha256" : "sha384"),
  );
}

const now = Math.floor(Date.now() / 1000);
const goodClaims = {
  sub: "u1",
  sid: "s1",
  jti: "j1",
  roles: ["USER"],
  iss: ISSUER,
  aud: AUDIENCE,
  iat: now,
  exp: now + 600,
};

/** The message jwt.verify throws, called as the app calls it (plus `extra` options). */
async function verifyMessage(token: string, extra: jwt.VerifyOptions = {}): Promise<string> {
  const error = await thrown(() =>
    jwt.verify(token, SECRET, {
      algorithms: ["HS256"],
      issuer: ISSUER,
      audience: AUDIENCE,
      clockTimestamp: now,
      ...extra,
    }),
  );
  // The app tells these apart by message only after ruling out the two subclasses.
  assert.ok(error instanceof jwt.JsonWebTokenError);
  assert.ok(!(error instanceof jwt.TokenExpiredError) && !(error instanceof jwt.NotBeforeError));
  return error.message;
}

// ---------------------------------------------------------------------------------------------
// node-postgres, against TEST_DATABASE_URL (directly, or through a proxy that can freeze or cut).

let proxy: TcpProxy | undefined;
const cleanups: (() => Promise<unknown> | void)[] = [];

function proxiedUrl(): string {
  return TcpProxy.rewrite(postgresUrl!, proxy!.port);
}

/** A connected client; `on("error")` is handled so a cut socket cannot crash the run. */
async function connectedClient(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => undefined);
  cleanups.push(() => client.end().catch(() => undefined));
  await client.connect();
  return client;
}

// ---------------------------------------------------------------------------------------------
// One test per entry, keyed `GROUP.entry`.

type Case = { needs?: "postgres"; run: () => Promise<void> | void };

const CASES: Record<string, Case> = {
  "GRAPHQL_MESSAGES.tokenLimit": {
    run: async () => {
      const error = await thrown(() => parse("{ me { id username } }", { maxTokens: 3 }));
      const match = expectMatch(GRAPHQL_MESSAGES.tokenLimit, error.message);
      assert.equal(match![1], "3");
    },
  },

  "GRAPHQL_MESSAGES.didYouMean": {
    run: () => {
      const [validation] = validationErrors("{ me { usernme } }");
      expectMatch(GRAPHQL_MESSAGES.didYouMean, validation!.message);
      assert.equal(
        validation!.message.replace(GRAPHQL_MESSAGES.didYouMean, ""),
        'Cannot query field "usernme" on type "User".',
      );

      // Variable coercion ends its messages the same way.
      const coercion = executeErrors("query($input: LoginInput!) { login(input: $input) }", {
        input: { usernme: "x", password: "p" },
      });
      const unknownField = coercion.find((e) => e.message.includes('Field "usernme"'));
      assert.ok(unknownField, coercion.map((e) => e.message).join("\n"));
      expectMatch(GRAPHQL_MESSAGES.didYouMean, unknownField.message);
      assert.ok(!unknownField.message.replace(GRAPHQL_MESSAGES.didYouMean, "").includes("Did you mean"));
    },
  },

  "GRAPHQL_MESSAGES.variableInvalidValue": {
    run: () => {
      const errors = executeErrors("query($input: LoginInput!) { login(input: $input) }", {
        input: { usernme: "x", password: "hunter2" },
      });
      assert.ok(errors.length > 0);
      for (const error of errors) {
        const match = expectMatch(GRAPHQL_MESSAGES.variableInvalidValue, error.message);
        assert.equal(match![1], 'Variable "$input" got invalid value');
      }
      // The reason to match it at all: the whole value, password included, is in the message.
      assert.ok(errors.some((e) => e.message.includes("hunter2")));
    },
  },

  "GRAPHQL_MESSAGES.variableValueSeparator": {
    run: () => {
      const password = "hunter2; not-the-reason";
      const errors = executeErrors("query($input: LoginInput!) { login(input: $input) }", {
        input: { usernme: "x", password },
      });
      const withValue = errors.filter((e) => e.message.includes("hunter2"));
      assert.ok(withValue.length > 0, errors.map((e) => e.message).join("\n"));
      for (const { message } of withValue) {
        const cut = message.lastIndexOf(GRAPHQL_MESSAGES.variableValueSeparator);
        assert.ok(
          cut > 0,
          `no ${JSON.stringify(GRAPHQL_MESSAGES.variableValueSeparator)} in ${JSON.stringify(message)}`,
        );
        const reason = message.slice(cut + GRAPHQL_MESSAGES.variableValueSeparator.length);
        // The value comes before the reason: nothing of it is left after the last separator.
        assert.ok(!reason.includes("hunter2") && !reason.includes("not-the-reason"), reason);
        assert.match(reason, /^Field "(usernme|username)" /);
      }
    },
  },

  "GRAPHQL_MESSAGES.argumentProblem": {
    run: () => {
      // A nullable variable into a non-null argument with a default passes validation...
      const nullable = "query($n: Int) { posts(first: $n) }";
      assert.deepEqual(validationErrors(nullable), []);
      // ...and only execution refuses an explicit null.
      const [isNull] = executeErrors(nullable, { n: null });
      const nullMatch = expectMatch(GRAPHQL_MESSAGES.argumentProblem, isNull!.message);
      assert.equal(nullMatch![1], "first");
      assert.ok(nullMatch![2]!.endsWith("must not be null"), nullMatch![2]);

      const [missing] = executeErrors("{ count }");
      const missingMatch = expectMatch(GRAPHQL_MESSAGES.argumentProblem, missing!.message);
      assert.equal(missingMatch![1], "n");
      assert.ok(missingMatch![2]!.endsWith("was not provided"), missingMatch![2]);

      const [invalid] = executeErrors('{ count(n: "x") }');
      const invalidMatch = expectMatch(GRAPHQL_MESSAGES.argumentProblem, invalid!.message);
      assert.equal(invalidMatch![1], "n");
      assert.ok(invalidMatch![2]!.startsWith("has invalid value"), invalidMatch![2]);
    },
  },

  "GRAPHQL_MESSAGES.variableErrorLimit": {
    run: () => {
      const errors = executeErrors("query($l: [Int!]!) { sum(numbers: $l) }", {
        l: Array.from({ length: 60 }, () => "x"),
      });
      assert.equal(errors.length, 51);
      const last = errors.at(-1)!;
      expectMatch(GRAPHQL_MESSAGES.variableErrorLimit, last.message);
      // What clientErrorWithoutCode also relies on: no code and nothing wrapped.
      assert.equal(last.extensions.code, undefined);
      assert.equal(last.originalError, undefined);
    },
  },

  "GRAPHQL_ARMOR_MESSAGES.syntaxErrorPrefix": {
    run: () => {
      const rejected: GraphQLError[] = [];
      const common = {
        propagateOnRejection: false,
        onReject: [(_context: unknown, error: GraphQLError) => void rejected.push(error)],
      };
      const armor = new ApolloArmor({
        maxDepth: { ...common, n: 1 },
        maxAliases: { ...common, n: 0, allowList: [] },
        maxDirectives: { ...common, n: 0 },
        costLimit: { enabled: false },
        maxTokens: { enabled: false },
        blockFieldSuggestion: { enabled: false },
      });
      const { validationRules } = armor.protect();
      validate(schema, parse("{ a: me { id } }"), validationRules);
      validate(schema, parse("{ me @include(if: true) { id } }"), validationRules);
      assert.equal(rejected.length, 4, rejected.map((e) => e.message).join("\n"));
      for (const kind of ["depth", "alias", "directive"]) {
        const error = rejected.find((e) => e.message.toLowerCase().includes(kind));
        assert.ok(error, `no ${kind} rejection in ${rejected.map((e) => e.message).join(" | ")}`);
        expectMatch(GRAPHQL_ARMOR_MESSAGES.syntaxErrorPrefix, error.message);
        assert.ok(!error.message.replace(GRAPHQL_ARMOR_MESSAGES.syntaxErrorPrefix, "").startsWith("Syntax Error"));
      }
    },
  },

  "JSONWEBTOKEN_MESSAGES.issuerInvalid": {
    run: async () => {
      expectMatch(
        JSONWEBTOKEN_MESSAGES.issuerInvalid,
        await verifyMessage(forge({ ...goodClaims, iss: "someone-else" })),
      );
    },
  },
  "JSONWEBTOKEN_MESSAGES.audienceInvalid": {
    run: async () => {
      expectMatch(
        JSONWEBTOKEN_MESSAGES.audienceInvalid,
        await verifyMessage(forge({ ...goodClaims, aud: "another-api" })),
      );
    },
  },
  "JSONWEBTOKEN_MESSAGES.algorithmInvalid": {
    run: async () => {
      expectMatch(JSONWEBTOKEN_MESSAGES.algorithmInvalid, await verifyMessage(forge(goodClaims, { alg: "HS384" })));
    },
  },
  "JSONWEBTOKEN_MESSAGES.signatureInvalid": {
    run: async () => {
      expectMatch(
        JSONWEBTOKEN_MESSAGES.signatureInvalid,
        await verifyMessage(forge(goodClaims, { secret: `${SECRET}-but-wrong` })),
      );
    },
  },
  "JSONWEBTOKEN_MESSAGES.signatureRequired": {
    run: async () => {
      expectMatch(JSONWEBTOKEN_MESSAGES.signatureRequired, await verifyMessage(forge(goodClaims, { unsigned: true })));
    },
  },
  "JSONWEBTOKEN_MESSAGES.subjectInvalid": {
    run: async () => {
      expectMatch(JSONWEBTOKEN_MESSAGES.subjectInvalid, await verifyMessage(forge(goodClaims), { subject: "u2" }));
    },
  },
  "JSONWEBTOKEN_MESSAGES.jwtidInvalid": {
    run: async () => {
      expectMatch(JSONWEBTOKEN_MESSAGES.jwtidInvalid, await verifyMessage(forge(goodClaims), { jwtid: "j2" }));
    },
  },
  "JSONWEBTOKEN_MESSAGES.optionMustBeNumber": {
    run: async () => {
      const message = await verifyMessage(forge(goodClaims), { clockTimestamp: "now" as unknown as number });
      expectMatch(JSONWEBTOKEN_MESSAGES.optionMustBeNumber, message);
    },
  },
  "JSONWEBTOKEN_MESSAGES.expInvalid": {
    run: async () => {
      expectMatch(JSONWEBTOKEN_MESSAGES.expInvalid, await verifyMessage(forge({ ...goodClaims, exp: "soon" })));
    },
  },
  "JSONWEBTOKEN_MESSAGES.nbfInvalid": {
    run: async () => {
      expectMatch(JSONWEBTOKEN_MESSAGES.nbfInvalid, await verifyMessage(forge({ ...goodClaims, nbf: "soon" })));
    },
  },

  "POSTGRES_MESSAGES.poolCheckoutTimeout": {
    needs: "postgres",
    run: async () => {
      const pool = new pg.Pool({ connectionString: postgresUrl, max: 1, connectionTimeoutMillis: 300 });
      cleanups.push(() => pool.end());
      const held = await pool.connect();
      try {
        const error = await thrown(() => pool.connect());
        expectMatch(POSTGRES_MESSAGES.poolCheckoutTimeout, error.message);
      } finally {
        held.release();
      }
    },
  },

  "POSTGRES_MESSAGES.connectTimeout": {
    needs: "postgres",
    run: async () => {
      const pool = new pg.Pool({ connectionString: proxiedUrl(), max: 1, connectionTimeoutMillis: 300 });
      cleanups.push(() => pool.end());
      proxy!.freeze();
      try {
        const error = await thrown(() => pool.query("select 1"));
        expectMatch(POSTGRES_MESSAGES.connectTimeout, error.message);
      } finally {
        proxy!.thaw();
      }
    },
  },

  "POSTGRES_MESSAGES.queryReadTimeout": {
    needs: "postgres",
    run: async () => {
      const client = await connectedClient({ connectionString: proxiedUrl(), query_timeout: 300 });
      proxy!.freeze();
      try {
        const error = await thrown(() => client.query("select 1"));
        expectMatch(POSTGRES_MESSAGES.queryReadTimeout, error.message);
      } finally {
        proxy!.down();
        proxy!.up();
      }
    },
  },

  "POSTGRES_MESSAGES.connectionTerminated": {
    needs: "postgres",
    run: async () => {
      // The network to the server goes away under a running query.
      const cut = await connectedClient({ connectionString: proxiedUrl() });
      const running = thrown(() => cut.query("select pg_sleep(5)"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      proxy!.down();
      proxy!.up();
      const unexpected = await running;
      const match = expectMatch(POSTGRES_MESSAGES.connectionTerminated, unexpected.message);
      assert.equal(match![1], " unexpectedly");

      // The client is being ended while a query waits for an answer that never comes.
      const ending = await connectedClient({ connectionString: proxiedUrl() });
      proxy!.freeze();
      try {
        const waiting = thrown(() => ending.query("select 1"));
        await Promise.race([ending.end(), new Promise((resolve) => setTimeout(resolve, 100))]);
        proxy!.down();
        proxy!.up();
        const terminated = await waiting;
        const plain = expectMatch(POSTGRES_MESSAGES.connectionTerminated, terminated.message);
        assert.equal(plain![1], undefined);
      } finally {
        proxy!.thaw();
      }
    },
  },

  "POSTGRES_MESSAGES.notQueryableAfterError": {
    needs: "postgres",
    run: async () => {
      const client = await connectedClient({ connectionString: proxiedUrl() });
      const failed = new Promise((resolve) => client.once("error", resolve));
      proxy!.down();
      proxy!.up();
      await failed;
      const error = await thrown(() => client.query("select 1"));
      expectMatch(POSTGRES_MESSAGES.notQueryableAfterError, error.message);
    },
  },

  "POSTGRES_MESSAGES.notQueryableAfterEnd": {
    needs: "postgres",
    run: async () => {
      const client = await connectedClient({ connectionString: postgresUrl });
      await client.end();
      const error = await thrown(() => client.query("select 1"));
      expectMatch(POSTGRES_MESSAGES.notQueryableAfterEnd, error.message);
    },
  },

  "SQLITE_MESSAGES.alreadyExists": {
    run: () => {
      const dir = mkdtempSync(join(tmpdir(), "gta-messages-"));
      const db = new Database(join(dir, "race.sqlite"));
      try {
        db.exec("create table users (id text primary key)");
        db.exec("create index users_id on users (id)");
        // What the loser of a migration race runs into: the winner's table and index.
        expectMatch(
          SQLITE_MESSAGES.alreadyExists,
          ((): Error => {
            try {
              db.exec("create table users (id text primary key)");
            } catch (error) {
              return error as Error;
            }
            assert.fail("create table twice succeeded");
          })().message,
        );
        expectMatch(
          SQLITE_MESSAGES.alreadyExists,
          ((): Error => {
            try {
              db.exec("create index users_id on users (id)");
            } catch (error) {
              return error as Error;
            }
            assert.fail("create index twice succeeded");
          })().message,
        );
      } finally {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
};

describe("library messages the app matches on still read as expected", () => {
  before(async () => {
    if (postgresUrl === undefined) return;
    const upstream = new URL(postgresUrl);
    proxy = await TcpProxy.start({ host: upstream.hostname, port: Number(upstream.port || 5432) });
  });
  after(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    proxy?.thaw();
    await proxy?.close();
  });

  for (const [name, { needs, run }] of Object.entries(CASES)) {
    const skip = needs === "postgres" && postgresUrl === undefined && "TEST_DATABASE_URL is not set";
    it(name, { skip }, run);
  }
});

describe("src/library-messages.ts", () => {
  it("has a test above for every entry, and no test for an entry that is gone", () => {
    const entries: string[] = [];
    for (const [group, members] of Object.entries(libraryMessages)) {
      assert.ok(/^[A-Z0-9_]+_MESSAGES$/.test(group), `export ${group} is not a *_MESSAGES group`);
      assert.equal(typeof members, "object");
      for (const key of Object.keys(members)) entries.push(`${group}.${key}`);
    }
    assert.deepEqual(Object.keys(CASES).sort(), entries.sort());
  });

  it("holds only RegExps without the stateful g or y flag, and non-empty strings", () => {
    for (const [group, members] of Object.entries(libraryMessages)) {
      for (const [key, value] of Object.entries(members as Record<string, unknown>)) {
        if (value instanceof RegExp) assert.ok(!value.global && !value.sticky, `${group}.${key} has the g or y flag`);
        else
          assert.ok(
            typeof value === "string" && value !== "",
            `${group}.${key} is neither a RegExp nor a non-empty string`,
          );
      }
    }
  });
});
