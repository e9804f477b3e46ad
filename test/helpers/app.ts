import "reflect-metadata";

import { randomBytes } from "node:crypto";
import { after, before } from "node:test";
import { Writable } from "node:stream";

import { type App, createApp } from "../../src/app.js";
import { loadConfig } from "../../src/load-config.js";
import { createLogger } from "../../src/logger.js";
import { type DatabaseKind, type TestDatabase, createTestDatabase } from "./databases.js";

/** A strong secret for test apps (the config refuses weak ones). */
export const TEST_SECRET = randomBytes(48).toString("base64url");

export interface GraphQLResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T | null; errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, any> }> };
}

export interface TestApp {
  app: App;
  url: string;
  database: TestDatabase;
  /** Every log line the app wrote, as raw JSON text. */
  logs: string[];
  /** POSTs a GraphQL operation over real HTTP. */
  gql<T = any>(query: string, options?: { variables?: Record<string, unknown>; token?: string; headers?: Record<string, string> }): Promise<GraphQLResponse<T>>;
  /** Registers a user and returns its access token and id. */
  register(username: string, password?: string): Promise<{ token: string; userId: string }>;
  /** Logs in and returns the access token; fails the test on any error. */
  login(username: string, password?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds an app on a fresh database, listening on a random loopback port. `env` adds or overrides
 * variables; `database` reuses an existing test database (to restart on the same data).
 */
export interface StartOptions {
  env?: Record<string, string>;
  database?: TestDatabase;
  now?: () => number;
}

/**
 * Suites register dozens of users from 127.0.0.1 and some create many posts as one user, so the
 * flood limits are raised far above what any suite reaches (still counted, so every suite runs
 * through the limiter). The suites of the limits themselves set REGISTER_MAX_PER_IP and
 * CREATE_POST_MAX_PER_USER in `env`.
 */
export const FLOOD_LIMITS_FOR_TESTS = { REGISTER_MAX_PER_IP: "100000", CREATE_POST_MAX_PER_USER: "100000" } as const;

export async function startTestApp(kind: DatabaseKind, options: StartOptions = {}): Promise<TestApp> {
  const database = options.database ?? createTestDatabase(kind);
  // Debug: suites check the per-request "access token rejected" line, which is logged at debug.
  const config = loadConfig(
    { NODE_ENV: "test", LOG_LEVEL: "debug", JWT_SECRET_KEY: TEST_SECRET, ...FLOOD_LIMITS_FOR_TESTS, ...database.env, ...options.env },
    database.dataDir,
  );
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const app = await createApp(config, { logger: createLogger(config, sink), now: options.now });
  await app.server.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const url = `http://127.0.0.1:${address.port}/graphql`;

  const gql: TestApp["gql"] = async (query, opts = {}) => {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...opts.headers,
      },
      body: JSON.stringify({ query, variables: opts.variables }),
    });
    return { status: response.status, headers: response.headers, body: await response.json() };
  };

  return {
    app,
    url,
    database,
    logs,
    gql,
    async register(username, password = "correct horse battery") {
      const res = await gql(`mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`, {
        variables: { input: { username, password } },
      });
      if (!res.body.data?.register) throw new Error(`register failed: ${JSON.stringify(res.body.errors)}`);
      return { token: res.body.data.register.accessToken, userId: res.body.data.register.user.id };
    },
    async login(username, password = "correct horse battery") {
      const res = await gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
        variables: { input: { username, password } },
      });
      if (res.status !== 200 || !res.body.data?.login) throw new Error(`login of ${username} failed: ${res.status} ${JSON.stringify(res.body.errors)}`);
      return res.body.data.login.accessToken;
    },
    async close() {
      await app.close();
    },
  };
}

/** Every stored username, in sign-up order, as an admin sees them; fails the test on any error. */
export async function listUsernames(t: TestApp, adminToken: string): Promise<string[]> {
  const res = await t.gql(`{ users { username } }`, { token: adminToken });
  if (res.status !== 200 || res.body.errors) throw new Error(`users query failed: ${JSON.stringify(res.body)}`);
  return res.body.data.users.map((u: { username: string }) => u.username);
}

/** The `extensions.code` of each error, in order. */
export function codes(response: GraphQLResponse): string[] {
  return (response.body.errors ?? []).map((e) => e.extensions?.code);
}

/**
 * The suite's app: started on a fresh database in the enclosing `describe`'s before() and closed,
 * with its database dropped, in its after(). The returned object forwards to that app, so tests use
 * it like the TestApp itself; touching it outside a test is an error.
 */
export function useTestApp(kind: DatabaseKind, options: StartOptions = {}): TestApp {
  let current: TestApp | undefined;
  before(async () => {
    current = await startTestApp(kind, options);
  });
  after(async () => {
    await current?.close();
    await current?.database.drop();
  });
  return new Proxy({} as TestApp, {
    get(_target, property) {
      if (!current) throw new Error("the test app is started in before(); use it inside a test");
      const value = Reflect.get(current, property, current);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}
