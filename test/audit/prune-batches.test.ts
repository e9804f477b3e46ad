// AuditService.prune deletes old events in bounded batches: one short statement per batch, a
// bounded number a run, the rest on the next run, oldest first, never a newer event.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { sql } from "kysely";

import { AuditService } from "../../src/audit/audit.service.js";
import { AuditStore } from "../../src/audit/audit.store.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const DAY_MS = 24 * 60 * 60 * 1000;

for (const kind of DATABASES) {
  describe(`pruning the audit log in batches (${kind})`, () => {
    const t = useTestApp(kind);

    it("deletes at most a run's batches of old events, oldest first, and the next run takes the rest", async () => {
      const db = t.app.database.db;
      const store = new AuditStore(db);
      const now = Date.now();
      const event = (username: string, ageMs: number) => ({
        type: "LOGIN_FAILED",
        userId: null,
        username,
        ip: null,
        userAgent: null,
        sessionId: null,
        detail: null,
        at: new Date(now - ageMs),
      });
      for (let i = 0; i < 5; i++) await store.insert(event(`old-${i}`, (10 - i) * DAY_MS));
      await store.insert(event("recent", DAY_MS / 2));
      const audit = new AuditService({
        store,
        retentionSeconds: DAY_MS / 1000,
        now: () => now,
        logger: t.app.logger,
        pruneBatch: 2,
        pruneMaxBatches: 2,
      });
      const left = async () =>
        (
          await sql<{
            username: string;
          }>`select username from audit_events where type = 'LOGIN_FAILED' order by at`.execute(db)
        ).rows.map((r) => r.username);

      assert.equal(await audit.prune(), 4);
      assert.deepEqual(await left(), ["old-4", "recent"]);
      assert.equal(await audit.prune(), 1);
      assert.deepEqual(await left(), ["recent"]);
      assert.equal(await audit.prune(), 0);
      await audit.stop();
    });
  });
}
