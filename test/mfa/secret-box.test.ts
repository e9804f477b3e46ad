import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { keyIdOf, SecretBox } from "../../src/mfa/secret-box.js";
import { login, registerUser } from "../helpers/api.js";
import { startTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { enrollUser, verifyMfa } from "../helpers/mfa.js";

describe("the secret box (AES-256-GCM)", () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const secret = randomBytes(20);

  it("opens what it sealed for the same owner only, and refuses an altered value", () => {
    const box = new SecretBox([oldKey]);
    const sealed = box.seal(secret, "user-1");
    assert.ok(sealed.startsWith(`v1.${keyIdOf(oldKey)}.`));
    assert.deepEqual(box.open(sealed, "user-1"), { plain: secret, current: true });
    assert.throws(() => box.open(sealed, "user-2"), /unable to authenticate data/);
    const parts = sealed.split(".");
    const flipped = Buffer.from(parts[3]!, "base64url");
    flipped[0]! ^= 1;
    parts[3] = flipped.toString("base64url");
    assert.throws(() => box.open(parts.join("."), "user-1"), /unable to authenticate data/);
    assert.notEqual(box.seal(secret, "user-1"), sealed, "a new IV each time");
  });

  it("seals under the first key and opens under any, saying which values are not under the current key", () => {
    const sealedOld = new SecretBox([oldKey]).seal(secret, "u");
    const rotated = new SecretBox([newKey, oldKey]);
    assert.deepEqual(rotated.open(sealedOld, "u"), { plain: secret, current: false });
    assert.ok(rotated.seal(secret, "u").startsWith(`v1.${keyIdOf(newKey)}.`));
    assert.throws(
      () => new SecretBox([newKey]).open(sealedOld, "u"),
      new RegExp(`sealed under key ${keyIdOf(oldKey)}, which MFA_ENCRYPTION_KEYS`),
    );
  });
});

for (const kind of DATABASES) {
  describe(`rotating MFA_ENCRYPTION_KEYS (${kind})`, () => {
    it("opens secrets sealed under the generated key once it is listed second, seals them again under the new one, then needs only the new one", async () => {
      const first = await startTestApp(kind);
      const user = await registerUser(first, "rotator");
      const enrolled = await enrollUser(first, user.accessToken);
      await first.close();
      const generated = readFileSync(join(first.database.dataDir, "mfa-key"), "utf8").trim();
      const fresh = randomBytes(32).toString("base64");
      const freshId = keyIdOf(Buffer.from(fresh, "base64"));
      const stored = async (app: typeof first) =>
        (
          await app.app.database.db
            .selectFrom("mfa_totp")
            .select("secret_enc")
            .where("user_id", "=", user.userId)
            .executeTakeFirstOrThrow()
        ).secret_enc;

      const both = await startTestApp(kind, {
        database: first.database,
        env: { MFA_ENCRYPTION_KEYS: `${fresh},${generated}` },
      });
      try {
        // The start's chores seal every secret again under the first key.
        const deadline = Date.now() + 5000;
        while (!(await stored(both)).startsWith(`v1.${freshId}.`) && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 50));
        assert.ok((await stored(both)).startsWith(`v1.${freshId}.`));
      } finally {
        await both.close();
      }
      const onlyNew = await startTestApp(kind, { database: first.database, env: { MFA_ENCRYPTION_KEYS: fresh } });
      try {
        const pending = await login(onlyNew, "rotator");
        assert.equal((await verifyMfa(onlyNew, pending.accessToken, enrolled.nextCode())).assurance, "AAL2");
      } finally {
        await onlyNew.close();
        await first.database.drop();
      }
    });
  });
}
