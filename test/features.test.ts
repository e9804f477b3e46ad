import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { pino } from "pino";

import type { Config } from "../src/config.js";
import { buildCore } from "../src/core.js";
import { defineFeature } from "../src/feature.js";
import { type AnyFeature, assemble, FEATURES, resolverClasses } from "../src/features.js";
import { Closer } from "../src/lifecycle.js";
import { loadConfig } from "../src/load-config.js";
import { createServices } from "../src/services.js";
import { TEST_SECRET } from "./helpers/app.js";
import { createTestDatabase } from "./helpers/databases.js";

class NotesResolver {}
class TagsResolver {}

/** A feature that records its build in `log` and gives `gives`. */
function recording<G extends object>(name: string, log: object[], gives: G, resolvers: object[] = []) {
  return defineFeature({
    name,
    resolvers: [],
    build: async (needs: object) => {
      log.push({ name, sees: Object.keys(needs).sort() });
      return { services: gives, resolvers };
    },
  }) as AnyFeature;
}

describe("assembling features", () => {
  it("builds each on the start and the services of those before it, in order, and gathers their resolvers", async () => {
    const log: object[] = [];
    const notes = new NotesResolver();
    const tags = new TagsResolver();
    const { registry, resolvers } = await assemble({ database: "db" }, [
      recording("notes", log, { notes: "notes service" }, [notes]),
      recording("tags", log, { tags: "tags service", tagIndex: "index" }, [tags]),
      recording("search", log, {}),
    ]);
    assert.deepEqual(log, [
      { name: "notes", sees: ["database"] },
      { name: "tags", sees: ["database", "notes"] },
      { name: "search", sees: ["database", "notes", "tagIndex", "tags"] },
    ]);
    assert.deepEqual(registry, { database: "db", notes: "notes service", tags: "tags service", tagIndex: "index" });
    assert.deepEqual(resolvers, [notes, tags]);
  });

  it("refuses a feature that gives a name the registry already holds", async () => {
    await assert.rejects(
      assemble({ database: "db" }, [recording("notes", [], { notes: 1 }), recording("drafts", [], { notes: 2 })]),
      { message: "feature drafts gives notes, which the registry already has" },
    );
    await assert.rejects(assemble({ database: "db" }, [recording("shadow", [], { database: "other" })]), {
      message: "feature shadow gives database, which the registry already has",
    });
  });

  it("builds nothing after a feature whose build fails, and passes its failure on", async () => {
    const log: object[] = [];
    const failing = defineFeature({
      name: "broken",
      resolvers: [],
      build: () => Promise.reject(new Error("broken")),
    }) as AnyFeature;
    await assert.rejects(assemble({}, [recording("notes", log, {}), failing, recording("tags", log, {})]), {
      message: "broken",
    });
    assert.deepEqual(log, [{ name: "notes", sees: [] }]);
  });
});

describe("the app's features", () => {
  const database = createTestDatabase("sqlite");
  const config: Config = loadConfig(
    { NODE_ENV: "test", JWT_SECRET_KEY: TEST_SECRET, ...database.env },
    database.dataDir,
  );
  const logger = pino({ level: "silent" });
  after(() => database.drop());

  it("are listed once each: every folder of src/ with a face (index.ts) is in the list, by its name", () => {
    const src = fileURLToPath(new URL("../../src/", import.meta.url));
    const faced = readdirSync(src, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(join(src, entry.name, "index.ts")))
      .map((entry) => entry.name);
    assert.ok(faced.length >= 8, `found ${faced.join(", ")}`);
    assert.deepEqual(FEATURES.map((feature) => feature.name).sort(), faced.sort());
  });

  it("build one instance of each resolver class the schema is made of, in the schema's order", async () => {
    const services = await createServices(config, { logger, background: false });
    try {
      assert.deepEqual(
        services.resolvers.map((resolver) => resolver.constructor),
        resolverClasses(),
      );
    } finally {
      await services.close();
    }
  });

  it("leave everything they and the core opened with the closer, so a failure part way can release it", async () => {
    const closer = new Closer();
    const core = await buildCore(config, { logger, now: Date.now, background: false }, closer);
    const failing = defineFeature({ name: "broken", resolvers: [], build: () => Promise.reject(new Error("broken")) });
    await assert.rejects(assemble(core, [...FEATURES.slice(0, 4), failing]), { message: "broken" });
    await closer.close();
    const sqlite = (core.database.driver as { sqlite: { open: boolean } }).sqlite;
    assert.equal(sqlite.open, false, "the database is closed");
    await assert.rejects(core.passwords.hash("a password"), "the password hasher is closed");
  });
});
