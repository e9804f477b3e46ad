// Starting apps for tests: in process (startTestApp, useTestApp) on a fresh database, or as the real
// server process `npm start` runs (ServerProcess).
import "reflect-metadata";

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { Writable } from "node:stream";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

import { type App, createApp } from "../../src/app.js";
import { loadConfig } from "../../src/load-config.js";
import { createLogger } from "../../src/logger.js";
import { type ApiClient, gql as gqlAt, type GqlOptions, type GraphQLResponse, PASSWORD } from "./api.js";
import { createTestDatabase, type DatabaseKind, type TestDatabase } from "./databases.js";
import { freePort, waitForExit } from "./processes.js";

/** A strong secret for test apps (the config refuses weak ones). */
export const TEST_SECRET = randomBytes(48).toString("base64url");

export interface TestApp extends ApiClient {
  app: App;
  url: string;
  database: TestDatabase;
  /** Every log line the app wrote, as raw JSON text. */
  logs: string[];
  /** POSTs a GraphQL operation over real HTTP (see api.ts's `gql`). */
  gql<T = any>(query: string, options?: GqlOptions): Promise<GraphQLResponse<T>>;
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
  /** The loopback port to listen on (default 0: any free one), for a suite whose settings name it (PUBLIC_URL). */
  port?: number;
}

/**
 * Suites register dozens of users from 127.0.0.1 and some create many posts, log in many times or
 * hold many sessions as one user, so the flood limits and the session cap are raised far above what
 * any suite reaches (still counted, so every suite runs through the limiter). The suites of the
 * limits themselves set them in `env`.
 */
export const FLOOD_LIMITS_FOR_TESTS = {
  REGISTER_MAX_PER_IP: "100000",
  CREATE_POST_MAX_PER_USER: "100000",
  UPDATE_POST_MAX_PER_USER: "100000",
  LOGIN_MAX_PER_USER: "100000",
  REFRESH_MAX_PER_USER: "100000",
  WRITES_MAX_PER_USER: "100000",
  SESSIONS_MAX_PER_USER: "100000",
  EMAIL_REQUESTS_MAX_PER_IP: "100000",
  PASSKEY_CHALLENGES_MAX_PER_IP: "100000",
} as const;

/**
 * With GTA_LANE_PARITY naming a file (test/graphql/compiled-lane-parity.test.ts sets it), every
 * request the compiled lane serves is answered by a shadow Apollo too, and each comparison appended
 * to that file as a JSON line.
 */
const PARITY_FILE = process.env.GTA_LANE_PARITY;
const laneParity = PARITY_FILE
  ? (record: unknown) => appendFileSync(PARITY_FILE, `${JSON.stringify(record)}\n`)
  : undefined;

export async function startTestApp(kind: DatabaseKind, options: StartOptions = {}): Promise<TestApp> {
  const database = options.database ?? createTestDatabase(kind);
  // Debug: suites check the per-request "access token rejected" line, which is logged at debug.
  const config = loadConfig(
    {
      NODE_ENV: "test",
      LOG_LEVEL: "debug",
      JWT_SECRET_KEY: TEST_SECRET,
      ...FLOOD_LIMITS_FOR_TESTS,
      ...database.env,
      ...options.env,
    },
    database.dataDir,
  );
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const app = await createApp(config, { logger: createLogger(config, sink), now: options.now, laneParity });
  await app.server.listen({ host: "127.0.0.1", port: options.port ?? 0 });
  const address = app.server.server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const url = `http://127.0.0.1:${address.port}/graphql`;

  const gql: TestApp["gql"] = (query, opts = {}) => gqlAt(url, query, opts);

  return {
    app,
    url,
    database,
    logs,
    gql,
    async register(username, password = PASSWORD) {
      const res = await gql(
        `mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`,
        {
          variables: { input: { username, password } },
        },
      );
      if (!res.body.data?.register) throw new Error(`register failed: ${JSON.stringify(res.body.errors)}`);
      return { token: res.body.data.register.accessToken, userId: res.body.data.register.user.id };
    },
    async login(username, password = PASSWORD) {
      const res = await gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
        variables: { input: { username, password } },
      });
      if (res.status !== 200 || !res.body.data?.login)
        throw new Error(`login of ${username} failed: ${res.status} ${JSON.stringify(res.body.errors)}`);
      return res.body.data.login.accessToken;
    },
    async close() {
      await app.close();
    },
  };
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
  return forwardTo(() => current);
}

/**
 * Two instances of the app on one fresh database (PostgreSQL: one schema, LISTEN/NOTIFY between
 * them; SQLite: one DATA_DIR, polling), both started with `options`, in the enclosing describe's
 * before(), and closed in its after(). Returned like {@link useTestApp}'s app.
 */
