// Forged and malformed access tokens: what jwt_tool's playbook tries, as one table, against a real
// app over HTTP for each signing algorithm. Every row must end in the same refusal: HTTP 401,
// `WWW-Authenticate: Bearer error="invalid_token", error_description=<reason>`, one UNAUTHENTICATED error, no data at all,
// and the exact reason in the log. No row may make the app open a connection anywhere.
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import type { RejectionReason } from "../../src/access/bearer.js";
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../src/config.js";
import { INVALID_TOKEN_MESSAGE } from "../../src/errors.js";
import { loggedRejection, login, registerUser } from "../helpers/api.js";
import { startTestApp, TEST_SECRET, type TestApp } from "../helpers/app.js";
import { errorCodes, postGraphQL, postJson, type RawResponse, send } from "../helpers/http.js";
import {
  headerOf,
  hmac,
  type Json,
  jws,
  parts,
  payloadOf,
  replaceSegment,
  segment,
  type Signer,
  withClaims,
  withKey,
  withoutUndefined,
} from "../helpers/jwt.js";
import { countBy, startTrap } from "./helpers.js";

type Algorithm = "HS256" | "RS256" | "ES256";

const ALGORITHMS: readonly Algorithm[] = ["HS256", "RS256", "ES256"];
// The app's clock is frozen, so every forged iat and exp is exact.
const NOW_MS = Date.UTC(2031, 4, 1, 8, 0, 0);
const NOW = NOW_MS / 1000;
const TTL = 900; // the default JWT_ACCESS_TOKEN_EXPIRES, 15m
/** What a client is told of a logged rejection reason: only whether refreshing can help. */
function clientReason(logged: string): string {
  return logged === "EXPIRED" ? "TOKEN_EXPIRED" : logged === "SESSION_ENDED" ? "SESSION_ENDED" : "TOKEN_INVALID";
}
// A forged token that got through would answer both: who am I, and (as the ADMIN the forgeries
// claim to be) every user.
const PROBE = `{ me { id username roles } users { id username } }`;
// Sample HMAC secrets from tutorials and jwt.io that jwt_tool's dictionary tries first.
const COMMON_SECRETS = ["", "secret", "your-256-bit-secret", "password", "changeme", "super-secret"];

type Category =
  | "alg none"
  | "signature"
  | "weak secret"
  | "algorithm"
  | "claims"
  | "typ"
  | "kid"
  | "key headers"
  | "key confusion"
  | "size"
  | "session"
  | "malformed";

/** What a row may use to build its Authorization header. */
interface Kit {
  alg: Algorithm;
  /** The kid of the app's signing key, as its own tokens carry it. */
  kid: string;
  /** The victim's real claims at NOW, claiming ADMIN, with overrides (`undefined` removes a claim). */
  claims(overrides?: Json): Json;
  /** A compact JWS of exactly this header and payload, signed with the app's own key. */
  signReal(header: Json, payload: Json): string;
  /** The app's usual header (`alg`, `typ: at+jwt`, `kid`) with overrides. */
  header(overrides?: Json): Json;
  /** Genuine tokens the app minted: the victim's, and a second one of the victim's. */
  genuine: string;
  another: string;
  /** The victim's refresh token. */
  refreshToken: string;
  /** Access tokens of sessions that ended by logout, logout ALL, revokeSession and refresh-token reuse. */
  ended: { logout: string; logoutAll: string; revoked: string; reused: string };
  /** The attacker's own key pair for the app's algorithm (HS256: a random secret). */
  attacker: { kid: string; sign: Signer; jwk: Json; der: Buffer };
  /** RS256/ES256: the app's public key as published, in the forms key-confusion tools feed to HMAC. */
  published: { pems: string[]; jwk: string; jwks: string; der: Buffer } | undefined;
  /** The attacker's key server on 127.0.0.1. */
  trap: string;
  /** The app's own JWKS URL. */
  jwksUrl: string;
}

interface Row {
  category: Category;
  name: string;
  /** The whole Authorization header value. */
  authorization: (k: Kit) => string;
  /** The reason the app must log; per algorithm when it differs. */
  reason: RejectionReason | ((alg: Algorithm) => RejectionReason);
  /** Default 401. 431: Node refuses the headers before the app sees the request. */
  status?: 401 | 431;
  /** Only for these algorithms (default: all). */
  only?: readonly Algorithm[];
  /** The message a client gets, when the header's shape earns more than the one fixed message. */
  message?: string;
}

