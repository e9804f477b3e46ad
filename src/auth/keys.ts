import { createSecretKey, randomBytes, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { type Config, weakSecretReason } from "../config.js";

/** File inside DATA_DIR that keeps the generated development secret across restarts. */
export const DEV_SECRET_FILE = "jwt-secret";

/**
 * Returns the HS256 signing key as a KeyObject. JWT_SECRET_KEY when set; otherwise (never in
 * production: config refuses that) a 384-bit secret generated once into `DATA_DIR/jwt-secret`
 * with mode 0600, announced through `warn` without ever printing it.
 */
export function loadSigningKey(config: Config, warn: (message: string) => void): KeyObject {
  if (config.jwt.secretKey !== undefined) return createSecretKey(Buffer.from(config.jwt.secretKey, "utf8"));
  const file = join(config.dataDir, DEV_SECRET_FILE);
  if (existsSync(file)) {
    const secret = readFileSync(file, "utf8").trim();
    const weak = weakSecretReason(secret);
    if (weak) throw new Error(`${file} ${weak}; delete it to generate a new one`);
    warn(`JWT_SECRET_KEY is not set: signing with the development secret kept in ${file}. Set JWT_SECRET_KEY in production.`);
    return createSecretKey(Buffer.from(secret, "utf8"));
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString("base64url");
  // "wx" fails if another process created the file meanwhile; then use theirs.
  try {
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadSigningKey(config, warn);
    throw error;
  }
  warn(`JWT_SECRET_KEY is not set: generated a development secret in ${file}. Set JWT_SECRET_KEY in production.`);
  return createSecretKey(Buffer.from(secret, "utf8"));
}
