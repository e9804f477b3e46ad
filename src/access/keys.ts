import {
  type JsonWebKey,
  type KeyObject,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { type Config, type CrossRule, isSet } from "../config.js";
import { weakSecretReason } from "./secrets.js";

export type SigningAlgorithm = "HS256" | "RS256" | "ES256";

/** One key of the ring. `signWith` is the secret or private key; `verifyWith` the secret or public key. */
export interface RingKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly signWith: KeyObject;
  readonly verifyWith: KeyObject;
  /**
   * When it stopped signing (its successor's creation), or undefined when it verifies without a time
   * limit: the current key, and configured previous keys (they verify until removed from configuration).
   */
  readonly retiredAt: number | undefined;
}

/** A public key as published in the JWKS (never private parts, never HMAC secrets). */
export type PublicJwk = JsonWebKey & { kid: string; alg: SigningAlgorithm; use: "sig" };

/** Folder inside DATA_DIR for generated keys; one JSON file per key, mode 0600. */
export const KEYS_DIR = "keys";

/** File inside DATA_DIR that keeps the generated development HS256 secret (the first generated key). */
export const DEV_SECRET_FILE = "jwt-secret";

/**
 * Production signs with configured keys only: generated ones in a production DATA_DIR work on one
 * machine, but every instance must share them. Checked on the raw values, beside any other problem.
 */
export const productionKeyProblem: CrossRule = (_config, env) => {
  const algorithm = env.JWT_ALGORITHM ?? "HS256";
  if (env.NODE_ENV !== "production") return undefined;
  if (algorithm === "HS256" && !isSet(env, "JWT_SECRET_KEY")) {
    return "JWT_SECRET_KEY is required when NODE_ENV=production (at least 32 random bytes, e.g. `openssl rand -base64 48`)";
  }
  if ((algorithm === "RS256" || algorithm === "ES256") && !isSet(env, "JWT_PRIVATE_KEY_FILE")) {
    return `JWT_PRIVATE_KEY_FILE is required when NODE_ENV=production and JWT_ALGORITHM=${algorithm}`;
  }
  return undefined;
};

interface StoredKey {
  kid: string;
  alg: SigningAlgorithm;
  createdAt: number;
  /** HS256: the secret, base64url. */
  secret?: string;
  /** RS256/ES256: PKCS#8 PEM. */
  privateKeyPem?: string;
}

/**
 * The keys this instance signs and verifies with. The newest key signs; older keys keep verifying
 * for `graceMs` after they were replaced (long enough for every token they signed to expire), then
 * drop out of verification and of the JWKS. A `kid` is only ever looked up in this ring.
 */
export class KeyRing {
  private byKid: Map<string, RingKey>;

  constructor(
    private keys: RingKey[],
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (keys.length === 0) throw new Error("a key ring needs at least one key");
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
  }

  /** The key new tokens are signed with. */
  get current(): RingKey {
    return this.keys[0]!;
  }

  get algorithm(): SigningAlgorithm {
    return this.current.alg;
  }

  /** The key with exactly this kid, if it may still verify. */
  find(kid: string): RingKey | undefined {
    const key = this.byKid.get(kid);
    if (!key) return undefined;
    return key.retiredAt === undefined || this.now() < key.retiredAt + this.graceMs ? key : undefined;
  }

  /** Public keys that may still verify, newest first; empty for HS256. */
  jwks(): { keys: PublicJwk[] } {
    const keys = this.keys
      .filter((k) => k.alg !== "HS256" && this.find(k.kid) !== undefined)
      .map((k) => ({ ...k.verifyWith.export({ format: "jwk" }), kid: k.kid, alg: k.alg, use: "sig" as const }));
    return { keys };
  }

  /** Swaps in a newly loaded set of keys (after `keys rotate`), keeping the same grace rules. */
  replace(keys: RingKey[]): void {
    if (keys.length === 0) return;
    this.keys = keys;
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
  }
}

/**
 * Builds the key ring from configuration, or from generated keys in DATA_DIR:
 * - HS256 with JWT_SECRET_KEY: that secret signs; JWT_PREVIOUS_SECRET_KEYS still verify.
 * - RS256/ES256 with JWT_PRIVATE_KEY_FILE: that key signs; JWT_PREVIOUS_PUBLIC_KEY_FILES still verify.
 * - otherwise (refused for HS256 in production by config): keys generated into DATA_DIR on first
 *   start, rotated by `npm run cli -- keys rotate`; `warn` announces a generated HS256 secret.
 * Kids are derived from the key material, so instances given the same keys agree on them.
 */
export function loadKeyRing(
  config: Config,
  warn: (message: string) => void,
  now: () => number = Date.now,
  options: { create?: boolean } = {},
): KeyRing {
  return new KeyRing(loadKeys(config, warn, now, options), graceMs(config), now);
}

/** How a running instance keeps its ring current after a rotation: see {@link keepKeysCurrent}. */
export interface KeyRefresher {
  /** Re-reads the keys now (SIGHUP). */
  reload: () => void;
  /** Re-reads the keys unless that happened within the last second (a token named an unknown kid). */
  reloadOnUnknownKid: () => void;
  stop(): void;
}

