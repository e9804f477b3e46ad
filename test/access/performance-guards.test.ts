import assert from "node:assert/strict";
import { createSecretKey, randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { secretKeyRing } from "../../src/access/keys.js";
import { Role } from "../../src/access/roles.js";
import { TokenError, TokenService, VERIFIED_CACHE_SIZE } from "../../src/access/tokens.js";
import { PasswordHasher } from "../../src/users/passwords.js";
import { tamperedSignature } from "../helpers/jwt.js";

describe("the cache of verified access tokens", () => {
  let clock = Date.UTC(2030, 0, 1);
  const service = new TokenService({
    keys: secretKeyRing(createSecretKey(randomBytes(48))),
    issuer: "iss",
    audience: "aud",
    accessTokenTtlSeconds: 900,
    now: () => clock,
  });
  const mint = () =>
    service.signAccessToken({ userId: "u-1", roles: [Role.USER], sessionId: "s-1", fresh: true }).token;

  it("still refuses a remembered token as EXPIRED once its exp has passed", () => {
    const token = mint();
    assert.equal(service.verifyAccessToken(token).sub, "u-1");
    assert.equal(service.verifyAccessToken(token).sub, "u-1", "the second call is served from the cache");
    clock += 900 * 1000;
    assert.throws(
      () => service.verifyAccessToken(token),
      (error: unknown) => error instanceof TokenError && error.reason === "EXPIRED",
    );
  });

  it("never remembers a refusal: a tampered copy of a remembered token is refused", () => {
    const token = mint();
    service.verifyAccessToken(token);
    assert.throws(
      () => service.verifyAccessToken(tamperedSignature(token)),
      (error: unknown) => error instanceof TokenError && error.reason === "SIGNATURE_INVALID",
    );
  });

  it(`stays bounded: after ${VERIFIED_CACHE_SIZE + 1} distinct tokens the oldest one is verified afresh`, () => {
    const first = mint();
    service.verifyAccessToken(first);
    for (let i = 0; i < VERIFIED_CACHE_SIZE; i++) service.verifyAccessToken(mint());
    const size = (service as unknown as { verified: Map<string, unknown> }).verified.size;
    assert.equal(size, VERIFIED_CACHE_SIZE);
    assert.equal((service as unknown as { verified: Map<string, unknown> }).verified.has(first), false);
    assert.equal(service.verifyAccessToken(first).sub, "u-1");
  });
});

describe("argon2 work under a burst of logins", () => {
  it("runs at most the configured number of hashes at once; the rest wait their turn and all finish", async () => {
    const hasher = new PasswordHasher(1);
    const hashes = ["first password", "second password", "third password"].map((p) => hasher.hash(p));
    assert.deepEqual(hasher.load, { running: 1, waiting: 2 });
    const encoded = await Promise.all(hashes);
    assert.deepEqual(hasher.load, { running: 0, waiting: 0 });
    assert.equal(await hasher.verify(encoded[1], "second password"), true);
    assert.equal(await hasher.verify(encoded[1], "third password"), false);
  });
});