const bearer = (token: string) => `Bearer ${token}`;

// Keys of other algorithms an attacker brings along (made once: RSA generation is slow).
const RSA = generateKeyPairSync("rsa", { modulusLength: 2048 });
const P256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
const P384 = generateKeyPairSync("ec", { namedCurve: "P-384" });
const ED25519 = generateKeyPairSync("ed25519");

const ALG_NONE_SPELLINGS = ["none", "None", "NONE", "nOnE", "none "];

/** The table. Rows are data; {@link refuse} runs each one. */
const ROWS: Row[] = [
  // alg none, in every spelling jwt_tool tries, unsigned and with a signature left on.
  ...ALG_NONE_SPELLINGS.flatMap((none): Row[] => [
    {
      category: "alg none",
      name: `alg ${JSON.stringify(none)} with the signature stripped`,
      authorization: (k) => bearer(jws(k.header({ alg: none }), k.claims())),
      reason: "ALGORITHM_NOT_ALLOWED",
    },
    {
      category: "alg none",
      name: `alg ${JSON.stringify(none)} with a real signature left on`,
      authorization: (k) => {
        const [, , signature] = parts(k.signReal(k.header({ alg: none }), k.claims()));
        return bearer(`${segment(k.header({ alg: none }))}.${segment(k.claims())}.${signature}`);
      },
      reason: "ALGORITHM_NOT_ALLOWED",
    },
  ]),

  // Signatures removed, cut, swapped, zeroed or left on changed content.
  {
    category: "signature",
    name: "a genuine token with its signature stripped (trailing dot kept)",
    authorization: (k) => bearer(`${parts(k.genuine).slice(0, 2).join(".")}.`),
    reason: "SIGNATURE_INVALID",
  },
  {
    category: "signature",
    name: "a genuine token with its signature and last dot stripped",
    authorization: (k) => bearer(parts(k.genuine).slice(0, 2).join(".")),
    reason: "MALFORMED",
  },
  {
    category: "signature",
    name: "a genuine token with half of its signature cut off",
    authorization: (k) => {
      const [h, p, s] = parts(k.genuine);
      return bearer(`${h}.${p}.${s.slice(0, Math.floor(s.length / 2))}`);
    },
    // jsonwebtoken's ECDSA check throws (not false) on a signature of the wrong length.
    reason: (alg) => (alg === "ES256" ? "MALFORMED" : "SIGNATURE_INVALID"),
  },
  {
    category: "signature",
    name: "a genuine token with the last 4 characters of its signature cut off",
    authorization: (k) => bearer(k.genuine.slice(0, -4)),
    reason: (alg) => (alg === "ES256" ? "MALFORMED" : "SIGNATURE_INVALID"),
  },
  {
    category: "signature",
    name: "a genuine token with 8 bytes appended to its signature",
    authorization: (k) => bearer(`${k.genuine}${randomBytes(8).toString("base64url")}`),
    reason: (alg) => (alg === "ES256" ? "MALFORMED" : "SIGNATURE_INVALID"),
  },
  {
    category: "signature",
    name: "the header and payload of one genuine token with the signature of another",
    authorization: (k) => {
      const [h, p] = parts(k.genuine);
      return bearer(`${h}.${p}.${parts(k.another)[2]}`);
    },
    reason: "SIGNATURE_INVALID",
  },
  {
    category: "signature",
    name: "a genuine token whose payload was changed to claim ADMIN",
    authorization: (k) => bearer(withClaims(k.genuine, { ...payloadOf(k.genuine), roles: ["ADMIN", "USER"] })),
    reason: "SIGNATURE_INVALID",
  },
  {
    category: "signature",
    name: "a genuine token whose header gained a member",
    authorization: (k) => bearer(replaceSegment(k.genuine, 0, segment({ ...headerOf(k.genuine), x: 1 }))),
    reason: "SIGNATURE_INVALID",
  },
  {
    category: "signature",
    name: "an all-zero signature of the right length (the ECDSA 'psychic signature', CVE-2022-21449)",
    authorization: (k) => {
      const length = { HS256: 32, RS256: 256, ES256: 64 }[k.alg];
      return bearer(jws(k.header(), k.claims(), () => Buffer.alloc(length)));
    },
    reason: "SIGNATURE_INVALID",
  },

  // HMAC with the secrets everyone tries first, under the app's own kid.
  ...COMMON_SECRETS.map((secret): Row => ({
    category: "weak secret",
    name: `HS256 signed with the ${secret === "" ? "blank secret" : `common secret ${JSON.stringify(secret)}`}`,
    authorization: (k) => bearer(jws(k.header({ alg: "HS256" }), k.claims(), hmac(secret))),
    reason: (alg) => (alg === "HS256" ? "SIGNATURE_INVALID" : "ALGORITHM_NOT_ALLOWED"),
  })),

  // Algorithms off the allow-list: stronger-sounding, other families, and spellings of the right one.
  ...(
    [
      ["HS384 signed with the app's own HMAC secret", "HS384", () => hmac(TEST_SECRET, "sha384")],
      ["HS512 signed with the app's own HMAC secret", "HS512", () => hmac(TEST_SECRET, "sha512")],
      ["PS256 signed with the attacker's RSA key", "PS256", () => withKey(RSA.privateKey, "sha256", { pss: true })],
      ["RS512 signed with the attacker's RSA key", "RS512", () => withKey(RSA.privateKey, "sha512")],
      ["ES384 signed with the attacker's P-384 key", "ES384", () => withKey(P384.privateKey, "sha384")],
      ["EdDSA signed with the attacker's Ed25519 key", "EdDSA", () => withKey(ED25519.privateKey, null)],
    ] as const
  ).map(([name, alg, signer]): Row => ({
    category: "algorithm",
    name: `alg ${name}`,
    authorization: (k) => bearer(jws(k.header({ alg }), k.claims(), signer())),
    reason: "ALGORITHM_NOT_ALLOWED",
  })),
  {
    category: "algorithm",
    name: "RS256 (on the allow-list of other deployments) signed with the attacker's RSA key, under the app's kid",
    authorization: (k) => bearer(jws(k.header({ alg: "RS256" }), k.claims(), withKey(RSA.privateKey, "sha256"))),
    reason: "ALGORITHM_NOT_ALLOWED",
    only: ["HS256", "ES256"],
  },
  {
    category: "algorithm",
    name: "ES256 (on the allow-list of other deployments) signed with the attacker's P-256 key, under the app's kid",
    authorization: (k) => bearer(jws(k.header({ alg: "ES256" }), k.claims(), withKey(P256.privateKey, "sha256"))),
    reason: "ALGORITHM_NOT_ALLOWED",
    only: ["HS256", "RS256"],
  },
  {
    category: "algorithm",
    name: "the configured algorithm in lower case, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ alg: k.alg.toLowerCase() }), k.claims())),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  {
    category: "algorithm",
    name: "no alg at all, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ alg: undefined }), k.claims())),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  {
    category: "algorithm",
    name: "alg null, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ alg: null }), k.claims())),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  {
    category: "algorithm",
    name: "alg as a list holding the configured algorithm, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ alg: [k.alg] }), k.claims())),
    reason: "ALGORITHM_NOT_ALLOWED",
  },

  // Claims: each required one missing, and wrong values, all signed with the app's own key.
  ...(["exp", "iat", "sub", "sid", "jti", "roles"] as const).map((claim): Row => ({
    category: "claims",
    name: `no ${claim} claim`,
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ [claim]: undefined }))),
    reason: "CLAIM_MISSING",
  })),
  {
    category: "claims",
    name: "no iss claim",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ iss: undefined }))),
    reason: "ISSUER_MISMATCH",
  },
  {
    category: "claims",
    name: "no aud claim",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ aud: undefined }))),
    reason: "AUDIENCE_MISMATCH",
  },
  {
    category: "claims",
    name: "another issuer",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ iss: "https://evil.example" }))),
    reason: "ISSUER_MISMATCH",
  },
  {
    category: "claims",
    name: "the issuer in another letter case",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ iss: DEFAULT_ISSUER.toUpperCase() }))),
    reason: "ISSUER_MISMATCH",
  },
  {
    category: "claims",
    name: "another audience",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ aud: "another-api" }))),
    reason: "AUDIENCE_MISMATCH",
  },
  {
    category: "claims",
    name: "an audience list that holds the right audience among others",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ aud: ["another-api", DEFAULT_AUDIENCE] }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "expired a second ago",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ iat: NOW - TTL - 1, exp: NOW - 1 }))),
    reason: "EXPIRED",
  },
  {
    category: "claims",
    name: "an nbf a minute ahead",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ nbf: NOW + 60 }))),
    reason: "NOT_YET_VALID",
  },
  {
    category: "claims",
    name: "issued a minute in the future",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ iat: NOW + 60, exp: NOW + 60 + TTL }))),
    reason: "ISSUED_IN_FUTURE",
  },
  {
    category: "claims",
    name: "a lifetime of ten years",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ exp: NOW + 10 * 365 * 86400 }))),
    reason: "LIFETIME_TOO_LONG",
  },
  {
    category: "claims",
    name: "exp as a string",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ exp: String(NOW + TTL) }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "iat as a fraction",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ iat: NOW + 0.5 }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "a role that does not exist (ROOT)",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ roles: ["ROOT"] }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "roles as a string",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ roles: "ADMIN" }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "sub as a number",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ sub: 1 }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "an empty sid",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ sid: "" }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: 'fresh as the string "true"',
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ fresh: "true" }))),
    reason: "CLAIM_INVALID",
  },
  {
    category: "claims",
    name: "a payload that is a JSON list",
    authorization: (k) => bearer(k.signReal(k.header(), [k.claims()] as unknown as Json)),
    reason: "MALFORMED",
  },

  // typ: only at+jwt (or its full media type) is an access token.
  ...(["JWT", "jwt", "AT+JWT", "at+jwt ", "rt+jwt", "application/jwt", "", 1, null, undefined] as const).map(
    (typ): Row => ({
      category: "typ",
      name: typ === undefined ? "no typ header" : `typ ${JSON.stringify(typ)}`,
      authorization: (k) => bearer(k.signReal(k.header({ typ }), k.claims())),
      reason: "WRONG_TYPE",
    }),
  ),

  // kid: only ever an exact lookup in the app's own key ring.
  {
    category: "kid",
    name: "no kid, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ kid: undefined }), k.claims())),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "an unknown kid, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ kid: "2024-01-rotated" }), k.claims())),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "the attacker's own kid, signed with the attacker's key",
    authorization: (k) => bearer(jws(k.header({ kid: k.attacker.kid }), k.claims(), k.attacker.sign)),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "path traversal to /dev/null, signed as if the key were empty",
    authorization: (k) =>
      bearer(
        jws(
          k.header({ kid: "../../../../../../../../dev/null" }),
          k.claims(),
          k.alg === "HS256" ? hmac("") : k.attacker.sign,
        ),
      ),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "path traversal to /etc/passwd, signed with that file as the key",
    authorization: (k) => {
      const sign = k.alg === "HS256" ? hmac(safeRead("/etc/passwd")) : k.attacker.sign;
      return bearer(jws(k.header({ kid: "../../../../../../../../etc/passwd" }), k.claims(), sign));
    },
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "path traversal into DATA_DIR/keys, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ kid: `../keys/${k.kid}` }), k.claims())),
    reason: "KEY_UNKNOWN",
  },
  ...["' OR 1=1 --", "x' UNION SELECT 'secret' AS key --", "1; DROP TABLE users; --"].map((kid): Row => ({
    category: "kid",
    name: `SQL in the kid (${kid}), signed as if the query returned "secret"`,
    authorization: (k) =>
      bearer(jws(k.header({ kid }), k.claims(), k.alg === "HS256" ? hmac("secret") : k.attacker.sign)),
    reason: "KEY_UNKNOWN",
  })),
  ...["x | sleep 5", "$(id)", "`touch /tmp/pwned`"].map((kid): Row => ({
    category: "kid",
    name: `a shell command in the kid (${kid})`,
    authorization: (k) => bearer(k.signReal(k.header({ kid }), k.claims())),
    reason: "KEY_UNKNOWN",
  })),
  ...["__proto__", "constructor", "toString", "hasOwnProperty"].map((kid): Row => ({
    category: "kid",
    name: `the kid ${JSON.stringify(kid)}, an object prototype member`,
    authorization: (k) => bearer(k.signReal(k.header({ kid }), k.claims())),
    reason: "KEY_UNKNOWN",
  })),
  {
    category: "kid",
    name: "a kid that is the attacker's key URL",
    authorization: (k) => bearer(jws(k.header({ kid: `${k.trap}/keys/attacker` }), k.claims(), k.attacker.sign)),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "a kid of 2,000 characters",
    authorization: (k) => bearer(k.signReal(k.header({ kid: "k".repeat(2000) }), k.claims())),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "the app's kid in upper case",
    authorization: (k) => bearer(k.signReal(k.header({ kid: k.kid.toUpperCase() }), k.claims())),
    reason: "KEY_UNKNOWN",
  },
  {
    category: "kid",
    name: "the app's kid with a trailing NUL",
    authorization: (k) => bearer(k.signReal(k.header({ kid: `${k.kid}\u0000` }), k.claims())),
    reason: "KEY_UNKNOWN",
  },
  ...([0, null, true, ["x"], { kid: "x" }] as const).map((kid): Row => ({
    category: "kid",
    name: `kid ${JSON.stringify(kid)} (not a string)`,
    authorization: (k) => bearer(k.signReal(k.header({ kid }), k.claims())),
    reason: "KEY_UNKNOWN",
  })),
  {
    category: "kid",
    name: "the app's kid with another algorithm, signed with the attacker's key of that algorithm",
    authorization: (k) =>
      bearer(
        k.alg === "HS256"
          ? jws(k.header({ alg: "RS256" }), k.claims(), withKey(RSA.privateKey, "sha256"))
          : jws(k.header({ alg: "HS256" }), k.claims(), hmac(randomBytes(32))),
      ),
    reason: "ALGORITHM_NOT_ALLOWED",
  },

  // Headers that name or carry a key. The trap serves the attacker's JWKS to whoever asks.
  {
    category: "key headers",
    name: "jku naming the attacker's JWKS, signed with the attacker's key",
    authorization: (k) =>
      bearer(
        jws(k.header({ kid: k.attacker.kid, jku: `${k.trap}/.well-known/jwks.json` }), k.claims(), k.attacker.sign),
      ),
    reason: "FORBIDDEN_HEADER",
  },
  {
    category: "key headers",
    name: "jku naming the app's own JWKS, signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header({ jku: k.jwksUrl }), k.claims())),
    reason: "FORBIDDEN_HEADER",
  },
  {
    category: "key headers",
    name: "x5u naming the attacker's certificate",
    authorization: (k) =>
      bearer(jws(k.header({ kid: k.attacker.kid, x5u: `${k.trap}/cert.pem` }), k.claims(), k.attacker.sign)),
    reason: "FORBIDDEN_HEADER",
  },
  {
    category: "key headers",
    name: "jwk embedding the attacker's key under the attacker's kid",
    authorization: (k) =>
      bearer(jws(k.header({ kid: k.attacker.kid, jwk: k.attacker.jwk }), k.claims(), k.attacker.sign)),
    reason: "FORBIDDEN_HEADER",
  },
  {
    category: "key headers",
    name: "jwk embedding the attacker's key under the app's kid",
    authorization: (k) => bearer(jws(k.header({ jwk: k.attacker.jwk }), k.claims(), k.attacker.sign)),
    reason: "FORBIDDEN_HEADER",
  },
  {
    category: "key headers",
    name: "x5c carrying the attacker's public key",
    authorization: (k) =>
      bearer(
        jws(k.header({ kid: k.attacker.kid, x5c: [k.attacker.der.toString("base64")] }), k.claims(), k.attacker.sign),
      ),
    reason: "FORBIDDEN_HEADER",
  },
  {
    category: "key headers",
    name: "crit naming an extension the app does not implement, signed with the app's own key",
    authorization: (k) =>
      bearer(
        k.signReal(
          k.header({ crit: ["http://example.com/must-understand"], "http://example.com/must-understand": true }),
          k.claims(),
        ),
      ),
    reason: "FORBIDDEN_HEADER",
  },

  // Key confusion: the public key, as published, used as an HMAC secret.
  ...(
    [
      ["the public key's SPKI PEM", (p) => p.pems[0]!],
      ["the public key's SPKI PEM without its final newline", (p) => p.pems[0]!.trimEnd()],
      ["the public key's DER bytes", (p) => p.der],
      ["the published JWK's JSON", (p) => p.jwk],
      ["the whole JWKS document", (p) => p.jwks],
    ] as const satisfies ReadonlyArray<readonly [string, (p: NonNullable<Kit["published"]>) => string | Buffer]>
  ).map(([what, secret]): Row => ({
    category: "key confusion",
    name: `HS256 whose HMAC secret is ${what}`,
    authorization: (k) => bearer(jws(k.header({ alg: "HS256" }), k.claims(), hmac(secret(k.published!)))),
    reason: "ALGORITHM_NOT_ALLOWED",
    only: ["RS256", "ES256"],
  })),
  {
    category: "key confusion",
    name: "HS256 whose HMAC secret is the public key's PKCS#1 PEM",
    authorization: (k) => bearer(jws(k.header({ alg: "HS256" }), k.claims(), hmac(k.published!.pems[1]!))),
    reason: "ALGORITHM_NOT_ALLOWED",
    only: ["RS256"],
  },

  // Size: the token limit, and the header limit of Node's HTTP parser in front of it.
  {
    category: "size",
    name: "a JWT of 8 KB signed with the app's own key",
    authorization: (k) => bearer(k.signReal(k.header(), k.claims({ pad: "x".repeat(6000) }))),
    reason: "TOO_LONG",
  },
  {
    category: "size",
    name: "an Authorization header of 12 KB",
    authorization: (k) => bearer(`${k.genuine}.${"A".repeat(12 * 1024 - k.genuine.length)}`),
    reason: "TOO_LONG",
  },
  {
    category: "size",
    name: "an Authorization header of 16 KB (over Node's 16 KB header limit: refused before the app runs)",
    authorization: (k) => bearer(`${k.genuine}${"A".repeat(16 * 1024)}`),
    reason: "TOO_LONG",
    status: 431,
  },

  // Real tokens of the wrong kind, or of sessions that have ended.
  {
    category: "session",
    name: "the refresh token sent as a bearer token",
    authorization: (k) => bearer(k.refreshToken),
    reason: "MALFORMED",
  },
  {
    category: "session",
    name: "an access token of a session ended by logout",
    authorization: (k) => bearer(k.ended.logout),
    reason: "SESSION_ENDED",
  },
  {
    category: "session",
    name: "an access token of a session ended by logout(scope: ALL) elsewhere",
    authorization: (k) => bearer(k.ended.logoutAll),
    reason: "SESSION_ENDED",
  },
  {
    category: "session",
    name: "an access token of a session ended by revokeSession",
    authorization: (k) => bearer(k.ended.revoked),
    reason: "SESSION_ENDED",
  },
  {
    category: "session",
    name: "an access token of a session ended by refresh-token reuse",
    authorization: (k) => bearer(k.ended.reused),
    reason: "SESSION_ENDED",
  },

  // Not a JWS in compact form at all.
  {
    category: "malformed",
    name: "two segments",
    authorization: (k) => bearer(`${segment(k.header())}.${segment(k.claims())}`),
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: "four segments",
    authorization: (k) => bearer(`${k.genuine}.${parts(k.genuine)[2]}`),
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: "a header that is not JSON",
    authorization: (k) => bearer(replaceSegment(k.genuine, 0, segment("{alg:"))),
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: "a header that is a JSON list",
    authorization: (k) => bearer(`${segment([k.header()])}.${parts(k.genuine)[1]}.${parts(k.genuine)[2]}`),
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: "a payload that is a JSON string",
    authorization: (k) => bearer(k.signReal(k.header(), "admin" as unknown as Json)),
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: "standard base64 with padding instead of base64url",
    authorization: (k) => bearer(`${k.genuine.replace(/-/g, "+").replace(/_/g, "/")}==`),
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: "two tokens in one header",
    authorization: (k) => `${bearer(k.genuine)}, ${bearer(k.another)}`,
    reason: "MALFORMED",
  },
  {
    category: "malformed",
    name: '"Bearer" and nothing else',
    authorization: () => "Bearer ",
    reason: "MALFORMED",
    message:
      'The Authorization header holds "Bearer" without a token: the client sent it before it had one. ' +
      'Send no Authorization header until signed in, then "Bearer <access token>".',
  },
  {
    category: "malformed",
    name: "the genuine token under the Basic scheme",
    authorization: (k) => `Basic ${k.genuine}`,
    reason: "MALFORMED",
  },
];

