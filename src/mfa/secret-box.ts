import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { makePrivateFolder, PRIVATE_FILE_MODE } from "../data-dir.js";

/** The file in DATA_DIR holding the generated key when MFA_ENCRYPTION_KEYS is unset (base64, mode 0600). */
export const MFA_KEY_FILE = "mfa-key";

/** The format tag of a sealed value: `v1.<key id>.<iv>.<ciphertext>.<tag>`, base64url parts. */
const FORMAT = "v1";
const IV_BYTES = 12;

interface BoxKey {
  readonly id: string;
  readonly key: Buffer;
}

/** What {@link SecretBox.open} found: the plain secret, and whether it was sealed under the current key. */
export interface Opened {
  readonly plain: Buffer;
  readonly current: boolean;
}

/** The id a sealed value names its key by: the first 8 hex digits of the key's SHA-256 (never the key). */
export function keyIdOf(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

/**
 * AES-256-GCM for secrets at rest (TOTP secrets). The first key seals; every key opens, found by the
 * id the sealed value names, so a new key can be put first while values sealed under the old one
 * still open (and are sealed again under the new one on their next use). The owner's id is the
 * additional data: a value copied into another user's row does not open.
 */
export class SecretBox {
  private readonly keys: readonly BoxKey[];

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error("a SecretBox needs at least one key");
    for (const key of keys) if (key.length !== 32) throw new Error("AES-256-GCM keys are 32 bytes");
    this.keys = keys.map((key) => ({ id: keyIdOf(key), key }));
  }

  /** The id of the key that seals. */
  get currentKeyId(): string {
    return this.keys[0]!.id;
  }

  /** Seals `plain` under the current key, bound to `owner`. */
  seal(plain: Uint8Array, owner: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(Buffer.from(owner, "utf8"));
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    return [FORMAT, id, iv, sealed, cipher.getAuthTag()].map(part).join(".");
  }

  /**
   * Opens a value {@link seal} made for `owner`. Throws, naming the key id (never a key), when it is
   * sealed under a key this box does not have, or when it was altered or belongs to another owner.
   */
  open(value: string, owner: string): Opened {
    const [format, id, iv, sealed, tag] = value.split(".");
    if (format !== FORMAT || !id || !iv || sealed === undefined || !tag) throw new Error("not a sealed secret");
    const index = this.keys.findIndex((k) => k.id === id);
    if (index < 0)
      throw new Error(
        `a TOTP secret is sealed under key ${id}, which MFA_ENCRYPTION_KEYS (or DATA_DIR/${MFA_KEY_FILE}) does not hold`,
      );
    const decipher = createDecipheriv("aes-256-gcm", this.keys[index]!.key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(owner, "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    const plain = Buffer.concat([decipher.update(Buffer.from(sealed, "base64url")), decipher.final()]);
    return { plain, current: index === 0 };
  }
}

function part(value: string | Buffer): string {
  return typeof value === "string" ? value : value.toString("base64url");
}

/**
 * The keys TOTP secrets are sealed with: MFA_ENCRYPTION_KEYS (base64, first seals), or when unset
 * one key generated once in DATA_DIR/{@link MFA_KEY_FILE} (0600). Several instances must share the
 * keys: with separate DATA_DIRs, set MFA_ENCRYPTION_KEYS on every instance.
 */
export function loadSecretKeys(configured: readonly string[], dataDir: string): Buffer[] {
  if (configured.length > 0) return configured.map((key) => Buffer.from(key, "base64"));
  makePrivateFolder(dataDir);
  const file = join(dataDir, MFA_KEY_FILE);
  try {
    // "wx": of two instances starting on one DATA_DIR, one writes and the other reads its key.
    writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { mode: PRIVATE_FILE_MODE, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const key = Buffer.from(readFileSync(file, "utf8").trim(), "base64");
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return [key];
}
