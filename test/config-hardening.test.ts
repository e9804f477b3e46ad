import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ConfigError } from "../src/config.js";
import { loadConfig } from "../src/load-config.js";

const PRODUCTION = { NODE_ENV: "production", JWT_SECRET_KEY: randomBytes(48).toString("base64url") };

describe("loadConfig: query limits, TRUST_PROXY and CORS_ORIGINS", () => {
  let cwd: string;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "gta-config-hardening-"));
  });
  after(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  /** loadConfig's problems for `env`, failing the test when it accepts it. */
  function problemsOf(env: Record<string, string>): readonly string[] {
    try {
      loadConfig(env, cwd);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      return error.problems;
    }
    assert.fail(`expected ${JSON.stringify(env)} to be refused`);
  }

  /** Asserts exactly one problem, and that it starts with `variable`. */
  function assertOneProblem(env: Record<string, string>, variable: string): string {
    const problems = problemsOf(env);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.ok(problems[0]!.startsWith(`${variable} `), `"${problems[0]}" names ${variable}`);
    return problems[0]!;
  }

  describe("query limits", () => {
    it("defaults to depth 10, 15 aliases, 50 directives, 500 tokens and cost 12,000, in every mode", () => {
      const expected = {
        maxDepth: 10,
        maxAliases: 15,
        maxDirectives: 50,
        maxTokens: 500,
        maxCost: 12_000,
        maxCostInFlight: 36_000,
      };
      assert.deepEqual(loadConfig({}, cwd).queryLimits, expected);
      assert.deepEqual(loadConfig(PRODUCTION, cwd).queryLimits, expected);
    });

    it("reads each QUERY_MAX_* variable", () => {
      const config = loadConfig(
        {
          QUERY_MAX_DEPTH: "12",
          QUERY_MAX_ALIASES: "30",
          QUERY_MAX_DIRECTIVES: " 5 ",
          QUERY_MAX_TOKENS: "2000",
          QUERY_MAX_COST: "100000",
          QUERY_MAX_COST_IN_FLIGHT: "300000",
        },
        cwd,
      );
      assert.deepEqual(config.queryLimits, {
        maxDepth: 12,
        maxAliases: 30,
        maxDirectives: 5,
        maxTokens: 2000,
        maxCost: 100000,
        maxCostInFlight: 300000,
      });
      assert.ok(Object.isFrozen(config.queryLimits));
    });

    it("refuses QUERY_MAX_COST_IN_FLIGHT below QUERY_MAX_COST: an operation at the limit could never run", () => {
      const problem = assertOneProblem({ QUERY_MAX_COST: "50000" }, "QUERY_MAX_COST_IN_FLIGHT");
      assert.match(problem, /must be at least QUERY_MAX_COST/);
    });

    for (const variable of [
      "QUERY_MAX_DEPTH",
      "QUERY_MAX_ALIASES",
      "QUERY_MAX_DIRECTIVES",
      "QUERY_MAX_TOKENS",
      "QUERY_MAX_COST",
      "QUERY_MAX_COST_IN_FLIGHT",
    ]) {
      for (const value of ["0", "-1", "1.5", "ten", "1e3", "", "9999999999"]) {
        it(`refuses ${variable}=${JSON.stringify(value)} as not a whole number from 1 to 999999999`, () => {
          const problem = assertOneProblem({ [variable]: value }, variable);
          assert.match(problem, /must be a whole number from 1 to 999999999$/);
        });
      }
    }
  });

  describe("TRUST_PROXY", () => {
    it("is off when unset, empty or false: the socket's address is the client's", () => {
      for (const env of [{}, { TRUST_PROXY: "" }, { TRUST_PROXY: "false" }, { TRUST_PROXY: "FALSE" }]) {
        assert.equal(loadConfig(env, cwd).trustProxy, false, JSON.stringify(env));
      }
    });

    it("trusts every proxy with true", () => {
      assert.equal(loadConfig({ TRUST_PROXY: "true" }, cwd).trustProxy, true);
      assert.equal(loadConfig({ TRUST_PROXY: " True " }, cwd).trustProxy, true);
    });

    it("reads a comma-separated list of addresses, CIDR ranges and proxy-addr's range names", () => {
      const config = loadConfig(
        { TRUST_PROXY: "10.0.0.1, 10.0.0.0/8,192.168.0.0/16 ,::1, fd00::/8, loopback, uniquelocal, linklocal" },
        cwd,
      );
      assert.deepEqual(config.trustProxy, [
        "10.0.0.1",
        "10.0.0.0/8",
        "192.168.0.0/16",
        "::1",
        "fd00::/8",
        "loopback",
        "uniquelocal",
        "linklocal",
      ]);
      assert.ok(Object.isFrozen(config.trustProxy));
    });

    it("refuses a hop count, pointing to a list of addresses instead", () => {
      const problem = assertOneProblem({ TRUST_PROXY: "1" }, "TRUST_PROXY");
      assert.match(problem, /hop count/);
      assert.match(problem, /addresses or CIDR ranges/);
    });

    for (const entry of ["proxy.internal", "10.0.0.0/33", "::1/129", "10.0.0", "10.0.0.0/", "*"]) {
      it(`refuses ${JSON.stringify(entry)}, quoting it`, () => {
        const problem = assertOneProblem({ TRUST_PROXY: `127.0.0.1,${entry}` }, "TRUST_PROXY");
        assert.ok(problem.includes(JSON.stringify(entry)), problem);
      });
    }

    it("reports each bad entry on its own line", () => {
      const problems = problemsOf({ TRUST_PROXY: "nope, 10.0.0.0/8, 300.1.1.1" });
      assert.equal(problems.length, 2, problems.join("\n"));
      assert.ok(problems.every((p) => p.startsWith("TRUST_PROXY ")));
      assert.ok(problems[0]!.includes('"nope"'));
      assert.ok(problems[1]!.includes('"300.1.1.1"'));
    });
  });

  describe("CORS_ORIGINS", () => {
    it("defaults to Apollo Studio's origin in development and test, and to none in production", () => {
      assert.deepEqual(loadConfig({}, cwd).corsOrigins, ["https://studio.apollographql.com"]);
      assert.deepEqual(loadConfig({ NODE_ENV: "test" }, cwd).corsOrigins, ["https://studio.apollographql.com"]);
      assert.deepEqual(loadConfig({ CORS_ORIGINS: "" }, cwd).corsOrigins, ["https://studio.apollographql.com"]);
      assert.deepEqual(loadConfig(PRODUCTION, cwd).corsOrigins, []);
    });

    it("replaces the default with the listed origins, in any mode", () => {
      const origins = "https://app.example, http://localhost:5173,https://admin.app.example:8443";
      const expected = ["https://app.example", "http://localhost:5173", "https://admin.app.example:8443"];
      assert.deepEqual(loadConfig({ CORS_ORIGINS: origins }, cwd).corsOrigins, expected);
      const production = loadConfig({ ...PRODUCTION, CORS_ORIGINS: origins }, cwd);
      assert.deepEqual(production.corsOrigins, expected);
      assert.ok(Object.isFrozen(production.corsOrigins));
    });

    const refused: Array<[string, RegExp]> = [
      ["*", /`\*` is not accepted/],
      ["https://app.example/", /write it as https:\/\/app\.example$/],
      ["HTTPS://App.Example", /write it as https:\/\/app\.example$/],
      ["https://app.example:443", /write it as https:\/\/app\.example$/],
      ["https://app.example/graphql", /has a path, query or fragment \(write https:\/\/app\.example\)$/],
      ["https://app.example?x=1", /has a path, query or fragment/],
      ["ftp://app.example", /not an http or https origin$/],
      ["app.example", /not an origin like https:\/\/app\.example$/],
    ];
    for (const [value, message] of refused) {
      it(`refuses ${JSON.stringify(value)}`, () => {
        const problem = assertOneProblem({ CORS_ORIGINS: `https://ok.example,${value}` }, "CORS_ORIGINS");
        assert.match(problem, message);
      });
    }

    it("refuses an origin with credentials without repeating them", () => {
      const problem = assertOneProblem({ CORS_ORIGINS: "https://user:hunter2hunter2@app.example" }, "CORS_ORIGINS");
      assert.match(problem, /credentials/);
      assert.ok(!problem.includes("hunter2"), problem);
    });
  });

  it("reports every problem with the new variables at once, one line each", () => {
    const problems = problemsOf({
      QUERY_MAX_DEPTH: "0",
      QUERY_MAX_ALIASES: "x",
      QUERY_MAX_DIRECTIVES: "-3",
      QUERY_MAX_TOKENS: "1.5",
      QUERY_MAX_COST: "",
      TRUST_PROXY: "2",
      CORS_ORIGINS: "*",
    });
    const variables = [
      "QUERY_MAX_DEPTH",
      "QUERY_MAX_ALIASES",
      "QUERY_MAX_DIRECTIVES",
      "QUERY_MAX_TOKENS",
      "QUERY_MAX_COST",
      "TRUST_PROXY",
      "CORS_ORIGINS",
    ];
    assert.equal(problems.length, variables.length, problems.join("\n"));
    for (const variable of variables)
      assert.equal(problems.filter((p) => p.startsWith(`${variable} `)).length, 1, variable);
    for (const problem of problems) assert.ok(!problem.includes("\n"), "one line each");
  });
});