function safeRead(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

/** The app's generated private key for `kid`, read from DATA_DIR/keys as the app stored it. */
function generatedPrivateKey(dataDir: string, kid: string): KeyObject {
  for (const name of readdirSync(join(dataDir, "keys"))) {
    const stored = JSON.parse(readFileSync(join(dataDir, "keys", name), "utf8")) as {
      kid: string;
      privateKeyPem?: string;
    };
    if (stored.kid === kid && stored.privateKeyPem) return createPrivateKey(stored.privateKeyPem);
  }
  throw new Error(`no generated key with kid ${kid}`);
}

async function gqlAs(t: TestApp, query: string, variables: Json, token?: string): Promise<RawResponse> {
  return postGraphQL(t.url, { query, variables }, token);
}

const REFRESH = `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }`;

/** Builds everything the rows use, on a running app. */
async function buildKit(t: TestApp, alg: Algorithm, trapOrigin: string): Promise<Kit> {
  const victim = await registerUser(t, "victim");
  const another = await login(t, "victim");
  const kid = headerOf(victim.accessToken).kid as string;
  const base = payloadOf(victim.accessToken);

  const real: Signer =
    alg === "HS256" ? hmac(TEST_SECRET) : withKey(generatedPrivateKey(t.database.dataDir, kid), "sha256");

  // Sessions that end in each way the contract names.
  const ended = {
    logout: (await registerUser(t, "ender1")).accessToken,
    logoutAll: (await registerUser(t, "ender2")).accessToken,
    revoked: (await registerUser(t, "ender3")).accessToken,
    reused: "",
  };
  const logout = await gqlAs(t, `mutation { logout }`, {}, ended.logout);
  assert.deepEqual(logout.json, { data: { logout: true } });
  const elsewhere = await login(t, "ender2");
  assert.deepEqual((await gqlAs(t, `mutation { logout(scope: ALL) }`, {}, elsewhere.accessToken)).json, {
    data: { logout: true },
  });
  const sid = payloadOf(ended.revoked).sid as string;
  const revoker = await login(t, "ender3");
  assert.deepEqual(
    (await gqlAs(t, `mutation($id: ID!) { revokeSession(id: $id) }`, { id: sid }, revoker.accessToken)).json,
    { data: { revokeSession: true } },
  );
  const reuse = await registerUser(t, "ender4");
  ended.reused = reuse.accessToken;
  // Rotated twice, so the first token is no longer the direct parent the reuse interval forgives.
  const rotated = await gqlAs(t, REFRESH, { r: reuse.refreshToken });
  assert.ok(rotated.json?.data?.refreshToken, rotated.text);
  const rotatedAgain = await gqlAs(t, REFRESH, { r: rotated.json.data.refreshToken.refreshToken });
  assert.ok(rotatedAgain.json?.data?.refreshToken, rotatedAgain.text);
  const replay = await gqlAs(t, REFRESH, { r: reuse.refreshToken });
  assert.deepEqual(errorCodes(replay), ["UNAUTHENTICATED"]);

  let attacker: Kit["attacker"];
  if (alg === "HS256") {
    const secret = randomBytes(32);
    attacker = {
      kid: "attacker",
      sign: hmac(secret),
      jwk: { kty: "oct", k: secret.toString("base64url"), kid: "attacker" },
      der: secret,
    };
  } else {
    const pair = alg === "RS256" ? RSA : P256;
    attacker = {
      kid: "attacker-key-1",
      sign: withKey(pair.privateKey, "sha256"),
      jwk: { ...(pair.publicKey.export({ format: "jwk" }) as Json), kid: "attacker-key-1", alg, use: "sig" },
      der: pair.publicKey.export({ type: "spki", format: "der" }),
    };
  }

  const jwksUrl = new URL("/.well-known/jwks.json", t.url).href;
  let published: Kit["published"];
  if (alg !== "HS256") {
    const jwks = (await send(jwksUrl)).text;
    const jwk = (JSON.parse(jwks) as { keys: Json[] }).keys.find((key) => key.kid === kid)!;
    const publicKey = createPublicKey({ key: jwk as never, format: "jwk" });
    const pems = [publicKey.export({ type: "spki", format: "pem" }).toString()];
    if (alg === "RS256") pems.push(publicKey.export({ type: "pkcs1", format: "pem" }).toString());
    published = { pems, jwk: JSON.stringify(jwk), jwks, der: publicKey.export({ type: "spki", format: "der" }) };
  }

  return {
    alg,
    kid,
    claims: (overrides = {}) =>
      withoutUndefined({
        sub: base.sub,
        roles: ["ADMIN", "USER"],
        sid: base.sid,
        jti: "forged",
        fresh: true,
        iat: NOW,
        exp: NOW + TTL,
        iss: DEFAULT_ISSUER,
        aud: DEFAULT_AUDIENCE,
        ...overrides,
      }),
    signReal: (header, payload) => jws(withoutUndefined(header), payload, real),
    header: (overrides = {}) => withoutUndefined({ alg, typ: "at+jwt", kid, ...overrides }),
    genuine: victim.accessToken,
    another: another.accessToken,
    refreshToken: victim.refreshToken,
    ended,
    attacker,
    published,
    trap: trapOrigin,
    jwksUrl,
  };
}

/** Runs one row: the exact refusal a client sees, and the exact reason the app logs. */
async function refuse(t: TestApp, kit: Kit, row: Row): Promise<void> {
  const authorization = row.authorization(kit);
  const res = await postJson(t.url, { query: PROBE }, { authorization });
  const status = row.status ?? 401;
  assert.equal(res.status, status, `status for ${row.name}: ${res.text.slice(0, 300)}`);
  if (status === 431) {
    // Node's HTTP parser refuses the headers before any route runs; the client-error handler of
    // src/http/connections.ts writes the error body. No GraphQL ran: no data, no challenge, nothing to log.
    assert.deepEqual(res.json, {
      errors: [{ message: "The request's headers are too large.", extensions: { code: "BAD_REQUEST" } }],
    });
    assert.equal(res.headers.get("www-authenticate"), null);
    assert.equal(loggedRejection(t, res), undefined);
    return;
  }
  const expected = typeof row.reason === "function" ? row.reason(kit.alg) : row.reason;
  const reason = clientReason(expected);
  assert.equal(res.headers.get("www-authenticate"), `Bearer error="invalid_token", error_description="${reason}"`);
  assert.deepEqual(
    res.json,
    { errors: [{ message: row.message ?? INVALID_TOKEN_MESSAGE, extensions: { code: "UNAUTHENTICATED", reason } }] },
    "one error, and no data key at all",
  );
  assert.equal(loggedRejection(t, res), expected, `the reason logged for ${row.name}`);
}

for (const alg of ALGORITHMS) {
  describe(`forged and malformed ${alg} access tokens, each refused with 401 (sqlite)`, () => {
    const rows = ROWS.filter((row) => !row.only || row.only.includes(alg));
    let t: TestApp;
    let kit: Kit;
    let trap: Awaited<ReturnType<typeof startTrap>>;

    before(async () => {
      trap = await startTrap(JSON.stringify({ keys: [] }));
      t = await startTestApp("sqlite", {
        env: alg === "HS256" ? { JWT_ALGORITHM: alg } : { JWT_ALGORITHM: alg, JWT_SECRET_KEY: "" },
        now: () => NOW_MS,
      });
      kit = await buildKit(t, alg, trap.origin);
    });
    after(async () => {
      await trap?.close();
      await t?.close();
      await t?.database.drop();
    });

    it("accepts a token forged with the app's own key and the victim's claims: the control that makes every refusal below about its row", async () => {
      const res = await postJson(
        t.url,
        { query: `{ me { id } }` },
        { authorization: bearer(kit.signReal(kit.header(), kit.claims({ roles: ["USER"] }))) },
      );
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { data: { me: { id: payloadOf(kit.genuine).sub } } });
    });

    for (const row of rows) {
      it(`[${row.category}] refuses ${row.name}`, async () => {
        await refuse(t, kit, row);
        assert.equal(trap.connections(), 0, "the app opened no connection to the attacker's server");
      });
    }

    it("never contacted the attacker's server, and still serves the victim's genuine token", async (c) => {
      assert.equal(trap.connections(), 0);
      assert.deepEqual(trap.requests, []);
      const res = await postJson(t.url, { query: `{ me { id } }` }, { authorization: bearer(kit.genuine) });
      assert.equal(res.status, 200);
      const counts = countBy(rows, (row) => row.category);
      for (const [category, count] of counts) c.diagnostic(`${alg} ${category}: ${count}`);
      c.diagnostic(`${alg} total: ${rows.length} forged or malformed tokens refused`);
    });
  });
}
