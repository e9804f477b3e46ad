// The production surface when PostgreSQL stops answering: the document gate's lookup of an
// OPERATIONS_ANY token and introspection's lookup of its caller both need the database the first
// time an instance sees the token, and answer 503 with Retry-After instead of a 500 or a refusal
// that would blame the token.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { rootToken, withRoot } from "../helpers/admin.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { errorCodes, originOf, postGraphQL, send } from "../helpers/http.js";
import { sample } from "../helpers/outbox.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

const postgresUrl = process.env.TEST_DATABASE_URL || undefined;
const CREATE = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`;
const LISTED = "{ __typename }";

describe(
  "trusted documents and introspection while PostgreSQL is frozen (a TCP proxy that stops forwarding)",
  { skip: postgresUrl === undefined && "TEST_DATABASE_URL is not set" },
  () => {
    let proxy: TcpProxy;
    let database: TestDatabase;
    let direct: TestApp | undefined;
    let proxied: TestApp | undefined;
    let dir: string;
    before(async () => {
      const upstream = new URL(postgresUrl!);
      proxy = await TcpProxy.start({ host: upstream.hostname, port: Number(upstream.port || 5432) });
      database = createTestDatabase("postgres");
      dir = mkdtempSync(join(tmpdir(), "gta-surface-fault-"));
      const manifest = join(dir, "manifest.json");
      writeFileSync(manifest, JSON.stringify({ [createHash("sha256").update(LISTED).digest("hex")]: LISTED }));
      // "direct" mints the tokens; "proxied" has the manifest and reaches the database only through the proxy.
      direct = await startTestApp("postgres", { database, ...withRoot() });
      proxied = await startTestApp("postgres", {
        database,
        env: {
          DATABASE_URL: TcpProxy.rewrite(postgresUrl!, proxy.port),
          DATABASE_TIMEOUT: "1000ms",
          TRUSTED_DOCUMENTS: manifest,
        },
      });
    });
    after(async () => {
      proxy?.thaw();
      await proxied?.close();
      await direct?.close();
      await proxy?.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("answers 503 SERVICE_UNAVAILABLE with Retry-After to an OPERATIONS_ANY token and to an introspection caller it has not looked up yet", async () => {
      const session = await rootToken(direct!);
      const mint = async (scopes: string[]) => {
        const res = await direct!.gql(CREATE, { token: session, variables: { input: { name: "fault", scopes } } });
        assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
        return res.body.data.createApiToken.token as string;
      };
      const operator = await mint(["OPERATIONS_ANY", "PROFILE_READ"]);
      const caller = await mint(["INTROSPECT"]);
      const before = await proxied!.app.metrics.text();
      proxy.freeze();
      try {
        const unlisted = await postGraphQL(proxied!.url, { query: "{ me { id } }" }, operator);
        assert.equal(unlisted.status, 503, unlisted.text);
        assert.deepEqual(errorCodes(unlisted), ["SERVICE_UNAVAILABLE"]);
        assert.equal(unlisted.headers.get("retry-after"), "5");

        const asked = await send(`${originOf(proxied!.url)}/oauth/introspect`, {
          method: "POST",
          headers: { authorization: `Bearer ${caller}`, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token: operator }).toString(),
        });
        assert.equal(asked.status, 503, asked.text);
        assert.equal(asked.json.error, "temporarily_unavailable");
        assert.equal(asked.headers.get("retry-after"), "5");
        assert.equal(asked.headers.get("cache-control"), "no-store");

        // A listed document needs no lookup: it still runs.
        const listed = await postGraphQL(proxied!.url, { query: LISTED });
        assert.deepEqual(listed.json, { data: { __typename: "Query" } });
      } finally {
        proxy.thaw();
      }
      const after = await proxied!.app.metrics.text();
      const delta = (name: string, labels: Record<string, string>) =>
        (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
      assert.equal(delta("gta_introspections_total", { result: "unavailable" }), 1);
      assert.equal(delta("gta_documents_total", { kind: "refused" }), 0);
    });
  },
);
