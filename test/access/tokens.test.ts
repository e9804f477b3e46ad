import assert from "node:assert/strict";
import { createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { secretKeyRing } from "../../src/access/keys.js";
import { Role } from "../../src/access/roles.js";
import {
  ACCESS_TOKEN_TYPE,
  decodeUnverified,
  IAT_LEEWAY_SECONDS,
  MAX_TOKEN_LENGTH,
  TokenError,
  type TokenFailure,
  TokenService,
} from "../../src/access/tokens.js";
import {
  hmac,
  type Json,
  jws,
  replaceSegment,
  segment,
  sign as signWithJsonwebtoken,
  unsigned,
  withoutUndefined,
} from "../helpers/jwt.js";

// A frozen clock: every timestamp below is relative to NOW, so no test depends on the wall clock.
const NOW_MS = Date.UTC(2030, 0, 1, 12, 0, 0);
const NOW = NOW_MS / 1000;
const TTL = 900;
const ISSUER = "test-issuer";
const AUDIENCE = "test-audience";
const KEY = createSecretKey(randomBytes(48));
const OTHER_KEY = createSecretKey(randomBytes(48));
const KID = "test-key";

const RING = secretKeyRing(KEY, KID);

const service = new TokenService({
  keys: RING,
  issuer: ISSUER,
  audience: AUDIENCE,
  accessTokenTtlSeconds: TTL,
  now: () => NOW_MS,
});

/** The header this service mints, with overrides; an override of `undefined` removes the field. */
function header(overrides: Json = {}): Json {
  return withoutUndefined({ alg: "HS256", typ: ACCESS_TOKEN_TYPE, kid: KID, ...overrides });
}

/** Claims that verify at NOW, with overrides; an override of `undefined` removes the claim. */
function claims(overrides: Json = {}): Json {
  return withoutUndefined({
    sub: "user-1",
    roles: [Role.USER],
    sid: "session-1",
    jti: "token-1",
    fresh: true,
    iat: NOW,
    exp: NOW + TTL,
    iss: ISSUER,
    aud: AUDIENCE,
    ...overrides,
  });
}

/** Hand-builds a compact JWS with an HMAC signature, whatever the header says. */
function forge(
  head: unknown,
  payload: unknown,
  options: { key?: KeyObject; hash?: "sha256" | "sha384" | "sha512" } = {},
): string {
  return jws(head, payload, hmac(options.key ?? KEY, options.hash ?? "sha256"));
}

/** Signs with jsonwebtoken itself, as another honest implementation would (see jwt.ts's `sign`). */
function sign(payload: Json, options: { key?: KeyObject; header?: Json } = {}): string {
  return signWithJsonwebtoken(payload, options.key ?? KEY, { header: header(options.header) });
}

/** Asserts the token is refused with exactly `reason`, and that the message never echoes the token. */
function assertRefused(token: string, reason: TokenFailure): void {
  assert.throws(
    () => service.verifyAccessToken(token),
    (error: unknown) => {
      assert.ok(error instanceof TokenError, `expected a TokenError, got ${String(error)}`);
      assert.equal(error.reason, reason);
      assert.equal(error.name, "TokenError");
      assert.notEqual(error.message, "");
      if (token !== "") assert.equal(error.message.includes(token), false, "the message must not echo the token");
      return true;
    },
  );
}

/** A validly signed token padded with a filler claim of `padding` characters. */
function paddedToken(padding: number): string {
  return forge(header(), claims({ pad: "x".repeat(padding) }));
}

describe("TokenService.signAccessToken", () => {
  it("gives every minted token its own jti", () => {
    const subject = { userId: "u-1", roles: [Role.USER], sessionId: "s-1", fresh: true };
    assert.notEqual(service.signAccessToken(subject).claims.jti, service.signAccessToken(subject).claims.jti);
  });

  it("stamps iat from the injected clock and exp one TTL later", () => {
    const { claims: minted } = service.signAccessToken({
      userId: "u-1",
      roles: [Role.USER],
      sessionId: "s-1",
      fresh: true,
    });
    assert.equal(minted.iat, NOW);
    assert.equal(minted.exp - minted.iat, TTL);
  });
});

describe("TokenService.verifyAccessToken accepts", () => {
  it("a token it minted, returning exactly the claims it put in", () => {
    const { token, claims: minted } = service.signAccessToken({
      userId: "u-42",
      roles: [Role.ADMIN, Role.USER],
      sessionId: "s-7",
      fresh: true,
    });
    const verified = service.verifyAccessToken(token);
    assert.deepEqual(verified, minted);
    assert.equal(verified.sub, "u-42");
    assert.deepEqual(verified.roles, [Role.ADMIN, Role.USER]);
    assert.equal(verified.sid, "s-7");
    assert.match(verified.jti, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(verified.fresh, true);
    assert.equal(verified.iat, NOW);
    assert.equal(verified.exp, NOW + TTL);
    assert.equal(verified.iss, ISSUER);
    assert.equal(verified.aud, AUDIENCE);
    assert.equal(verified.aal, "aal1");
    assert.deepEqual(verified.amr, ["pwd"]);
    assert.equal(verified.mfa_pending, undefined);
  });

  it("a token of a session that owes its second factor, with aal, amr and mfa_pending as minted", () => {
    const { token } = service.signAccessToken({
      userId: "u-1",
      roles: [Role.USER],
      sessionId: "s-1",
      fresh: true,
      assurance: { aal: 1, amr: ["pwd"], mfaPending: true },
    });
    const verified = service.verifyAccessToken(token);
    assert.equal(verified.aal, "aal1");
    assert.deepEqual(verified.amr, ["pwd"]);
    assert.equal(verified.mfa_pending, true);
    const raised = service.verifyAccessToken(
      service.signAccessToken({
        userId: "u-1",
        roles: [Role.USER],
        sessionId: "s-1",
        fresh: true,
        assurance: { aal: 2, amr: ["pwd", "otp"], mfaPending: false },
      }).token,
    );
    assert.equal(raised.aal, "aal2");
    assert.deepEqual(raised.amr, ["pwd", "otp"]);
    assert.equal(raised.mfa_pending, undefined);
  });

  it("a token it minted puts only the alg, typ and kid in the header and only the contract's claims in the payload", () => {
    const { token } = service.signAccessToken({ userId: "u-42", roles: [Role.USER], sessionId: "s-7", fresh: false });
    const decoded = decodeUnverified(token);
    assert.ok(decoded);
    assert.deepEqual(decoded.header, { alg: "HS256", typ: "at+jwt", kid: KID });
    assert.deepEqual(Object.keys(decoded.payload).sort(), [
      "aal",
      "amr",
      "aud",
      "exp",
      "fresh",
      "iat",
      "iss",
      "jti",
      "roles",
      "sid",
      "sub",
    ]);
  });

  it("a token minted after a refresh, which comes back not fresh", () => {
    const { token } = service.signAccessToken({ userId: "u-1", roles: [Role.USER], sessionId: "s-1", fresh: false });
    assert.equal(service.verifyAccessToken(token).fresh, false);
  });

  it("a token built by hand with the same key and claims, so the forged cases below fail only for their stated reason", () => {
    assert.equal(service.verifyAccessToken(forge(header(), claims())).sub, "user-1");
    assert.equal(service.verifyAccessToken(sign(claims())).sub, "user-1");
  });

  it("a token without the fresh claim, treating it as not fresh", () => {
    assert.equal(service.verifyAccessToken(forge(header(), claims({ fresh: undefined }))).fresh, false);
  });

  it(`an iat up to ${IAT_LEEWAY_SECONDS} seconds in the future, for clock skew between instances`, () => {
    const iat = NOW + IAT_LEEWAY_SECONDS;
    assert.equal(service.verifyAccessToken(forge(header(), claims({ iat, exp: iat + TTL }))).iat, iat);
  });

  it("a lifetime of exactly the configured TTL", () => {
    assert.equal(service.verifyAccessToken(forge(header(), claims({ iat: NOW, exp: NOW + TTL }))).exp, NOW + TTL);
  });

  it("a token one second before its exp", () => {
    assert.equal(service.verifyAccessToken(forge(header(), claims({ iat: NOW - TTL + 1, exp: NOW + 1 }))).exp, NOW + 1);
  });

  it("a typ spelled as the full media type application/at+jwt (RFC 9068)", () => {
    assert.equal(service.verifyAccessToken(forge(header({ typ: "application/at+jwt" }), claims())).sub, "user-1");
  });

  it("an nbf that has already passed", () => {
    assert.equal(service.verifyAccessToken(forge(header(), claims({ nbf: NOW - 1 }))).sub, "user-1");
  });

  it(`the longest token that fits in ${MAX_TOKEN_LENGTH} characters`, () => {
    let padding = 0;
    while (paddedToken(padding + 1).length <= MAX_TOKEN_LENGTH) padding += 1;
    const token = paddedToken(padding);
    assert.ok(token.length <= MAX_TOKEN_LENGTH && token.length > MAX_TOKEN_LENGTH - 4);
    assert.equal(service.verifyAccessToken(token).sub, "user-1");
  });
});

const valid = forge(header(), claims());
const [validHeader, validPayload, validSignature] = valid.split(".") as [string, string, string];
const attackerKey = randomBytes(32);

/** A failing token, why it fails, and the one reason code it must be refused with. */
interface FailingCase {
  token: string;
  reason: TokenFailure;
}

const failing: Record<string, FailingCase> = {
  // Signature
  "a token whose payload was changed after signing (roles raised to ADMIN)": {
    token: replaceSegment(valid, 1, segment(claims({ roles: [Role.ADMIN, Role.USER] }))),
    reason: "SIGNATURE_INVALID",
  },
  "a token whose payload was swapped for another token's": {
    token: replaceSegment(valid, 1, segment(claims({ sub: "user-2" }))),
    reason: "SIGNATURE_INVALID",
  },
  "a token whose signature was altered": {
    token: replaceSegment(valid, 2, (validSignature[0] === "A" ? "B" : "A") + validSignature.slice(1)),
    reason: "SIGNATURE_INVALID",
  },
  "a token whose signature was stripped (trailing dot kept)": {
    token: `${validHeader}.${validPayload}.`,
    reason: "SIGNATURE_INVALID",
  },
  "a token whose signature was truncated": {
    token: replaceSegment(valid, 2, validSignature.slice(0, 20)),
    reason: "SIGNATURE_INVALID",
  },
  "a token signed with another key": {
    token: sign(claims(), { key: OTHER_KEY }),
    reason: "SIGNATURE_INVALID",
  },
  "a token signed with another key and a kid naming it": {
    token: sign(claims(), { key: OTHER_KEY, header: { kid: "attacker-key" } }),
    reason: "KEY_UNKNOWN",
  },
  "a token without a kid": {
    token: forge(header({ kid: undefined }), claims()),
    reason: "KEY_UNKNOWN",
  },
  "a token signed with an empty key": {
    token: forge(header(), claims(), { key: createSecretKey(Buffer.alloc(0)) }),
    reason: "SIGNATURE_INVALID",
  },

  // Algorithm: only the configured one, whatever the spelling of the alternatives
  ...Object.fromEntries(
    ["none", "None", "NONE", "nOnE"].map((alg) => [
      `an unsigned token with alg "${alg}"`,
      { token: unsigned(header({ alg }), claims()), reason: "ALGORITHM_NOT_ALLOWED" as const },
    ]),
  ),
  'a token with alg "none" that still carries a valid HS256 signature': {
    token: forge(header({ alg: "none" }), claims()),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  'a token with alg "HS384" signed with the right key': {
    token: forge(header({ alg: "HS384" }), claims(), { hash: "sha384" }),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  'a token with alg "HS512" signed with the right key': {
    token: forge(header({ alg: "HS512" }), claims(), { hash: "sha512" }),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  'a token with alg "RS256" whose signature is an HMAC with the secret (key confusion)': {
    token: forge(header({ alg: "RS256" }), claims()),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  'a token with alg "hs256" in lower case': {
    token: forge(header({ alg: "hs256" }), claims()),
    reason: "ALGORITHM_NOT_ALLOWED",
  },
  "a token with no alg": {
    token: forge(header({ alg: undefined }), claims()),
    reason: "ALGORITHM_NOT_ALLOWED",
  },

  // Headers that name or carry a key, or demand extensions
  'a token with a "jku" header pointing at a key set elsewhere': {
    token: forge(header({ jku: "https://attacker.example/jwks.json" }), claims()),
    reason: "FORBIDDEN_HEADER",
  },
  'a token with an "x5u" header pointing at a certificate elsewhere': {
    token: forge(header({ x5u: "https://attacker.example/cert.pem" }), claims()),
    reason: "FORBIDDEN_HEADER",
  },
  'a token with an embedded "jwk" holding the key it was signed with': {
    token: forge(header({ jwk: { kty: "oct", k: attackerKey.toString("base64url") } }), claims(), {
      key: createSecretKey(attackerKey),
    }),
    reason: "FORBIDDEN_HEADER",
  },
  'a token with an embedded "x5c" certificate chain': {
    token: forge(header({ x5c: ["MIIBszCCAVmgAwIBAgIUY2VydGlmaWNhdGU="] }), claims()),
    reason: "FORBIDDEN_HEADER",
  },
  'a token with a "crit" header': {
    token: forge(header({ crit: ["b64"], b64: false }), claims()),
    reason: "FORBIDDEN_HEADER",
  },

  // Type: only access tokens, so an ID token or a refresh JWT cannot pass as one
  "a token with no typ": { token: forge(header({ typ: undefined }), claims()), reason: "WRONG_TYPE" },
  'a token with typ "JWT"': { token: forge(header({ typ: "JWT" }), claims()), reason: "WRONG_TYPE" },
  'a token with typ "refresh+jwt"': { token: forge(header({ typ: "refresh+jwt" }), claims()), reason: "WRONG_TYPE" },
  'a token with typ "id+jwt"': { token: forge(header({ typ: "id+jwt" }), claims()), reason: "WRONG_TYPE" },

  // Time
  "a token whose exp has passed": {
    token: sign(claims({ iat: NOW - 1000, exp: NOW - 100 })),
    reason: "EXPIRED",
  },
  "a token at the very second of its exp": {
    token: sign(claims({ iat: NOW - TTL, exp: NOW })),
    reason: "EXPIRED",
  },
  "a token whose nbf is in the future": {
    token: sign(claims({ nbf: NOW + 60 })),
    reason: "NOT_YET_VALID",
  },
  [`a token whose iat is ${IAT_LEEWAY_SECONDS + 1} seconds in the future, just beyond the leeway`]: {
    token: forge(header(), claims({ iat: NOW + IAT_LEEWAY_SECONDS + 1, exp: NOW + IAT_LEEWAY_SECONDS + 1 + TTL })),
    reason: "ISSUED_IN_FUTURE",
  },
  "a token whose iat is an hour in the future": {
    token: sign(claims({ iat: NOW + 3600, exp: NOW + 3600 + TTL })),
    reason: "ISSUED_IN_FUTURE",
  },
  "a token whose lifetime is one second longer than configured": {
    token: forge(header(), claims({ iat: NOW, exp: NOW + TTL + 1 })),
    reason: "LIFETIME_TOO_LONG",
  },
  "a token valid for a year": {
    token: sign(claims({ iat: NOW, exp: NOW + 365 * 86400 })),
    reason: "LIFETIME_TOO_LONG",
  },

  // Issuer and audience
  "a token from another issuer": { token: sign(claims({ iss: "someone-else" })), reason: "ISSUER_MISMATCH" },
  "a token with no iss": { token: sign(claims({ iss: undefined })), reason: "ISSUER_MISMATCH" },
  "a token for another audience": { token: sign(claims({ aud: "another-api" })), reason: "AUDIENCE_MISMATCH" },
  "a token with no aud": { token: sign(claims({ aud: undefined })), reason: "AUDIENCE_MISMATCH" },
  "a token whose aud is a list that does not name this API": {
    token: forge(header(), claims({ aud: ["another-api", "third-api"] })),
    reason: "AUDIENCE_MISMATCH",
  },
  "a token whose aud is a list (this service only mints a single audience)": {
    token: forge(header(), claims({ aud: [AUDIENCE, "another-api"] })),
    reason: "CLAIM_INVALID",
  },

  // Required claims
  ...Object.fromEntries(
    ["exp", "iat", "sub", "sid", "jti", "roles"].map((name) => [
      `a token without the ${name} claim`,
      { token: forge(header(), claims({ [name]: undefined })), reason: "CLAIM_MISSING" as const },
    ]),
  ),

  // Claims of the wrong shape
  "a token whose exp is a string": {
    token: forge(header(), claims({ exp: String(NOW + TTL) })),
    reason: "CLAIM_INVALID",
  },
  "a token whose iat is a string": { token: forge(header(), claims({ iat: String(NOW) })), reason: "CLAIM_INVALID" },
  "a token whose iat is not a whole number of seconds": {
    token: forge(header(), claims({ iat: NOW + 0.5 })),
    reason: "CLAIM_INVALID",
  },
  "a token whose nbf is a string": { token: forge(header(), claims({ nbf: String(NOW) })), reason: "CLAIM_INVALID" },
  "a token whose sub is empty": { token: forge(header(), claims({ sub: "" })), reason: "CLAIM_INVALID" },
  "a token whose aal is not aal1 or aal2": { token: forge(header(), claims({ aal: "aal3" })), reason: "CLAIM_INVALID" },
  "a token whose amr names an unknown method": {
    token: forge(header(), claims({ amr: ["pwd", "sms"] })),
    reason: "CLAIM_INVALID",
  },
  "a token whose mfa_pending is false instead of absent": {
    token: forge(header(), claims({ mfa_pending: false })),
    reason: "CLAIM_INVALID",
  },
  "a token whose sub is a number": { token: forge(header(), claims({ sub: 42 })), reason: "CLAIM_INVALID" },
  "a token whose sid is empty": { token: forge(header(), claims({ sid: "" })), reason: "CLAIM_INVALID" },
  "a token whose jti is an object": { token: forge(header(), claims({ jti: { id: 1 } })), reason: "CLAIM_INVALID" },
  "a token whose roles include an unknown role": {
    token: forge(header(), claims({ roles: [Role.USER, "SUPERUSER"] })),
    reason: "CLAIM_INVALID",
  },
  "a token whose roles are spelled in lower case": {
    token: forge(header(), claims({ roles: ["admin"] })),
    reason: "CLAIM_INVALID",
  },
  "a token whose roles are a single string, not a list": {
    token: forge(header(), claims({ roles: "ADMIN" })),
    reason: "CLAIM_INVALID",
  },
  'a token whose fresh claim is the string "true"': {
    token: forge(header(), claims({ fresh: "true" })),
    reason: "CLAIM_INVALID",
  },

  // Shape of the token itself
  [`a validly signed token longer than ${MAX_TOKEN_LENGTH} characters`]: {
    token: paddedToken(MAX_TOKEN_LENGTH),
    reason: "TOO_LONG",
  },
  "an empty string": { token: "", reason: "MALFORMED" },
  "text that is not a JWT": { token: "not a token", reason: "MALFORMED" },
  "two segments only": { token: `${validHeader}.${validPayload}`, reason: "MALFORMED" },
  "four segments": { token: `${valid}.${validSignature}`, reason: "MALFORMED" },
  "a token wrapped in whitespace": { token: ` ${valid} `, reason: "MALFORMED" },
  "a token in standard base64 (+ / =) instead of base64url": {
    token: `${Buffer.from(JSON.stringify(header())).toString("base64")}.${Buffer.from(JSON.stringify(claims())).toString("base64")}.ab+/cd==`,
    reason: "MALFORMED",
  },
  "segments of characters outside base64url": { token: "e$y.J!h.b*G", reason: "MALFORMED" },
  "a header that is not JSON": { token: forge("not json at all", claims()), reason: "MALFORMED" },
  "a header that is a JSON array": { token: forge(["HS256", "at+jwt"], claims()), reason: "MALFORMED" },
  "a header that is JSON null": { token: forge("null", claims()), reason: "MALFORMED" },
  "a validly signed payload that is not JSON": { token: forge(header(), "not json at all"), reason: "MALFORMED" },
  "a validly signed payload that is a JSON array": { token: forge(header(), [claims()]), reason: "MALFORMED" },
};

describe("TokenService.verifyAccessToken refuses, with a stable reason code,", () => {
  for (const [name, { token, reason }] of Object.entries(failing)) {
    it(`${name} (${reason})`, () => assertRefused(token, reason));
  }

  it("a token from a service with the same key and audience but another issuer", () => {
    const other = new TokenService({
      keys: RING,
      issuer: "other",
      audience: AUDIENCE,
      accessTokenTtlSeconds: TTL,
      now: () => NOW_MS,
    });
    const { token } = other.signAccessToken({ userId: "u-1", roles: [Role.USER], sessionId: "s-1", fresh: true });
    assertRefused(token, "ISSUER_MISMATCH");
  });

  it("a token it minted itself, once the clock has moved past its exp", () => {
    const { token } = service.signAccessToken({ userId: "u-1", roles: [Role.USER], sessionId: "s-1", fresh: true });
    const later = new TokenService({
      keys: RING,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTokenTtlSeconds: TTL,
      now: () => NOW_MS + TTL * 1000,
    });
    assert.throws(
      () => later.verifyAccessToken(token),
      (error: unknown) => error instanceof TokenError && error.reason === "EXPIRED",
    );
  });
});

describe("the table of failing tokens", () => {
  it("exercises every reason code the service can report", () => {
    // A Record over the union: adding a TokenFailure without a case here fails to compile.
    const all: Record<TokenFailure, true> = {
      MALFORMED: true,
      TOO_LONG: true,
      ALGORITHM_NOT_ALLOWED: true,
      KEY_UNKNOWN: true,
      FORBIDDEN_HEADER: true,
      WRONG_TYPE: true,
      SIGNATURE_INVALID: true,
      EXPIRED: true,
      NOT_YET_VALID: true,
      ISSUED_IN_FUTURE: true,
      LIFETIME_TOO_LONG: true,
      ISSUER_MISMATCH: true,
      AUDIENCE_MISMATCH: true,
      CLAIM_MISSING: true,
      CLAIM_INVALID: true,
    };
    const covered = new Set(Object.values(failing).map((c) => c.reason));
    assert.deepEqual([...covered].sort(), Object.keys(all).sort());
  });
});

describe("decodeUnverified", () => {
  it("reads the header and payload of a token it could not verify (expired, signed with another key)", () => {
    const token = sign(claims({ iat: NOW - 5000, exp: NOW - 4100 }), { key: OTHER_KEY });
    assert.deepEqual(decodeUnverified(token), {
      header: header(),
      payload: claims({ iat: NOW - 5000, exp: NOW - 4100 }),
    });
  });

  it("reads the header and payload of a token this service minted", () => {
    const { token, claims: minted } = service.signAccessToken({
      userId: "u-1",
      roles: [Role.USER],
      sessionId: "s-1",
      fresh: true,
    });
    assert.deepEqual(decodeUnverified(token), {
      header: { alg: "HS256", typ: "at+jwt", kid: KID },
      payload: { ...minted },
    });
  });

  it("reads an unsigned alg none token without treating it as valid", () => {
    assert.deepEqual(decodeUnverified(unsigned(header({ alg: "none" }), claims()))?.header, header({ alg: "none" }));
  });

  const undecodable: Record<string, string> = {
    "an empty string": "",
    "text that is not a JWT": "not a token",
    "a header that is not JSON": forge("not json", claims()),
    "a payload that is not JSON": forge(header(), "not json"),
    "a header that is a JSON array": forge([1, 2], claims()),
    "a payload that is JSON null": forge(header(), "null"),
    "a header segment only": validHeader,
  };
  for (const [name, token] of Object.entries(undecodable)) {
    it(`returns undefined for ${name}`, () => {
      assert.equal(decodeUnverified(token), undefined);
    });
  }
});
