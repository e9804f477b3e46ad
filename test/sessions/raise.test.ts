// SessionStore.raise: the one conditional write that makes a session AAL2. Its methods (`amr`) are
// extended in SQL, so that a method proven twice is kept once and two factors proven at the same
// moment are both kept, and an ended or expired session is never raised.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import type { DatabaseHandle } from "../../src/db/database.js";
import { SessionStore } from "../../src/sessions/session.store.js";
import { DATABASES, openMigratedDatabase, type TestDatabase } from "../helpers/databases.js";

const NOW = new Date(Date.UTC(2026, 5, 1));

for (const kind of DATABASES) {
  describe(`SessionStore.raise (${kind})`, () => {
    let database: TestDatabase;
    let handle: DatabaseHandle;
    let store: SessionStore;
    const userId = randomUUID();

    before(async () => {
      ({ database, handle } = await openMigratedDatabase(kind));
      await handle.db
        .insertInto("users")
        .values({
          id: userId,
          username: "raised",
          username_normalized: "raised",
          password_hash: "-",
          roles: '["USER"]',
          created_at: NOW.toISOString(),
          updated_at: NOW.toISOString(),
        })
        .execute();
      store = new SessionStore(handle.db);
    });
    after(async () => {
      await handle?.close();
      await database?.drop();
    });

    async function session(expiresAt = new Date(NOW.getTime() + 3_600_000)): Promise<string> {
      const id = randomUUID();
      await store.create({
        id,
        userId,
        now: NOW,
        expiresAt,
        chainKey: "k",
        assurance: { aal: 1, amr: ["pwd"], mfaPending: true },
      });
      return id;
    }

    it("adds the method once, keeps the chain key without one, and clears what was owed", async () => {
      const id = await session();
      const first = await store.raise(id, "otp", undefined, NOW);
      assert.deepEqual(first?.assurance, { aal: 2, amr: ["pwd", "otp"], mfaPending: false });
      assert.equal(first?.chainKey, "k");
      const again = await store.raise(id, "otp", "k2", NOW);
      assert.deepEqual(again?.assurance.amr, ["pwd", "otp"], "a method proven twice is kept once");
      assert.equal(again?.chainKey, "k2");
      const third = await store.raise(id, "passkey", undefined, NOW);
      assert.deepEqual(third?.assurance.amr, ["pwd", "otp", "passkey"]);
    });

    it("keeps both methods when two factors raise one session at the same moment", async () => {
      const id = await session();
      await Promise.all([store.raise(id, "otp", undefined, NOW), store.raise(id, "passkey", undefined, NOW)]);
      const row = await store.findById(id);
      assert.deepEqual([...row!.assurance.amr].sort(), ["otp", "passkey", "pwd"]);
    });

    it("raises no ended and no expired session", async () => {
      const ended = await session();
      assert.equal(await store.revoke(ended, "logout", NOW), true);
      assert.equal(await store.raise(ended, "otp", undefined, NOW), undefined);
      const expired = await session(new Date(NOW.getTime() - 1000));
      assert.equal(await store.raise(expired, "otp", undefined, NOW), undefined);
      for (const id of [ended, expired]) {
        const row = await store.findById(id);
        assert.deepEqual(row?.assurance, { aal: 1, amr: ["pwd"], mfaPending: true });
      }
    });
  });
}
