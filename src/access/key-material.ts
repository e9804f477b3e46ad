import { createHash, createHmac, createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from "node:crypto";

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

/** An HS256 key of the ring from its secret's text; its kid is derived from the secret unless given. */
export function hmacKey(secret: string, retiredAt: number | undefined, kid = hmacKid(secret)): RingKey {
  const key = createSecretKey(Buffer.from(secret, "utf8"));
  return { kid, alg: "HS256", signWith: key, verifyWith: key, retiredAt };
}

/** An RS256 or ES256 key of the ring from its private key, refused when the key's type does not match `alg`. */
export function asymmetricKey(alg: "RS256" | "ES256", privateKey: KeyObject, retiredAt: number | undefined): RingKey {
  checkKeyType(alg, privateKey);
  const publicKey = createPublicKey(privateKey);
  return { kid: thumbprint(publicKey), alg, signWith: privateKey, verifyWith: publicKey, retiredAt };
}

/**
 * A previous key given only as a public key verifies (never signs: it is never the ring's first
 * key) for as long as it is configured; it has no retirement time to count a grace period from.
 */
export function publicOnlyKey(alg: "RS256" | "ES256", publicKey: KeyObject): RingKey {
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
export function hmacKid(secret: string): string {
  return createHmac("sha256", secret).update("graphql-token-auth key id").digest("base64url").slice(0, 16);
}

/** RFC 7638 JWK thumbprint (SHA-256), the usual kid for a public key. */
export function thumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: "jwk" }) as Record<string, string>;
  const members =
    jwk.kty === "RSA" ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}
