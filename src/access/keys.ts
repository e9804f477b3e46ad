import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";

import { type Config, type CrossRule, isSet } from "../config.js";
import { loadGeneratedKeys } from "./generated-keys.js";
import {
  asymmetricKey,
  hmacKey,
  type PublicJwk,
  publicOnlyKey,
  type RingKey,
  type SigningAlgorithm,
} from "./key-material.js";

// The keys generated into DATA_DIR (generated-keys.ts) and the keys' material (key-material.ts)
// have files of their own; what the app uses of them is exported from here, the ring's module.
export { ConfiguredKeysError, DEV_SECRET_FILE, KEYS_DIR, NoKeysError, rotateGeneratedKey } from "./generated-keys.js";
export type { PublicJwk, RingKey, SigningAlgorithm } from "./key-material.js";

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

function graceMs(config: Config): number {
  // Tokens live accessTokenTtlSeconds; instances pick up a rotation within a reload period (60 s).
  return (config.jwt.accessTokenTtlSeconds + 120) * 1000;
}