export function useTwoTestApps(kind: DatabaseKind, options: StartOptions = {}): [TestApp, TestApp] {
  let a: TestApp | undefined;
  let b: TestApp | undefined;
  before(async () => {
    a = await startTestApp(kind, options);
    b = await startTestApp(kind, { ...options, database: a.database });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await a?.database.drop();
  });
  return [forwardTo(() => a), forwardTo(() => b)];
}

/** An object that forwards to the app `current()` returns; touching it before the app started is an error. */
function forwardTo(current: () => TestApp | undefined): TestApp {
  return new Proxy({} as TestApp, {
    get(_target, property) {
      const app = current();
      if (!app) throw new Error("the test app is started in before(); use it inside a test");
      const value = Reflect.get(app, property, app);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(app) : value;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The server as a child process: `node dist/bundle/main.js`, what `npm start` runs.

/** What `npm start` runs: the bundle next to the compiled tests (dist/bundle/main.js). */
export const SERVER_MAIN = new URL("../../bundle/main.js", import.meta.url);

/** Longest wait for "server ready", so that a hung start fails its test instead of hanging CI. */
export const START_TIMEOUT_MS = 30_000;
/** Longest wait for a clean stop after SIGTERM. */
export const STOP_TIMEOUT_MS = 15_000;

export type LogLine = Record<string, any> & { level?: number; msg?: string; reqId?: string };

const running = new Set<ServerProcess>();
process.on("exit", () => killRunningServers());

/** SIGKILLs every server process still running (also done when the test process exits). */
export function killRunningServers(): void {
  for (const server of running) server.child.kill("SIGKILL");
}

/**
 * `node dist/bundle/main.js` as a real process on a free loopback port with exactly `env` (nothing
 * inherited; METRICS_PORT is 0 unless `env` sets it), and everything it wrote. Any process still running when the test process exits is
 * killed.
 */
export class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";

  private constructor(
    env: Record<string, string>,
    readonly port: number,
    cwd: string,
  ) {
    this.child = spawn(process.execPath, [fileURLToPath(SERVER_MAIN)], {
      // No metrics listener unless a suite asks: suites run in parallel, and 9464 is one port.
      env: { METRICS_PORT: "0", ...env, PORT: String(port) },
      cwd,
      stdio: "pipe",
    });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    running.add(this);
    this.child.on("exit", () => running.delete(this));
  }

  /** Spawns the server with exactly `env` (plus PORT) and returns at once; see {@link ready}. */
  static async spawn(env: Record<string, string>, cwd: string): Promise<ServerProcess> {
    return new ServerProcess(env, await freePort(), cwd);
  }

  /** Spawns the server on 127.0.0.1 (unless `env` sets HOST) and resolves once it logged "server ready"; rejects when it exits first or after START_TIMEOUT_MS. */
  static async start(env: Record<string, string>, cwd: string): Promise<ServerProcess> {
    const server = await ServerProcess.spawn({ HOST: "127.0.0.1", ...env }, cwd);
    await server.ready();
    return server;
  }

  /** Waits for "server ready". */
  async ready(): Promise<void> {
    await this.waitForLog((line) => line.msg === "server ready");
  }

  /** The JSON log lines written to stdout so far (a last, incomplete line is left out). */
  logs(): LogLine[] {
    const complete = this.stdout.slice(0, this.stdout.lastIndexOf("\n") + 1);
    return complete
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** Resolves with the first log line matching `predicate`; rejects when the process exits first or after `timeoutMs`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.logs().find(predicate);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`server exited with ${code} before the expected log line; stderr: ${this.stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`no matching log line within ${timeoutMs} ms; stdout: ${this.stdout}; stderr: ${this.stderr}`),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout.off("data", check);
        this.child.off("exit", onExit);
      };
      this.child.stdout.on("data", check);
      this.child.on("exit", onExit);
      check();
    });
  }

  /** Sends `signal` and resolves with the exit status, or rejects after `timeoutMs`. */
  async signal(
    signal: NodeJS.Signals,
    timeoutMs: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const exited = waitForExit(this.child, timeoutMs);
    this.child.kill(signal);
    return exited;
  }

  /** Sends SIGTERM and resolves with the exit status, or rejects after STOP_TIMEOUT_MS. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.signal("SIGTERM", STOP_TIMEOUT_MS);
  }

  /** The URL of `path` on this server. */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  get graphqlUrl(): string {
    return this.url("/graphql");
  }

  /** POSTs a GraphQL operation and returns status and parsed body (the body must be JSON). */
  async gql(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<{ status: number; body: any }> {
    const response = await fetch(this.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(START_TIMEOUT_MS),
    });
    return { status: response.status, body: await response.json() };
  }
}

/** The code of a connection-level failure of `fetch` (refused, reset, closed by the peer), or undefined for anything else. */
export function connectionFailure(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  return code !== undefined && ["ECONNREFUSED", "ECONNRESET", "EPIPE", "UND_ERR_SOCKET"].includes(code)
    ? code
    : undefined;
}
