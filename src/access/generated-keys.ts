import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import type { Config } from "../config.js";
import { makePrivateFolder, PRIVATE_FILE_MODE } from "../data-dir.js";
import { asymmetricKey, hmacKey, hmacKid, type RingKey, type SigningAlgorithm, thumbprint } from "./key-material.js";
import { weakSecretReason } from "./secrets.js";

/** Folder inside DATA_DIR for generated keys; one JSON file per key, mode 0600. */
export const KEYS_DIR = "keys";

/** File inside DATA_DIR that keeps the generated development HS256 secret (the first generated key). */
export const DEV_SECRET_FILE = "jwt-secret";

interface StoredKey {
  kid: string;
  alg: SigningAlgorithm;
  createdAt: number;
  /** HS256: the secret, base64url. */
  secret?: string;
  /** RS256/ES256: PKCS#8 PEM. */
  privateKeyPem?: string;
}

/** Thrown by {@link rotateGeneratedKey} when keys come from configuration, which rotates by editing it. */
export class ConfiguredKeysError extends Error {}

/** Thrown with `create: false` when no key is configured and none was generated yet. */
export class NoKeysError extends Error {}

/**
 * Adds a new generated signing key for the configured algorithm (`npm run cli -- keys rotate`).
 * Refused when keys come from configuration: those rotate by changing the configuration.
 */
export function rotateGeneratedKey(
  config: Config,
  now: () => number = Date.now,
): { kid: string; alg: SigningAlgorithm } {
  if (config.jwt.algorithm === "HS256" ? config.jwt.secretKey !== undefined : config.jwt.privateKeyFile !== undefined) {
    throw new ConfiguredKeysError(
      config.jwt.algorithm === "HS256"
        ? "keys come from JWT_SECRET_KEY: rotate by moving it to JWT_PREVIOUS_SECRET_KEYS and setting a new JWT_SECRET_KEY"
        : "keys come from JWT_PRIVATE_KEY_FILE: rotate by adding the old public key to JWT_PREVIOUS_PUBLIC_KEY_FILES and pointing JWT_PRIVATE_KEY_FILE at a new key",
    );
  }
  loadGeneratedKeys(config, () => undefined, now, true); // make sure the first key exists, so this one is second
  // Never older than a key already there, so the new one is the newest even if the clock went back.
  const newest = Math.max(0, ...readStoredKeys(config.dataDir).map((k) => k.createdAt));
  const stored = generateStoredKey(config.jwt.algorithm, Math.max(now(), newest + 1));
  writeStoredKey(config.dataDir, stored);
  return { kid: stored.kid, alg: stored.alg };
}

/**
 * The generated keys of the configured algorithm in DATA_DIR, newest first, each older one retired
 * at its successor's creation. With `create`, the first key is generated when there is none (and
 * `warn` announces a generated HS256 secret); without it, a missing key is a {@link NoKeysError}.
 */
export function loadGeneratedKeys(
  config: Config,
  warn: (message: string) => void,
  now: () => number,
  create: boolean,
): RingKey[] {
  const alg = config.jwt.algorithm;
  const stored = readStoredKeys(config.dataDir).filter((k) => k.alg === alg);
  const nothingYet = alg === "HS256" ? !existsSync(join(config.dataDir, DEV_SECRET_FILE)) : stored.length === 0;
  if (!create && nothingYet) {
    throw new NoKeysError(`no ${alg} key is configured and none was generated in ${config.dataDir} (check DATA_DIR)`);
  }
  if (alg === "HS256") {
    // The first HS256 secret lives in DATA_DIR/jwt-secret (created before key rotation existed).
    const legacy = readOrCreateDevSecret(config, warn);
    // Stored secrets are base64url of the secret's UTF-8 text, like generateStoredKey writes them.
    stored.push({ kid: hmacKid(legacy), alg, createdAt: 0, secret: Buffer.from(legacy, "utf8").toString("base64url") });
  } else if (stored.length === 0) {
    const created = generateStoredKey(alg, now());
    writeStoredKey(config.dataDir, created);
    stored.push(created);
  }
  stored.sort((a, b) => b.createdAt - a.createdAt);
  return stored.map((key, i) => {
    const retiredAt = i === 0 ? undefined : stored[i - 1]!.createdAt;
    if (key.alg === "HS256") return hmacKey(Buffer.from(key.secret!, "base64url").toString("utf8"), retiredAt, key.kid);
    return asymmetricKey(key.alg, createPrivateKey(key.privateKeyPem!), retiredAt);
  });
}

function readOrCreateDevSecret(config: Config, warn: (message: string) => void): string {
  const file = join(config.dataDir, DEV_SECRET_FILE);
  if (existsSync(file)) {
    const secret = readFileSync(file, "utf8").trim();
    const weak = weakSecretReason(secret);
    if (weak) throw new Error(`${file} ${weak}; delete it to generate a new one`);
    warn(
      `JWT_SECRET_KEY is not set: signing with the development secret kept in ${file}. Set JWT_SECRET_KEY in production.`,
    );
    return secret;
  }
  makePrivateFolder(config.dataDir);
  const secret = randomBytes(48).toString("base64url");
  try {
    // "wx" fails if another process created the file meanwhile; then use theirs.
    writeFileSync(file, `${secret}\n`, { mode: PRIVATE_FILE_MODE, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return readOrCreateDevSecret(config, warn);
    throw error;
  }
  warn(`JWT_SECRET_KEY is not set: generated a development secret in ${file}. Set JWT_SECRET_KEY in production.`);
  return secret;
}

function readStoredKeys(dataDir: string): StoredKey[] {
  const dir = join(dataDir, KEYS_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .map((name) => JSON.parse(readFileSync(join(dir, name), "utf8")) as StoredKey);
}

function writeStoredKey(dataDir: string, key: StoredKey): void {
  const dir = join(dataDir, KEYS_DIR);
  makePrivateFolder(dir);
  writeFileSync(join(dir, `${key.createdAt}-${key.alg}-${key.kid}.json`), `${JSON.stringify(key, null, 2)}\n`, {
    mode: PRIVATE_FILE_MODE,
    flag: "wx",
  });
}

function generateStoredKey(alg: SigningAlgorithm, createdAt: number): StoredKey {
  if (alg === "HS256") {
    const secret = randomBytes(48).toString("base64url");
    return { kid: hmacKid(secret), alg, createdAt, secret: Buffer.from(secret, "utf8").toString("base64url") };
  }
  const { privateKey, publicKey } =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    kid: thumbprint(publicKey),
    alg,
    createdAt,
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}
