// A software WebAuthn authenticator for tests: real ES256 (P-256) keys from node:crypto, attestation
// objects of format "none" and assertions signed over authenticatorData || SHA-256(clientDataJSON),
// exactly what a browser hands to @simplewebauthn/browser's callers. Nothing in the server is mocked:
// the responses it makes go through @simplewebauthn/server like a real authenticator's. Each option
// breaks one thing on purpose (origin, RP ID, flags, counter, challenge) for the refusal tests.
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";

/** authenticatorData flag bits (WebAuthn §6.1). */
export const FLAGS = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

/** One value the minimal CBOR encoder below handles: what attestation objects and COSE keys use. */
export type Cbor = number | string | Uint8Array | Map<number | string, Cbor> | { [key: string]: Cbor };

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(length, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(length, 1);
  return b;
}

/** Canonical-enough CBOR (RFC 8949) of integers, byte and text strings and maps, in insertion order. */
export function cbor(value: Cbor): Buffer {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error("cbor: integers only");
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const sha256 = (data: string | Uint8Array): Buffer => createHash("sha256").update(data).digest();

/** The COSE_Key (RFC 9053) of an ES256 public key: kty EC2, alg -7, crv P-256, x, y. */
export function coseKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: "jwk" });
  return cbor(
    new Map<number, Cbor>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, "base64url")],
      [-3, Buffer.from(jwk.y!, "base64url")],
    ]),
  );
}

/** A credential the authenticator holds. `counter` is the last signature count it reported. */
export interface SoftCredential {
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  counter: number;
  userHandle: string;
  rpId: string;
}

/** What every ceremony may override to break it on purpose. */
export interface CeremonyOptions {
  /** The origin the "browser" puts in clientDataJSON (default: the authenticator's). */
  origin?: string;
  /** The RP ID hashed into authenticatorData (default: the options' rpId, else the authenticator's). */
  rpId?: string;
  /** User verification done (default true). */
  uv?: boolean;
  /** User presence (default true). */
  up?: boolean;
  /** Backup eligible / backed up flags (default false, false). */
  be?: boolean;
  bs?: boolean;
  /** The challenge put in clientDataJSON (default: the options' challenge). */
  challenge?: string;
  /** clientDataJSON's type (default webauthn.create / webauthn.get). */
  type?: string;
}

export interface AssertionOptions extends CeremonyOptions {
  /** Which credential signs (default: the first allowed one the authenticator holds, else its first). */
  credentialId?: string;
  /** The signature count to report (default: the stored count plus one, then stored). */
  counter?: number;
  /** Leave out userHandle (a non-discoverable credential's assertion). */
  omitUserHandle?: boolean;
}

/** The parts of PublicKeyCredentialCreationOptionsJSON the authenticator reads. */
export interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string };
  excludeCredentials?: Array<{ id: string }>;
}

/** The parts of PublicKeyCredentialRequestOptionsJSON the authenticator reads. */
export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string }>;
  userVerification?: string;
}

function flagsOf(options: CeremonyOptions, attested: boolean): number {
  let flags = 0;
  if (options.up ?? true) flags |= FLAGS.UP;
  if (options.uv ?? true) flags |= FLAGS.UV;
  if (options.be) flags |= FLAGS.BE;
  if (options.bs) flags |= FLAGS.BS;
  if (attested) flags |= FLAGS.AT;
  return flags;
}

/** authenticatorData: rpIdHash (32) | flags (1) | signCount (4, big-endian) | attested credential data. */
export function authenticatorData(rpId: string, flags: number, counter: number, attested?: Buffer): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(counter >>> 0);
  return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
}

function clientData(type: string, challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), "utf8");
}

/**
 * A software authenticator with its own origin and RP ID (what a browser on that page would use).
 * `create` answers navigator.credentials.create() options, `get` navigator.credentials.get() ones,
 * both as the JSON @simplewebauthn/browser sends.
 */
export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];

  constructor(
    readonly origin: string,
    readonly rpId: string,
  ) {}

  /** A new credential for `options`: a RegistrationResponseJSON with a "none" attestation. */
  create(options: CreationOptions, overrides: CeremonyOptions = {}) {
    const rpId = overrides.rpId ?? options.rp.id ?? this.rpId;
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rawId = randomBytes(32);
    const id = rawId.toString("base64url");
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(rawId.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, rawId, coseKey(publicKey)]);
    const authData = authenticatorData(rpId, flagsOf(overrides, true), 0, attested);
    const attestationObject = cbor({ fmt: "none", attStmt: {}, authData });
    const clientDataJSON = clientData(
      overrides.type ?? "webauthn.create",
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
    );
    this.credentials.push({ id, privateKey, publicKey, counter: 0, userHandle: options.user.id, rpId });
    return {
      id,
      rawId: id,
      type: "public-key" as const,
      clientExtensionResults: {},
      authenticatorAttachment: "platform" as const,
      response: {
        clientDataJSON: clientDataJSON.toString("base64url"),
        attestationObject: attestationObject.toString("base64url"),
        transports: ["internal" as const],
      },
    };
  }

  /** The credential that answers `options`: `credentialId`, else the first allowed one held, else the first held. */
  credentialFor(options: RequestOptions, credentialId?: string): SoftCredential {
    const allowed = new Set((options.allowCredentials ?? []).map((c) => c.id));
    const wanted = credentialId ?? this.credentials.find((c) => allowed.has(c.id))?.id ?? this.credentials[0]?.id;
    const credential = this.credentials.find((c) => c.id === wanted);
    if (!credential) throw new Error(`the soft authenticator holds no credential ${wanted ?? "at all"}`);
    return credential;
  }

  /** An assertion for `options`: an AuthenticationResponseJSON signed with the credential's key. */
  get(options: RequestOptions, overrides: AssertionOptions = {}) {
    const credential = this.credentialFor(options, overrides.credentialId);
    const counter = overrides.counter ?? credential.counter + 1;
    credential.counter = Math.max(credential.counter, counter);
    const rpId = overrides.rpId ?? options.rpId ?? this.rpId;
    const authData = authenticatorData(rpId, flagsOf(overrides, false), counter);
    const clientDataJSON = clientData(
      overrides.type ?? "webauthn.get",
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
    );
    const signature = sign("sha256", Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey);
    return {
      id: credential.id,
      rawId: credential.id,
      type: "public-key" as const,
      clientExtensionResults: {},
      authenticatorAttachment: "platform" as const,
      response: {
        clientDataJSON: clientDataJSON.toString("base64url"),
        authenticatorData: authData.toString("base64url"),
        signature: signature.toString("base64url"),
        ...(overrides.omitUserHandle ? {} : { userHandle: credential.userHandle }),
      },
    };
  }
}
