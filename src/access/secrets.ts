/** Shortest HMAC secret accepted, in bytes: RFC 7518 §3.2 asks for at least the hash's size. */
export const MIN_SECRET_BYTES = 32;

// Values copied from tutorials, library READMEs and jwt.io. Compared case-insensitively.
const SAMPLE_SECRETS = [
  "secret",
  "super-secret",
  "supersecret",
  "super_secret",
  "super-secret-key",
  "super_secret_key",
  "supersecretkey",
  "your_secret_key",
  "your-secret-key",
  "yoursecretkey",
  "your-256-bit-secret",
  "your_jwt_secret",
  "your-jwt-secret",
  "jwt_secret",
  "jwt-secret",
  "jwtsecret",
  "jwt_secret_key",
  "secret_key",
  "secret-key",
  "secretkey",
  "mysecret",
  "my-secret",
  "my_secret",
  "mysecretkey",
  "changeme",
  "change-me",
  "change_me",
  "changethis",
  "shhhhh",
  "keyboard cat",
  "s3cr3t",
  "password",
  "your-super-secret-jwt-token-with-at-least-32-characters-long",
  "super-secret-jwt-token-with-at-least-32-characters-long",
  "this-is-a-very-long-secret-key-for-jwt",
  "replace-with-a-long-random-secret",
];

/**
 * Why a configured JWT secret is too weak to sign with, or undefined when it is acceptable.
 * Checks length in bytes, known sample values (also repeated to reach the length), and
 * values with so few distinct characters that they cannot be random.
 */
export function weakSecretReason(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret, "utf8");
  if (bytes < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes (it has ${bytes})`;
  const lower = secret.trim().toLowerCase();
  for (const sample of SAMPLE_SECRETS) {
    if (
      lower === sample ||
      (lower.length % sample.length === 0 && sample.repeat(lower.length / sample.length) === lower)
    ) {
      return "is a well-known sample value; generate one with `openssl rand -base64 48`";
    }
  }
  if (new Set(secret).size < 8)
    return "has fewer than 8 distinct characters, so it is not random; generate one with `openssl rand -base64 48`";
  return undefined;
}