/**
 * Re-reads a ring's keys every `intervalMs` (default a minute), on demand, and when a token names a
 * kid the ring does not know (at most once a second, so forged kids cannot make it read files on
 * every request). A failed read keeps the current keys and is reported through `onError`.
 */
export function keepKeysCurrent(
  ring: KeyRing,
  config: Config,
  options: { now: () => number; onError: (error: unknown) => void; intervalMs?: number },
): KeyRefresher {
  let lastReload = 0;
  const reload = () => {
    lastReload = options.now();
    try {
      ring.replace(loadKeys(config, () => undefined, options.now));
    } catch (error) {
      options.onError(error);
    }
  };
  const timer = setInterval(reload, options.intervalMs ?? 60_000);
  timer.unref();
  return {
    reload,
    reloadOnUnknownKid: () => {
      if (options.now() - lastReload >= 1000) reload();
    },
    stop: () => clearInterval(timer),
  };
}

/** Thrown by {@link rotateGeneratedKey} when keys come from configuration, which rotates by editing it. */
export class ConfiguredKeysError extends Error {}

/** Thrown with `create: false` when no key is configured and none was generated yet. */
export class NoKeysError extends Error {}

/**
 * Reads the keys again (configured or generated) for {@link KeyRing.replace}. With `create: false`
 * (the CLI's `token verify`) a missing generated key is a {@link NoKeysError} instead of a new key,
 * which could verify nothing.
 */
export function loadKeys(
  config: Config,
  warn: (message: string) => void,
  now: () => number = Date.now,
  options: { create?: boolean } = {},
): RingKey[] {
  const alg = config.jwt.algorithm;
  if (alg === "HS256" && config.jwt.secretKey !== undefined) {
    const secrets = [config.jwt.secretKey, ...config.jwt.previousSecretKeys];
    // Only secrets[0] signs (the ring's first key); the previous ones verify while they are configured.
    return secrets.map((secret) => hmacKey(secret, undefined));
  }
  if (alg !== "HS256" && config.jwt.privateKeyFile !== undefined) {
    const signing = asymmetricKey(alg, createPrivateKey(readFileSync(config.jwt.privateKeyFile)), undefined);
    const previous = config.jwt.previousPublicKeyFiles.map((file) =>
      publicOnlyKey(alg, createPublicKey(readFileSync(file))),
    );
    return [signing, ...previous];
  }
  return loadGeneratedKeys(config, warn, now, options.create ?? true);
}

/** A ring of one HS256 secret, for tools and tests that mint or check tokens with a known key. */
export function secretKeyRing(secret: KeyObject, kid = "default"): KeyRing {
  return new KeyRing([{ kid, alg: "HS256", signWith: secret, verifyWith: secret, retiredAt: undefined }], 0);
}

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

function graceMs(config: Config): number {
  // Tokens live accessTokenTtlSeconds; instances pick up a rotation within a reload period (60 s).
  return (config.jwt.accessTokenTtlSeconds + 120) * 1000;
}

function loadGeneratedKeys(
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
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString("base64url");
  try {
    // "wx" fails if another process created the file meanwhile; then use theirs.
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
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
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, `${key.createdAt}-${key.alg}-${key.kid}.json`), `${JSON.stringify(key, null, 2)}\n`, {
    mode: 0o600,
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

function hmacKey(secret: string, retiredAt: number | undefined, kid = hmacKid(secret)): RingKey {
  const key = createSecretKey(Buffer.from(secret, "utf8"));
  return { kid, alg: "HS256", signWith: key, verifyWith: key, retiredAt };
}

function asymmetricKey(alg: "RS256" | "ES256", privateKey: KeyObject, retiredAt: number | undefined): RingKey {
  checkKeyType(alg, privateKey);
  const publicKey = createPublicKey(privateKey);
  return { kid: thumbprint(publicKey), alg, signWith: privateKey, verifyWith: publicKey, retiredAt };
}

// A previous key given only as a public key verifies (never signs: it is never the ring's first
// key) for as long as it is configured; it has no retirement time to count a grace period from.
function publicOnlyKey(alg: "RS256" | "ES256", publicKey: KeyObject): RingKey {
  checkKeyType(alg, publicKey);
  return { kid: thumbprint(publicKey), alg, signWith: publicKey, verifyWith: publicKey, retiredAt: undefined };
}

function checkKeyType(alg: "RS256" | "ES256", key: KeyObject): void {
  const ok =
    alg === "RS256"
      ? key.asymmetricKeyType === "rsa"
      : key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
  if (!ok)
    throw new Error(
      `the configured key is not ${alg === "RS256" ? "an RSA" : "a P-256 EC"} key, as JWT_ALGORITHM=${alg} needs`,
    );
}

/** A kid for an HMAC secret that reveals nothing about it: a truncated HMAC of a fixed label. */
function hmacKid(secret: string): string {
  return createHmac("sha256", secret).update("graphql-token-auth key id").digest("base64url").slice(0, 16);
}

/** RFC 7638 JWK thumbprint (SHA-256), the usual kid for a public key. */
function thumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: "jwk" }) as Record<string, string>;
  const members =
    jwk.kty === "RSA" ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}
