// `npm run documents:check -- FILE`: a manifest checked before it is deployed, as the server would
// check it at start-up, with the limits configured in the environment.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { documentHash } from "../src/graphql/trusted-documents.js";
import { runNode } from "./helpers/processes.js";

/** The compiled script, beside the compiled tests (dist/src/check-documents.js). */
const CHECK = new URL("../src/check-documents.js", import.meta.url);

const ME = "query Me { me { id username } }";
// 100 × (2 + 20 + 2 + 1) = 2,500: within the default QUERY_MAX_COST (12,000), not within 2,000.
const PAGE = "query Page { posts(first: 100) { body author { id } } }";

function manifest(...bodies: string[]): string {
  return JSON.stringify(Object.fromEntries(bodies.map((body) => [documentHash(body), body])));
}

describe("npm run documents:check", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gta-check-documents-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the check in `dir` (an empty .env-less directory) with `env` and `args`. */
  function check(args: string[], env: Record<string, string> = {}) {
    return runNode(CHECK, args, { env: { DATA_DIR: join(dir, "data"), ...env }, cwd: dir });
  }

  it("exits with 0 and the count for a manifest the server would load, in either format", async () => {
    const codegen = join(dir, "persisted-documents.json");
    writeFileSync(codegen, manifest(ME, PAGE));
    assert.deepEqual(await check([codegen]), {
      code: 0,
      signal: null,
      stdout: `${codegen}: 2 documents, each would load\n`,
      stderr: "",
    });
    const apollo = join(dir, "apollo.json");
    writeFileSync(
      apollo,
      JSON.stringify({
        format: "apollo-persisted-query-manifest",
        version: 1,
        operations: [{ id: documentHash(ME), name: "Me", type: "query", body: ME }],
      }),
    );
    const result = await check([], { TRUSTED_DOCUMENTS: apollo });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${apollo}: 1 documents, each would load\n`, "FILE defaults to TRUSTED_DOCUMENTS");
  });

  it("exits with 1 and one line per problem, with production's rules and the configured limits", async () => {
    const file = join(dir, "bad.json");
    const introspection = "{ __schema { queryType { name } } }";
    writeFileSync(file, manifest(ME, PAGE, "{ mee }", introspection));
    // NODE_ENV development: still production's rules (no introspection), and no production requirement is asked.
    const result = await check([file], { QUERY_MAX_COST: "2000", NODE_ENV: "development" });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    const where = (n: number, body: string) =>
      `error: TRUSTED_DOCUMENTS (${file}): document ${n} (id ${documentHash(body)})`;
    assert.deepEqual(result.stderr.trim().split("\n"), [
      `${where(2, PAGE)} can never run: operation Page costs at least 2500, over QUERY_MAX_COST (2000)`,
      `${where(3, "{ mee }")} does not validate: Cannot query field "mee" on type "Query". Did you mean "me"?`,
      `${where(4, introspection)} does not validate: GraphQL introspection has been disabled, but the requested ` +
        'query contained the field "__schema". GraphQL introspection has been disabled, but the requested query ' +
        'contained the field "queryType".',
    ]);
  });

  it("exits with 1 for a file that is missing or no manifest, and 2 without a file", async () => {
    const missing = await check([join(dir, "missing.json")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: TRUSTED_DOCUMENTS \(.*missing\.json\) cannot be read: ENOENT/);
    const list = join(dir, "list.json");
    writeFileSync(list, "[]");
    assert.equal((await check([list])).stderr, `error: TRUSTED_DOCUMENTS (${list}) is not a JSON object\n`);
    const usage = await check([]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^Usage: npm run documents:check -- \[FILE\]/);
  });

  it("is the npm script documents:check", () => {
    const root = new URL("../../package.json", import.meta.url);
    const scripts = (JSON.parse(readFileSync(root, "utf8")) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts["documents:check"] ?? "", /node dist\/src\/check-documents\.js$/);
  });
});
