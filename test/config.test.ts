import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { type Config, ConfigError } from "../src/config.js";
import { loadConfig } from "../src/load-config.js";

const STRONG_SECRET = randomBytes(48).toString("base64url");

describe("loadConfig", () => {
  let cwd: string;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "gta-config-"));
  });
  after(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  /** loadConfig's problems for `env`, failing the test when it accepts it. */
  function problemsOf(env: Record<string, string>, dir = cwd): readonly string[] {
    try {
      loadConfig(env, dir);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      return error.problems;
    }
    assert.fail(`expected ${JSON.stringify(Object.keys(env))} to be refused`);
  }

  /** Asserts exactly one problem, naming `variable` and never containing `secret`. */
  function assertOneProblem(env: Record<string, string>, variable: string, secret?: string): string {
    const problems = problemsOf(env);
    assert.equal(problems.length, 1, problems.join("\n"));
    const [problem] = problems as [string];
    assert.ok(problem.includes(variable), `"${problem}" names ${variable}`);
    if (secret !== undefined) assert.ok(!problem.includes(secret), `"${problem}" does not contain the secret`);
    return problem;
  }

  it("runs with no configuration at all on its defaults", () => {
    const config = loadConfig({}, cwd);
    assert.deepEqual(config, {
      nodeEnv: "development",
      isProduction: false,
      host: "0.0.0.0",
      port: 4000,
      dataDir: join(cwd, "data"),
      databaseUrl: undefined,
      databaseSchema: undefined,
      jwt: {
        secretKey: undefined,
        previousSecretKeys: [],
        algorithm: "HS256",
        privateKeyFile: undefined,
        previousPublicKeyFiles: [],
        accessTokenTtlSeconds: 900,
        refreshTokenTtlSeconds: 30 * 86400,
        refreshTokenReuseIntervalMs: 10_000,
        refreshTokenRetentionSeconds: 7 * 86400,
        issuer: "graphql-token-auth",
        audience: "graphql-token-auth-api",
      },
      admin: undefined,
      loginThrottle: { maxFailuresPerUserIp: 5, maxFailuresPerIp: 100, windowSeconds: 900 },
      passwordQueueMax: 64,
      redisUrl: undefined,
      redisKeyPrefix: "graphql-token-auth:",
      databaseTimeoutMs: 5000,
      redisTimeoutMs: 500,
      floodLimits: { registrationsPerIpPerHour: 30, postsPerUserPerHour: 60 },
      userBudgets: {
        postUpdatesPerHour: 120,
        loginsPerHour: 60,
        refreshesPerHour: 600,
        writesPerHour: 600,
        maxSessions: 20,
      },
      audit: { retentionSeconds: 90 * 86400 },
      logLevel: "info",
      queryLimits: {
        maxDepth: 10,
        maxAliases: 15,
        maxDirectives: 50,
        maxTokens: 500,
        maxCost: 12_000,
        maxCostInFlight: 36_000,
      },
      responseMaxBytes: 4 * 1024 * 1024,
      trustProxy: false,
      corsOrigins: ["https://studio.apollographql.com"],
      metrics: { host: "127.0.0.1", port: 9464 },
      http: {
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 5_000,
        maxConnections: 1500,
        maxBodyBytesInFlight: 64 * 1024 * 1024,
        shutdownDrainMs: 0,
      },
      subscriptions: {
        maxConnections: 1000,
        maxConnectionsPerIp: 50,
        maxAnonymousConnections: 500,
        anonymousIdleMs: 60_000,
        maxSubscriptions: 2000,
        maxSubscriptionsPerIp: 200,
        maxAnonymousSubscriptions: 1000,
        maxSubscriptionsPerConnection: 20,
        maxCost: 100,
        deliveryConcurrency: 8,
        maxQueuedEvents: 20,
        maxBufferedBytes: 256 * 1024,
      },
      email: {
        publicUrl: "http://localhost:4000",
        smtpUrl: undefined,
        from: "graphql-token-auth <no-reply@localhost>",
        passwordResetUrl: "http://localhost:4000/reset-password#token={token}",
        verificationUrl: "http://localhost:4000/verify-email#token={token}",
        resetTokenTtlSeconds: 1800,
        verificationTokenTtlSeconds: 86400,
        requestsPerIpPerHour: 20,
      },
      mfa: {
        requiredRoles: [],
        encryptionKeys: [],
        rpId: "localhost",
        origins: ["http://localhost:4000"],
        challengesPerIpPerHour: 60,
      },
      surface: { trustedDocuments: undefined, introspectionPerTokenPerMinute: 600, compiledLane: true },
    } satisfies Config);
  });

  it("reads the HTTP edges and the shutdown drain, which defaults to 5 s in production and to none elsewhere", () => {
    const config = loadConfig(
      {
        HTTP_HEADERS_TIMEOUT: "2s",
        HTTP_REQUEST_TIMEOUT: "20s",
        HTTP_KEEP_ALIVE_TIMEOUT: "65s",
        HTTP_MAX_CONNECTIONS: "300",
        HTTP_MAX_BODY_BYTES_IN_FLIGHT: "8388608",
        SHUTDOWN_DRAIN: "1500ms",
      },
      cwd,
    );
    assert.deepEqual(config.http, {
      headersTimeoutMs: 2000,
      requestTimeoutMs: 20_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 300,
      maxBodyBytesInFlight: 8 * 1024 * 1024,
      shutdownDrainMs: 1500,
    });
    const production = { NODE_ENV: "production", JWT_SECRET_KEY: STRONG_SECRET };
    assert.equal(loadConfig(production, cwd).http.shutdownDrainMs, 5000);
    assert.equal(loadConfig({ ...production, SHUTDOWN_DRAIN: "0s" }, cwd).http.shutdownDrainMs, 0);
    assert.equal(loadConfig({ NODE_ENV: "test" }, cwd).http.shutdownDrainMs, 0);
  });

  it("refuses HTTP_HEADERS_TIMEOUT longer than HTTP_REQUEST_TIMEOUT, naming both", () => {
    const problem = assertOneProblem({ HTTP_HEADERS_TIMEOUT: "40s" }, "HTTP_HEADERS_TIMEOUT");
    assert.match(problem, /HTTP_REQUEST_TIMEOUT/);
  });

  for (const [value, seconds] of [
    ["900s", 900],
    ["15m", 900],
    ["1h", 3600],
    ["30d", 30 * 86400],
  ] as const) {
    it(`accepts JWT_ACCESS_TOKEN_EXPIRES=${value} as ${seconds} seconds`, () => {
      const config = loadConfig({ JWT_ACCESS_TOKEN_EXPIRES: value, JWT_REFRESH_TOKEN_EXPIRES: "30d" }, cwd);
      assert.equal(config.jwt.accessTokenTtlSeconds, seconds);
    });
  }

  for (const [name, value, ms] of [
    ["DATABASE_TIMEOUT", "250ms", 250],
    ["DATABASE_TIMEOUT", "2s", 2000],
    ["REDIS_TIMEOUT", "1s", 1000],
    ["REDIS_TIMEOUT", "50ms", 50],
  ] as const) {
    it(`accepts ${name}=${value} as ${ms} ms`, () => {
      const config = loadConfig({ [name]: value }, cwd);
      assert.equal(name === "DATABASE_TIMEOUT" ? config.databaseTimeoutMs : config.redisTimeoutMs, ms);
    });
  }

  for (const [name, value, reason] of [
    ["DATABASE_TIMEOUT", "5000", /unit/],
    ["REDIS_TIMEOUT", "0ms", /positive duration/],
    ["REDIS_TIMEOUT", "2m", /at most 60s/],
  ] as const) {
    it(`refuses ${name}=${value}, naming the variable`, () => {
      assert.match(assertOneProblem({ [name]: value }, name), reason);
    });
  }

  it("accepts PASSWORD_QUEUE_MAX from 1 up and refuses 0, naming the variable", () => {
    assert.equal(loadConfig({ PASSWORD_QUEUE_MAX: "1" }, cwd).passwordQueueMax, 1);
    assert.match(assertOneProblem({ PASSWORD_QUEUE_MAX: "0" }, "PASSWORD_QUEUE_MAX"), /whole number from 1/);
  });

  it("accepts RESPONSE_MAX_BYTES from 1024 up and refuses less, naming the variable", () => {
    assert.equal(loadConfig({ RESPONSE_MAX_BYTES: "1024" }, cwd).responseMaxBytes, 1024);
    assert.match(assertOneProblem({ RESPONSE_MAX_BYTES: "1023" }, "RESPONSE_MAX_BYTES"), /at least 1024/);
    assert.match(assertOneProblem({ RESPONSE_MAX_BYTES: "4mb" }, "RESPONSE_MAX_BYTES"), /whole number/);
  });

  it("accepts REGISTER_MAX_PER_IP=0 (off) and refuses a negative CREATE_POST_MAX_PER_USER", () => {
    assert.equal(loadConfig({ REGISTER_MAX_PER_IP: "0" }, cwd).floodLimits.registrationsPerIpPerHour, 0);
    assert.match(assertOneProblem({ CREATE_POST_MAX_PER_USER: "-1" }, "CREATE_POST_MAX_PER_USER"), /whole number/);
    assert.equal(loadConfig({ WRITES_MAX_PER_USER: "0" }, cwd).userBudgets.writesPerHour, 0);
    assert.match(assertOneProblem({ SESSIONS_MAX_PER_USER: "0" }, "SESSIONS_MAX_PER_USER"), /from 1/);
  });

  it("refuses a bare number of seconds for JWT_ACCESS_TOKEN_EXPIRES, saying it needs a unit", () => {
    const problem = assertOneProblem({ JWT_ACCESS_TOKEN_EXPIRES: "900" }, "JWT_ACCESS_TOKEN_EXPIRES");
    assert.match(problem, /unit/);
  });

  it("refuses production without JWT_SECRET_KEY, naming it", () => {
    assertOneProblem({ NODE_ENV: "production" }, "JWT_SECRET_KEY");
  });

  it("refuses a 31-byte secret without repeating it", () => {
    const secret = randomBytes(31).toString("hex").slice(0, 31);
    const problem = assertOneProblem({ NODE_ENV: "production", JWT_SECRET_KEY: secret }, "JWT_SECRET_KEY", secret);
    assert.match(problem, /at least 32 bytes/);
  });

  const samples = [
    "super-secret",
    "your_secret_key",
    "your-256-bit-secret",
    "super-secret".repeat(3),
    "Your-256-Bit-Secret".repeat(2),
    "a".repeat(40),
  ];
  for (const secret of samples) {
    it(`refuses the sample secret ${JSON.stringify(secret.length > 24 ? `${secret.slice(0, 20)}…` : secret)} (${Buffer.byteLength(secret)} bytes) without repeating it`, () => {
      assertOneProblem({ NODE_ENV: "production", JWT_SECRET_KEY: secret }, "JWT_SECRET_KEY", secret);
    });
  }

  it("accepts a random 48-byte secret in production", () => {
    const config = loadConfig({ NODE_ENV: "production", JWT_SECRET_KEY: STRONG_SECRET }, cwd);
    assert.equal(config.isProduction, true);
    assert.equal(config.jwt.secretKey, STRONG_SECRET);
  });

  for (const port of ["abc", "70000"]) {
    it(`refuses PORT=${port}`, () => {
      assertOneProblem({ PORT: port }, "PORT");
    });
  }

  it("refuses a DATABASE_URL that is not PostgreSQL", () => {
    assertOneProblem({ DATABASE_URL: "mysql://root@localhost/app" }, "DATABASE_URL");
  });

  it("selects PostgreSQL when DATABASE_URL is a postgres:// URL", () => {
    const config = loadConfig({ DATABASE_URL: "postgres://app@db:5432/app" }, cwd);
    assert.equal(config.databaseUrl, "postgres://app@db:5432/app");
  });

  it("reads the login throttle's limits, window and Redis store, and the audit retention", () => {
    const config = loadConfig(
      {
        LOGIN_MAX_FAILURES_PER_USER_IP: "3",
        LOGIN_MAX_FAILURES_PER_IP: "50",
        LOGIN_THROTTLE_WINDOW: "1h",
        REDIS_URL: "redis://cache:6379/2",
        REDIS_KEY_PREFIX: "staging:",
        AUDIT_RETENTION: "30d",
      },
      cwd,
    );
    assert.deepEqual(config.loginThrottle, { maxFailuresPerUserIp: 3, maxFailuresPerIp: 50, windowSeconds: 3600 });
    assert.equal(config.redisUrl, "redis://cache:6379/2");
    assert.equal(config.redisKeyPrefix, "staging:");
    assert.deepEqual(config.audit, { retentionSeconds: 30 * 86400 });
  });

  for (const [variable, value] of [
    ["LOGIN_MAX_FAILURES_PER_USER_IP", "0"],
    ["LOGIN_MAX_FAILURES_PER_USER_IP", "five"],
    ["LOGIN_MAX_FAILURES_PER_IP", "-1"],
    ["LOGIN_MAX_FAILURES_PER_IP", "2.5"],
    ["LOGIN_THROTTLE_WINDOW", "900"],
    ["AUDIT_RETENTION", "90"],
    ["REDIS_KEY_PREFIX", "has spaces"],
    ["HTTP_REQUEST_TIMEOUT", "30"],
    ["HTTP_KEEP_ALIVE_TIMEOUT", "0s"],
    ["HTTP_MAX_CONNECTIONS", "0"],
    ["SHUTDOWN_DRAIN", "5"],
    ["SHUTDOWN_DRAIN", "10m"],
  ] as const) {
    it(`refuses ${variable}=${value}, naming it`, () => {
      assertOneProblem({ [variable]: value }, variable);
    });
  }

  it("refuses a REDIS_URL that is not redis:// without repeating it (it may hold a password)", () => {
    const url = "http://:hunter2-secret@cache:6379";
    assertOneProblem({ REDIS_URL: url }, "REDIS_URL", "hunter2-secret");
  });

  it("refuses ADMIN_USERNAME without ADMIN_PASSWORD", () => {
    assertOneProblem({ ADMIN_USERNAME: "root" }, "ADMIN_PASSWORD");
  });

  it("refuses a weak ADMIN_PASSWORD without repeating it", () => {
    const problem = assertOneProblem(
      { ADMIN_USERNAME: "root", ADMIN_PASSWORD: "pw12345" },
      "ADMIN_PASSWORD",
      "pw12345",
    );
    assert.match(problem, /at least 8 characters/);
  });

  it("reports every problem at once, one line per problem, each naming its variable", () => {
    const weakSecret = "your_secret_key";
    const problems = problemsOf({
      NODE_ENV: "production",
      PORT: "abc",
      JWT_ACCESS_TOKEN_EXPIRES: "900",
      DATABASE_URL: "mysql://root@localhost/app",
      JWT_SECRET_KEY: weakSecret,
      ADMIN_USERNAME: "root",
    });
    const variables = ["PORT", "JWT_ACCESS_TOKEN_EXPIRES", "DATABASE_URL", "JWT_SECRET_KEY", "ADMIN_PASSWORD"];
    assert.equal(problems.length, variables.length, problems.join("\n"));
    for (const variable of variables) assert.equal(problems.filter((p) => p.includes(variable)).length, 1, variable);
    for (const problem of problems) {
      assert.ok(!problem.includes("\n"), "one line each");
      assert.ok(!problem.includes(weakSecret), "the secret is never repeated");
    }
  });

  it("still requires JWT_SECRET_KEY in production when another variable is invalid too", () => {
    const problems = problemsOf({ NODE_ENV: "production", JWT_ACCESS_TOKEN_EXPIRES: "900" });
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.ok(problems[0]!.startsWith("JWT_ACCESS_TOKEN_EXPIRES "));
    assert.ok(problems[1]!.startsWith("JWT_SECRET_KEY "));
  });

  it("reads a .env file in the working directory, and the real environment wins over it", () => {
    const dir = mkdtempSync(join(tmpdir(), "gta-dotenv-"));
    try {
      writeFileSync(join(dir, ".env"), "PORT=5000\nJWT_ISSUER=from-dotenv\n# a comment\nLOG_LEVEL=debug\n");
      const config = loadConfig({ PORT: "6000" }, dir);
      assert.equal(config.port, 6000);
      assert.equal(config.jwt.issuer, "from-dotenv");
      assert.equal(config.logLevel, "debug");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("returns a frozen config that no module can change", () => {
    const config = loadConfig({}, cwd);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.jwt));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (config.jwt as { issuer: string }).issuer = "attacker";
    }, TypeError);
    assert.equal(config.port, 4000);
    assert.equal(config.jwt.issuer, "graphql-token-auth");
  });
});
