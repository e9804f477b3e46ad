import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ConfigError, loadConfig } from "../src/config.js";

const PRODUCTION = { NODE_ENV: "production", JWT_SECRET_KEY: randomBytes(48).toString("base64url") };

describe("loadConfig: query limits", () => {
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
    it("defaults to depth 10, 15 aliases, 50 directives, 500 tokens and cost 5000, in every mode", () => {
      const expected = { maxDepth: 10, maxAliases: 15, maxDirectives: 50, maxTokens: 500, maxCost: 5000 };
      assert.deepEqual(loadConfig({}, cwd).queryLimits, expected);
      assert.deepEqual(loadConfig(PRODUCTION, cwd).queryLimits, expected);
    });

    it("reads each QUERY_MAX_* variable", () => {
      const config = loadConfig(
        { QUERY_MAX_DEPTH: "12", QUERY_MAX_ALIASES: "30", QUERY_MAX_DIRECTIVES: " 5 ", QUERY_MAX_TOKENS: "2000", QUERY_MAX_COST: "100000" },
        cwd,
      );
      assert.deepEqual(config.queryLimits, { maxDepth: 12, maxAliases: 30, maxDirectives: 5, maxTokens: 2000, maxCost: 100000 });
      assert.ok(Object.isFrozen(config.queryLimits));
    });

    for (const variable of ["QUERY_MAX_DEPTH", "QUERY_MAX_ALIASES", "QUERY_MAX_DIRECTIVES", "QUERY_MAX_TOKENS", "QUERY_MAX_COST"]) {
      for (const value of ["0", "-1", "1.5", "ten", "1e3", "", "9999999999"]) {
        it(`refuses ${variable}=${JSON.stringify(value)} as not a whole number from 1 to 999999999`, () => {
          const problem = assertOneProblem({ [variable]: value }, variable);
          assert.match(problem, /must be a whole number from 1 to 999999999$/);
        });
      }
    }
  });

  it("reports every problem with the new variables at once, one line each", () => {
    const problems = problemsOf({
      QUERY_MAX_DEPTH: "0",
      QUERY_MAX_ALIASES: "x",
      QUERY_MAX_DIRECTIVES: "-3",
      QUERY_MAX_TOKENS: "1.5",
      QUERY_MAX_COST: "",
    });
    const variables = ["QUERY_MAX_DEPTH", "QUERY_MAX_ALIASES", "QUERY_MAX_DIRECTIVES", "QUERY_MAX_TOKENS", "QUERY_MAX_COST"];
    assert.equal(problems.length, variables.length, problems.join("\n"));
    for (const variable of variables) assert.equal(problems.filter((p) => p.startsWith(`${variable} `)).length, 1, variable);
    for (const problem of problems) assert.ok(!problem.includes("\n"), "one line each");
  });
});
