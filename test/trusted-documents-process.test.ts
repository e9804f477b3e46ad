// TRUSTED_DOCUMENTS in the server process (main.js): a manifest with a problem stops the start with
// `config error:` lines like any setting; SIGHUP reads it again, and a broken one keeps the set in force.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { documentHash } from "../src/graphql/trusted-documents.js";
import { DOCUMENT_NOT_ALLOWED_MESSAGE } from "../src/http/document-gate.js";
import { killRunningServers, SERVER_MAIN, ServerProcess, START_TIMEOUT_MS } from "./helpers/app.js";
import { createTestDatabase, DATABASES, type TestDatabase } from "./helpers/databases.js";
import { freePort, runNode } from "./helpers/processes.js";

const FIRST = "query First { __typename }";
const SECOND = "query Second { t: __typename }";

/** The gate's answer to a document the set in force does not list. */
const REFUSED = {
  status: 400,
  body: { errors: [{ message: DOCUMENT_NOT_ALLOWED_MESSAGE, extensions: { code: "PERSISTED_QUERY_NOT_ALLOWED" } }] },
};

/** A codegen-style manifest (`{"<sha256>": "<text>"}`) of `bodies`. */
function manifest(...bodies: string[]): string {
  return JSON.stringify(Object.fromEntries(bodies.map((body) => [documentHash(body), body])));
}

after(() => killRunningServers());

describe("a TRUSTED_DOCUMENTS manifest that does not load stops the server process", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gta-trusted-main-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts main.js with TRUSTED_DOCUMENTS = `file` and returns how it ended. */
  async function startWith(file: string) {
    const dataDir = join(dir, `data-${Math.random().toString(36).slice(2)}`);
    const result = await runNode(SERVER_MAIN, [], {
      env: { DATA_DIR: dataDir, PORT: String(await freePort()), HOST: "127.0.0.1", TRUSTED_DOCUMENTS: file },
      cwd: dir,
      timeoutMs: START_TIMEOUT_MS,
    });
    return { ...result, ready: result.stdout.includes('"server ready"') };
  }

  it("exits with 1 before listening, one `config error: TRUSTED_DOCUMENTS` line per problem naming the document", async () => {
    const file = join(dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({ [documentHash(FIRST)]: FIRST, [documentHash("{ mee }")]: "{ mee }", ["0".repeat(64)]: SECOND }),
    );
    const result = await startWith(file);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.ready, false, "no server ever listened");
    assert.deepEqual(result.stderr.trim().split("\n"), [
      `config error: TRUSTED_DOCUMENTS (${file}): document 2 (id ${documentHash("{ mee }")}) does not validate: ` +
        'Cannot query field "mee" on type "Query". Did you mean "me"?',
      `config error: TRUSTED_DOCUMENTS (${file}): document 3 (id ${"0".repeat(64)}) has an id that is not the SHA-256 ` +
        "of its text (generate ids with sha256)",
    ]);
  });

  it("exits with 1 when the file is missing or is not a manifest", async () => {
    const missing = join(dir, "missing.json");
    const unread = await startWith(missing);
    assert.equal(unread.code, 1);
    assert.equal(unread.stderr, "config error: TRUSTED_DOCUMENTS must name an existing manifest file\n");
    const notJson = join(dir, "not-json.json");
    writeFileSync(notJson, "{ me { id } }");
    const garbled = await startWith(notJson);
    assert.equal(garbled.code, 1);
    assert.equal(garbled.stderr, `config error: TRUSTED_DOCUMENTS (${notJson}) is not JSON\n`);
    assert.equal(garbled.ready, false);
  });
});

for (const kind of DATABASES) {
  describe(`SIGHUP reloads TRUSTED_DOCUMENTS (${kind})`, () => {
    let database: TestDatabase;
    let file: string;
    let server: ServerProcess;
    before(async () => {
      database = createTestDatabase(kind);
      file = join(database.dataDir, "manifest.json");
      writeFileSync(file, manifest(FIRST));
      server = await ServerProcess.start({ ...database.env, TRUSTED_DOCUMENTS: file }, database.dataDir);
    });
    after(async () => {
      if (server.child.exitCode === null) await server.stop();
      await database?.drop();
    });

    it("puts a manifest with an added document in force, and keeps it when the next one is broken", async () => {
      assert.deepEqual(await server.gql(SECOND), REFUSED, "not listed yet");
      writeFileSync(file, manifest(FIRST, SECOND));
      server.child.kill("SIGHUP");
      const reloaded = await server.waitForLog((line) => line.msg === "trusted documents reloaded");
      assert.equal(reloaded.documents, 2);
      assert.equal(reloaded.file, file);
      assert.deepEqual(await server.gql(SECOND), { status: 200, body: { data: { t: "Query" } } });

      // SECOND dropped and a document that does not validate: refused whole, SECOND still runs.
      writeFileSync(file, manifest(FIRST, "{ nope }"));
      server.child.kill("SIGHUP");
      const refused = await server.waitForLog(
        (line) => line.msg?.startsWith("trusted documents not reloaded") === true,
      );
      assert.equal(refused.level, 50, "an error");
      assert.equal(refused.documents, 2, "the two documents stay in force");
      assert.deepEqual(refused.problems, [
        `TRUSTED_DOCUMENTS (${file}): document 2 (id ${documentHash("{ nope }")}) does not validate: ` +
          'Cannot query field "nope" on type "Query".',
      ]);
      assert.deepEqual(await server.gql(SECOND), { status: 200, body: { data: { t: "Query" } } });
      assert.deepEqual(await server.gql("{ nope }"), REFUSED);
      assert.deepEqual(await server.stop(), { code: 0, signal: null }, "the server kept serving and stops cleanly");
    });
  });
}
