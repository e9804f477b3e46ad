import assert from "node:assert/strict";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  randomUUID,
} from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import jwt from "jsonwebtoken";

import { rotateGeneratedKey } from "../../src/access/keys.js";
import { type Config, ConfigError, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../src/config.js";
import { loadConfig } from "../../src/load-config.js";
import { codes } from "../helpers/api.js";
import { startTestApp, TEST_SECRET, type TestApp } from "../helpers/app.js";
import { createTestDatabase, DATABASES, type TestDatabase } from "../helpers/databases.js";
import { send } from "../helpers/http.js";
import { headerOf, hmac, jws, payloadOf, sign, type Signer, withClaims, withKey } from "../helpers/jwt.js";

type Algorithm = "HS256" | "RS256" | "ES256";
type Asymmetric = Exclude<Algorithm, "HS256">;

const ALGORITHMS: readonly Algorithm[] = ["HS256", "RS256", "ES256"];
const ME = `{ me { id } }`;
const ACCESS_TOKEN_TTL_SECONDS = 900; // the default JWT_ACCESS_TOKEN_EXPIRES
const GRACE_MS = (ACCESS_TOKEN_TTL_SECONDS + 120) * 1000;
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/**
 * The env that selects `alg`. RS256/ES256 get no secret, so the app generates a key pair into
 * DATA_DIR/keys; HS256 keeps the helper's configured TEST_SECRET.
 */
function envFor(alg: Algorithm): Record<string, string> {
  return alg === "HS256" ? { JWT_ALGORITHM: alg } : { JWT_ALGORITHM: alg, JWT_SECRET_KEY: "" };
}

/** The same config startTestApp builds, for calling rotateGeneratedKey as `keys rotate` would. */
function configFor(database: TestDatabase, env: Record<string, string>): Config {
  return loadConfig(
    { NODE_ENV: "test", LOG_LEVEL: "info", JWT_SECRET_KEY: TEST_SECRET, ...database.env, ...env },
    database.dataDir,
  );
}

/** The claims of a genuine token, with a new jti and a fresh iat/exp, so only the signing key is in question. */
function freshClaims(token: string, nowMs = Date.now()): Record<string, unknown> {
  const claims = payloadOf(token);
  const iat = Math.floor(nowMs / 1000);
  return { ...claims, jti: randomUUID(), iat, exp: iat + ACCESS_TOKEN_TTL_SECONDS };
}

function newKeyPair(alg: Asymmetric, namedCurve = "P-256"): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === "RS256"
    ? generateKeyPairSync("rsa", { modulusLength: 2048 })
    : generateKeyPairSync("ec", { namedCurve });
}

/** RFC 7638 JWK thumbprint, computed here independently of src/. */
function thumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: "jwk" }) as Record<string, string>;
  const members =
    jwk.kty === "RSA"
      ? `{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`
      : `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash("sha256").update(members).digest("base64url");
}

interface StoredKeyFile {
  kid: string;
  alg: Algorithm;
  createdAt: number;
  secret?: string;
  privateKeyPem?: string;
}

/** The generated keys in DATA_DIR/keys, as the app stores them. */
function generatedKeys(dataDir: string): StoredKeyFile[] {
  const dir = join(dataDir, "keys");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .map((name) => JSON.parse(readFileSync(join(dir, name), "utf8")) as StoredKeyFile);
}

function generatedKey(dataDir: string, kid: string): StoredKeyFile {
  const key = generatedKeys(dataDir).find((k) => k.kid === kid);
  assert.ok(key, `DATA_DIR/keys holds a key with kid ${kid}`);
  return key;
}

async function fetchJwks(t: TestApp): Promise<{
  status: number;
  headers: Headers;
  text: string;
  body: { keys: Array<JsonWebKey & Record<string, any>> };
}> {
  const { status, headers, text } = await send(new URL("/.well-known/jwks.json", t.url));
  return { status, headers, text, body: JSON.parse(text) };
}

async function assertAccepted(t: TestApp, token: string, userId: string): Promise<void> {
  const res = await t.gql(ME, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body.errors));
  assert.deepEqual(res.body.data, { me: { id: userId } });
}

/** Asserts the HTTP 401 a client sees, and the reason the app logged for that very request. */
async function assertRefused(t: TestApp, token: string, reason: string): Promise<void> {
  const res = await t.gql(ME, { token });
  assert.equal(res.status, 401);
  assert.equal(
    res.headers.get("www-authenticate"),
    `Bearer error="invalid_token", error_description="${reason === "EXPIRED" ? "TOKEN_EXPIRED" : "TOKEN_INVALID"}"`,
  );
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
  const requestId = res.headers.get("x-request-id");
  assert.ok(requestId, "the response carries x-request-id");
  const lines = t.logs.filter((line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    return entry.reqId === requestId && entry.msg === "access token rejected";
  });
  assert.equal(lines.length, 1, `one "access token rejected" line for request ${requestId}`);
  assert.equal(JSON.parse(lines[0]!).reason, reason);
  assert.ok(!lines[0]!.includes(token.split(".")[2] || token), "the log line does not contain the token");
}

/** A plain HTTP listener on 127.0.0.1 that records every request; it would serve the attacker's keys. */
async function startKeyServer(
  jwks: unknown,
  pem: string,
): Promise<{ origin: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    if (request.url?.endsWith(".json")) {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
    } else {
      response.writeHead(200, { "content-type": "application/x-pem-file" }).end(pem);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    origin: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

for (const alg of ALGORITHMS) {
  describe(`access tokens signed with ${alg}`, () => {
    const env = envFor(alg);
    let t: TestApp;
    let stranger: TestApp;
    let alice: { token: string; userId: string };
    let kid: string;
    /** Signs with the app's own key: HS256 the configured secret, RS256/ES256 the generated private key. */
    let realSigner: Signer;
    /** The attacker's own key, its signer, its kid and its public JWK. */
    let attacker: { signer: Signer; kid: string; jwk: Record<string, unknown>; pem: string };
    let keyServer: Awaited<ReturnType<typeof startKeyServer>>;

    before(async () => {
      t = await startTestApp("sqlite", { env });
      // Another deployment with keys of its own (HS256: its own secret, not the shared TEST_SECRET).
      stranger = await startTestApp("sqlite", {
        env: alg === "HS256" ? { ...env, JWT_SECRET_KEY: randomBytes(48).toString("base64url") } : env,
      });
      alice = await t.register("alice");
      kid = headerOf(alice.token).kid;
      if (alg === "HS256") {
        realSigner = hmac(TEST_SECRET);
        const secret = randomBytes(32);
        attacker = {
          signer: hmac(secret),
          kid: "attacker",
          jwk: { kty: "oct", k: secret.toString("base64url"), kid: "attacker" },
          pem: secret.toString("base64"),
        };
      } else {
        realSigner = withKey(createPrivateKey(generatedKey(t.database.dataDir, kid).privateKeyPem!));
        const pair = newKeyPair(alg);
        const attackerKid = thumbprint(pair.publicKey);
        attacker = {
          signer: withKey(pair.privateKey),
          kid: attackerKid,
          jwk: {
            ...(pair.publicKey.export({ format: "jwk" }) as Record<string, unknown>),
            kid: attackerKid,
            alg,
            use: "sig",
          },
          pem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
        };
      }
      keyServer = await startKeyServer({ keys: [attacker.jwk] }, attacker.pem);
    });
    after(async () => {
      await keyServer?.close();
      await t?.close();
      await t?.database.drop();
      await stranger?.close();
      await stranger?.database.drop();
    });

    it(`gives every access token a kid, alg ${alg} and typ at+jwt in its header`, async () => {
      const login = await t.login("alice");
      const bob = await t.register("bob");
      for (const token of [alice.token, login, bob.token]) {
        const header = headerOf(token);
        assert.deepEqual(Object.keys(header).sort(), ["alg", "kid", "typ"]);
        assert.equal(header.alg, alg);
        assert.equal(header.typ, "at+jwt");
        assert.equal(header.kid, kid, "every token names the same current key");
      }
      assert.equal(typeof kid, "string");
      assert.notEqual(kid, "");
    });

    it("keeps the same kid across a restart on the same DATA_DIR, and a token from before the restart still works", async () => {
      const database = t.database;
      await t.close();
      t = await startTestApp("sqlite", { env, database });
      const after = await t.login("alice");
      assert.equal(headerOf(after).kid, kid);
      await assertAccepted(t, alice.token, alice.userId);
      if (alg !== "HS256")
        assert.equal(generatedKeys(database.dataDir).length, 1, "the restart generated no second key");
    });

    if (alg === "HS256") {
      it("publishes an empty key set at /.well-known/jwks.json: the shared secret is never published", async () => {
        const jwks = await fetchJwks(t);
        assert.equal(jwks.status, 200);
        assert.equal(jwks.headers.get("cache-control"), "public, max-age=60");
        assert.equal(jwks.headers.get("content-type"), "application/json; charset=utf-8");
        assert.deepEqual(jwks.body, { keys: [] });
        assert.ok(!jwks.text.includes(TEST_SECRET));
        assert.ok(!jwks.text.includes(Buffer.from(TEST_SECRET).toString("base64url")));
      });
    } else {
      it("publishes the public key at /.well-known/jwks.json with kid, alg and use, and never a private part", async () => {
        const jwks = await fetchJwks(t);
        assert.equal(jwks.status, 200);
        assert.equal(jwks.headers.get("cache-control"), "public, max-age=60");
        assert.equal(jwks.headers.get("content-type"), "application/json; charset=utf-8");
        assert.equal(jwks.body.keys.length, 1);
        const [key] = jwks.body.keys;
        assert.equal(key!.kid, kid);
        assert.equal(key!.alg, alg);
        assert.equal(key!.use, "sig");
        if (alg === "RS256") {
          assert.equal(key!.kty, "RSA");
          assert.deepEqual(Object.keys(key!).sort(), ["alg", "e", "kid", "kty", "n", "use"]);
        } else {
          assert.equal(key!.kty, "EC");
          assert.equal(key!.crv, "P-256");
          assert.deepEqual(Object.keys(key!).sort(), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        }
        for (const member of PRIVATE_JWK_MEMBERS)
          assert.equal(member in key!, false, `no "${member}" in the published key`);
        assert.ok(!jwks.text.includes("PRIVATE KEY"));
      });

      it("issues tokens that another service verifies with nothing but the JWK from /.well-known/jwks.json", async () => {
        const jwks = await fetchJwks(t);
        const token = await t.login("alice");
        // What a resource server does: pick the key by the token's kid, import it, pin the algorithm.
        const jwk = jwks.body.keys.find((k) => k.kid === headerOf(token).kid);
        assert.ok(jwk, "the token's kid is in the key set");
        const publicKey = createPublicKey({ key: jwk, format: "jwk" });
        const claims = jwt.verify(token, publicKey, {
          algorithms: [alg],
          issuer: DEFAULT_ISSUER,
          audience: DEFAULT_AUDIENCE,
        }) as jwt.JwtPayload;
        assert.equal(claims.sub, alice.userId);
        assert.deepEqual(claims.roles, ["USER"]);
        assert.equal(claims.exp! - claims.iat!, ACCESS_TOKEN_TTL_SECONDS);
        // The same key refuses a token with one changed claim.
        const tampered = withClaims(token, { ...claims, roles: ["ADMIN", "USER"] });
        assert.throws(() => jwt.verify(tampered, publicKey, { algorithms: [alg] }), {
          name: "JsonWebTokenError",
          message: "invalid signature",
        });
      });
    }

    it("accepts a token made outside the app with its own key and the usual header (the control for the refusals below)", async () => {
      const token = jws({ alg, typ: "at+jwt", kid }, freshClaims(alice.token), realSigner);
      await assertAccepted(t, token, alice.userId);
    });

    if (alg !== "HS256") {
      it("refuses an HS256 token whose HMAC secret is the public key's PEM (key confusion)", async () => {
        for (const pem of await publicPems(t, kid)) {
          const token = jws({ alg: "HS256", typ: "at+jwt", kid }, freshClaims(alice.token), hmac(pem));
          await assertRefused(t, token, "ALGORITHM_NOT_ALLOWED");
        }
      });

      it("refuses an HS256 token whose HMAC secret is the published JWK's JSON (key confusion)", async () => {
        const jwks = await fetchJwks(t);
        const jwk = jwks.body.keys[0]!;
        for (const secret of [JSON.stringify(jwk), jwks.text]) {
          const token = jws({ alg: "HS256", typ: "at+jwt", kid }, freshClaims(alice.token), hmac(secret));
          await assertRefused(t, token, "ALGORITHM_NOT_ALLOWED");
        }
      });
    }

    it("refuses a token that brings its own key in a jwk header and is signed with that key", async () => {
      const { kid: _ownKid, ...embedded } = attacker.jwk;
      for (const headerKid of [attacker.kid, kid]) {
        const token = jws(
          { alg, typ: "at+jwt", kid: headerKid, jwk: embedded },
          freshClaims(alice.token),
          attacker.signer,
        );
        await assertRefused(t, token, "FORBIDDEN_HEADER");
      }
    });

    it("refuses jku and x5u headers without ever requesting the URLs they name", async () => {
      const headers = [
        { jku: `${keyServer.origin}/jwks.json` },
        { x5u: `${keyServer.origin}/cert.pem` },
        { jku: `${keyServer.origin}/jwks.json`, x5u: `${keyServer.origin}/cert.pem` },
      ];
      for (const extra of headers) {
        const token = jws(
          { alg, typ: "at+jwt", kid: attacker.kid, ...extra },
          freshClaims(alice.token),
          attacker.signer,
        );
        await assertRefused(t, token, "FORBIDDEN_HEADER");
      }
      assert.deepEqual(keyServer.requests, []);
    });

    it("refuses a token with an unknown kid or no kid at all, even when it is signed with the app's own key", async () => {
      await assertRefused(
        t,
        jws({ alg, typ: "at+jwt", kid: "no-such-key" }, freshClaims(alice.token), realSigner),
        "KEY_UNKNOWN",
      );
      await assertRefused(t, jws({ alg, typ: "at+jwt" }, freshClaims(alice.token), realSigner), "KEY_UNKNOWN");
      await assertRefused(t, jws({ alg, typ: "at+jwt", kid: 42 }, freshClaims(alice.token), realSigner), "KEY_UNKNOWN");
    });

    it("looks a kid up only by exact match: its own kid in another letter case or with a trailing space is unknown", async () => {
      const variants = [
        kid.toUpperCase() === kid ? kid.toLowerCase() : kid.toUpperCase(),
        `${kid} `,
        ` ${kid}`,
        kid.slice(0, -1),
      ];
      for (const variant of variants) {
        await assertRefused(
          t,
          jws({ alg, typ: "at+jwt", kid: variant }, freshClaims(alice.token), realSigner),
          "KEY_UNKNOWN",
        );
      }
    });

    it("never reads a kid as a path: ../keys/x, /etc/passwd and /dev/null are unknown kids, whatever those files hold", async () => {
      // Plant the attacker's key where "../keys/x" would lead a verifier that joins kid to a folder.
      const planted = join(t.database.dataDir, "keys", "x");
      mkdirSync(join(t.database.dataDir, "keys"), { recursive: true });
      writeFileSync(planted, alg === "HS256" ? "attacker planted secret" : attacker.pem);
      const cases: Array<{ kid: string; signer: Signer }> = [
        { kid: "../keys/x", signer: alg === "HS256" ? hmac("attacker planted secret") : attacker.signer },
        {
          kid: "/etc/passwd",
          signer: alg === "HS256" && existsSync("/etc/passwd") ? hmac(readFileSync("/etc/passwd")) : attacker.signer,
        },
        { kid: "../../../../../../../../dev/null", signer: alg === "HS256" ? hmac("") : attacker.signer },
      ];
      if (alg !== "HS256") {
        // The name of the file that holds the real key, signed with the real key: still not its kid.
        const file = readdirSync(join(t.database.dataDir, "keys")).find((name) => name.endsWith(".json"));
        assert.ok(file);
        cases.push({ kid: file, signer: realSigner }, { kid: `../keys/${file}`, signer: realSigner });
      }
      for (const c of cases) {
        await assertRefused(
          t,
          jws({ alg, typ: "at+jwt", kid: c.kid }, freshClaims(alice.token), c.signer),
          "KEY_UNKNOWN",
        );
      }
      rmSync(planted);
    });

    it("refuses a token issued by another deployment with keys of its own", async () => {
      const mallory = await stranger.register("mallory");
      assert.notEqual(headerOf(mallory.token).kid, kid);
      await assertRefused(t, mallory.token, "KEY_UNKNOWN");
      // The same claims as a token of this app, but the stranger's key: still its kid, still unknown.
      const strangerKey =
        alg === "HS256" ? undefined : generatedKey(stranger.database.dataDir, headerOf(mallory.token).kid);
      if (strangerKey) {
        const token = jws(
          headerOf(mallory.token),
          freshClaims(alice.token),
          withKey(createPrivateKey(strangerKey.privateKeyPem!)),
        );
        await assertRefused(t, token, "KEY_UNKNOWN");
      }
    });

    it('refuses alg "none" in any letter case, with or without a signature', async () => {
      for (const none of ["none", "None", "NONE"]) {
        await assertRefused(
          t,
          jws({ alg: none, typ: "at+jwt", kid }, freshClaims(alice.token), undefined),
          "ALGORITHM_NOT_ALLOWED",
        );
        await assertRefused(
          t,
          jws({ alg: none, typ: "at+jwt", kid }, freshClaims(alice.token), realSigner),
          "ALGORITHM_NOT_ALLOWED",
        );
      }
    });
  });
}

/** The PEMs an attacker rebuilds from the published JWK, as key confusion tools feed them to HMAC (with and without the final newline). */
async function publicPems(t: TestApp, kid: string): Promise<string[]> {
  const jwks = await fetchJwks(t);
  const jwk = jwks.body.keys.find((k) => k.kid === kid);
  assert.ok(jwk);
  const publicKey = createPublicKey({ key: jwk, format: "jwk" });
  const pems = [publicKey.export({ type: "spki", format: "pem" }).toString()];
  if (jwk.kty === "RSA") pems.push(publicKey.export({ type: "pkcs1", format: "pem" }).toString());
  return pems.flatMap((pem) => [pem, pem.trimEnd()]);
}

describe("a token of one algorithm presented to an app of another", () => {
  const apps = new Map<Algorithm, TestApp>();
  const tokens = new Map<Algorithm, string>();
  before(async () => {
    for (const alg of ALGORITHMS) {
      const t = await startTestApp("sqlite", { env: envFor(alg) });
      apps.set(alg, t);
      tokens.set(alg, (await t.register("carol")).token);
    }
  });
  after(async () => {
    for (const t of apps.values()) {
      await t.close();
      await t.database.drop();
    }
  });

  for (const from of ALGORITHMS) {
    for (const to of ALGORITHMS) {
      if (from === to) continue;
      it(`is refused: a ${from} token at an ${to} app gets 401`, async () => {
        assert.equal(headerOf(tokens.get(from)!).alg, from);
        await assertRefused(apps.get(to)!, tokens.get(from)!, "ALGORITHM_NOT_ALLOWED");
      });
    }
  }
});

for (const kind of DATABASES) {
  for (const alg of ["RS256", "HS256"] as const) {
    describe(`rotating generated ${alg} keys (${kind})`, () => {
      // HS256 generates (and rotates) its secret only when JWT_SECRET_KEY is unset, outside production.
      const env = { JWT_ALGORITHM: alg, JWT_SECRET_KEY: "" };
      let clock = Date.now();
      const now = () => clock;
      const apps: TestApp[] = [];
      let first: TestApp;
      let peer: TestApp;
      let newcomer: TestApp;
      let alice: { token: string; userId: string };
      let oldKid: string;
      let rotated: { kid: string; alg: string };
      let rotatedAt: number;

      /** A token with alice's session and fresh times, signed by jsonwebtoken with one of the generated keys. */
      function signWithGeneratedKey(kid: string): string {
        const dataDir = first.database.dataDir;
        const key: string | Buffer =
          alg === "RS256"
            ? generatedKey(dataDir, kid).privateKeyPem!
            : kid === oldKid
              ? Buffer.from(readFileSync(join(dataDir, "jwt-secret"), "utf8").trim(), "utf8") // the first secret predates DATA_DIR/keys
              : Buffer.from(generatedKey(dataDir, kid).secret!, "base64url");
        return sign(freshClaims(alice.token, clock), key, { alg, header: { typ: "at+jwt", kid } });
      }

      before(async () => {
        first = await startTestApp(kind, { env, now });
        apps.push(first);
        // A second instance on the same database, already running when the rotation happens.
        peer = await startTestApp(kind, { env, now, database: first.database });
        apps.push(peer);
        alice = await first.register("alice");
        oldKid = headerOf(alice.token).kid;
      });
      after(async () => {
        for (const t of apps) await t.close();
        await first?.database.drop();
      });

      it("signs with a generated key that every instance on the same DATA_DIR shares", async () => {
        assert.equal(headerOf(alice.token).alg, alg);
        assert.equal(headerOf(await peer.login("alice")).kid, oldKid);
        await assertAccepted(peer, alice.token, alice.userId);
        if (alg === "HS256") {
          // The development secret is the text kept in DATA_DIR/jwt-secret, as before key rotation existed.
          const secret = readFileSync(join(first.database.dataDir, "jwt-secret"), "utf8").trim();
          assert.equal(
            (jwt.verify(alice.token, secret, { algorithms: ["HS256"] }) as jwt.JwtPayload).sub,
            alice.userId,
          );
        } else
          assert.deepEqual(
            generatedKeys(first.database.dataDir).map((k) => k.kid),
            [oldKid],
          );
      });

      it("keeps accepting tokens of the old key after `keys rotate`, and running instances keep signing with it until they reload", async () => {
        clock += 1000;
        rotatedAt = clock;
        rotated = rotateGeneratedKey(configFor(first.database, env), now);
        assert.equal(rotated.alg, alg);
        assert.notEqual(rotated.kid, oldKid);
        assert.equal(generatedKey(first.database.dataDir, rotated.kid).createdAt, rotatedAt);
        await assertAccepted(first, alice.token, alice.userId);
        assert.equal(headerOf(await first.login("alice")).kid, oldKid);
      });

      it("has a new instance started after the rotation sign with the new kid", async () => {
        newcomer = await startTestApp(kind, { env, now, database: first.database });
        apps.push(newcomer);
        const token = await newcomer.login("alice");
        assert.deepEqual(headerOf(token), { alg, typ: "at+jwt", kid: rotated.kid });
        await assertAccepted(newcomer, token, alice.userId);
        await assertAccepted(newcomer, alice.token, alice.userId);
      });

      it("has an instance that has not reloaded accept a token with the new kid, reloading its keys on the unknown kid", async () => {
        const token = await newcomer.login("alice");
        await assertAccepted(peer, token, alice.userId);
        assert.equal(headerOf(await peer.login("alice")).kid, rotated.kid, "the reload also made the new key current");
        await assertAccepted(peer, alice.token, alice.userId);
      });

      it("has the first instance sign with the new kid after reloadKeys(), still accepting both keys", async () => {
        assert.equal(headerOf(await first.login("alice")).kid, oldKid);
        first.app.reloadKeys();
        const token = await first.login("alice");
        assert.equal(headerOf(token).kid, rotated.kid);
        await assertAccepted(first, token, alice.userId);
        await assertAccepted(first, alice.token, alice.userId);
        await assertAccepted(first, await newcomer.login("alice"), alice.userId);
      });

      if (alg === "RS256") {
        it("lists both public keys in the JWKS during the grace period, the new one first", async () => {
          for (const t of [first, peer, newcomer]) {
            const jwks = await fetchJwks(t);
            assert.deepEqual(
              jwks.body.keys.map((k) => k.kid),
              [rotated.kid, oldKid],
            );
            for (const key of jwks.body.keys)
              for (const member of PRIVATE_JWK_MEMBERS) assert.equal(member in key, false);
          }
        });
      } else {
        it("keeps the JWKS empty through the rotation", async () => {
          for (const t of [first, peer, newcomer]) assert.deepEqual((await fetchJwks(t)).body, { keys: [] });
        });
      }

      it("still accepts a token signed with the old key just before accessTokenTtl + 120 s have passed since the rotation", async () => {
        clock = rotatedAt + GRACE_MS - 1000;
        await assertAccepted(first, signWithGeneratedKey(oldKid), alice.userId);
      });

      it("drops the old key once accessTokenTtl + 120 s have passed since the rotation: gone from the JWKS, its tokens refused", async () => {
        clock = rotatedAt + GRACE_MS + 1000;
        const stale = signWithGeneratedKey(oldKid);
        assert.equal(headerOf(stale).kid, oldKid);
        for (const t of [first, peer, newcomer]) {
          await assertRefused(t, stale, "KEY_UNKNOWN");
          // The same claims signed with the current key pass: only the key is stale.
          await assertAccepted(t, signWithGeneratedKey(rotated.kid), alice.userId);
          const jwks = await fetchJwks(t);
          assert.deepEqual(
            jwks.body.keys.map((k) => k.kid),
            alg === "RS256" ? [rotated.kid] : [],
          );
        }
        // A restart does not bring the old key back.
        const restarted = await startTestApp(kind, { env, now, database: first.database });
        apps.push(restarted);
        await assertRefused(restarted, stale, "KEY_UNKNOWN");
        assert.equal(headerOf(await restarted.login("alice")).kid, rotated.kid);
      });
    });
  }
}

describe("keys given in configuration", () => {
  let keyDir: string;
  const databases: TestDatabase[] = [];
  const apps: TestApp[] = [];

  /** Writes a PEM file into the temporary key folder and returns its path. */
  function writePem(name: string, key: KeyObject): string {
    const file = join(keyDir, name);
    const pem =
      key.type === "private"
        ? key.export({ type: "pkcs8", format: "pem" })
        : key.export({ type: "spki", format: "pem" });
    writeFileSync(file, pem, { mode: 0o600 });
    return file;
  }

  async function start(database: TestDatabase, env: Record<string, string>): Promise<TestApp> {
    const t = await startTestApp("sqlite", { database, env });
    apps.push(t);
    return t;
  }

  function newDatabase(): TestDatabase {
    const database = createTestDatabase("sqlite");
    databases.push(database);
    return database;
  }

  before(() => {
    keyDir = mkdtempSync(join(tmpdir(), "gta-keys-"));
  });
  after(async () => {
    for (const t of apps) await t.close();
    for (const database of databases) await database.drop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  for (const alg of ["RS256", "ES256"] as const) {
    let database: TestDatabase;
    let oldPair: { privateKey: KeyObject; publicKey: KeyObject };
    let alice: { token: string; userId: string };

    it(`signs ${alg} tokens with the key in JWT_PRIVATE_KEY_FILE, under its RFC 7638 thumbprint as kid`, async () => {
      database = newDatabase();
      oldPair = newKeyPair(alg);
      const old = await start(database, {
        JWT_ALGORITHM: alg,
        JWT_SECRET_KEY: "",
        JWT_PRIVATE_KEY_FILE: writePem(`${alg}-old.pem`, oldPair.privateKey),
      });
      alice = await old.register("alice");
      assert.deepEqual(headerOf(alice.token), { alg, typ: "at+jwt", kid: thumbprint(oldPair.publicKey) });
      const claims = jwt.verify(alice.token, oldPair.publicKey, {
        algorithms: [alg],
        issuer: DEFAULT_ISSUER,
        audience: DEFAULT_AUDIENCE,
      }) as jwt.JwtPayload;
      assert.equal(claims.sub, alice.userId);
      assert.deepEqual(
        (await fetchJwks(old)).body.keys.map((k) => k.kid),
        [thumbprint(oldPair.publicKey)],
      );
      assert.equal(existsSync(join(database.dataDir, "keys")), false, "no key was generated");
      await old.close();
    });

    it(`after a move to a new ${alg} key, accepts tokens of the old one listed in JWT_PREVIOUS_PUBLIC_KEY_FILES and signs with the new kid`, async () => {
      const newPair = newKeyPair(alg);
      const newKeyFile = writePem(`${alg}-new.pem`, newPair.privateKey);
      const current = await start(database, {
        JWT_ALGORITHM: alg,
        JWT_SECRET_KEY: "",
        JWT_PRIVATE_KEY_FILE: newKeyFile,
        JWT_PREVIOUS_PUBLIC_KEY_FILES: writePem(`${alg}-old.pub.pem`, oldPair.publicKey),
      });
      await assertAccepted(current, alice.token, alice.userId);
      const fresh = await current.login("alice");
      assert.equal(headerOf(fresh).kid, thumbprint(newPair.publicKey));
      assert.equal((jwt.verify(fresh, newPair.publicKey, { algorithms: [alg] }) as jwt.JwtPayload).sub, alice.userId);
      // Other services must still be able to verify tokens of the old key while they are in flight.
      assert.deepEqual(
        (await fetchJwks(current)).body.keys.map((k) => k.kid),
        [thumbprint(newPair.publicKey), thumbprint(oldPair.publicKey)],
      );

      // The previous key only verifies because it is configured: without it, the old token is refused.
      const withoutPrevious = await start(database, {
        JWT_ALGORITHM: alg,
        JWT_SECRET_KEY: "",
        JWT_PRIVATE_KEY_FILE: newKeyFile,
      });
      await assertRefused(withoutPrevious, alice.token, "KEY_UNKNOWN");
    });
  }

  it("still accepts tokens signed with a secret moved to JWT_PREVIOUS_SECRET_KEYS, and signs new ones with the new JWT_SECRET_KEY", async () => {
    const database = newDatabase();
    const oldSecret = randomBytes(48).toString("base64url");
    const newSecret = randomBytes(48).toString("base64url");
    const old = await start(database, { JWT_ALGORITHM: "HS256", JWT_SECRET_KEY: oldSecret });
    const alice = await old.register("alice");
    await old.close();

    const current = await start(database, {
      JWT_ALGORITHM: "HS256",
      JWT_SECRET_KEY: newSecret,
      JWT_PREVIOUS_SECRET_KEYS: oldSecret,
    });
    await assertAccepted(current, alice.token, alice.userId);
    const fresh = await current.login("alice");
    assert.notEqual(headerOf(fresh).kid, headerOf(alice.token).kid);
    assert.equal((jwt.verify(fresh, newSecret, { algorithms: ["HS256"] }) as jwt.JwtPayload).sub, alice.userId);
    assert.throws(() => jwt.verify(fresh, oldSecret, { algorithms: ["HS256"] }), { message: "invalid signature" });
    assert.deepEqual((await fetchJwks(current)).body, { keys: [] });

    const withoutPrevious = await start(database, { JWT_ALGORITHM: "HS256", JWT_SECRET_KEY: newSecret });
    await assertRefused(withoutPrevious, alice.token, "KEY_UNKNOWN");
  });

  it("refuses to start when JWT_PRIVATE_KEY_FILE holds a key of the wrong type for JWT_ALGORITHM", async () => {
    const cases = [
      {
        alg: "RS256",
        pair: newKeyPair("ES256"),
        message: "the configured key is not an RSA key, as JWT_ALGORITHM=RS256 needs",
      },
      {
        alg: "ES256",
        pair: newKeyPair("RS256"),
        message: "the configured key is not a P-256 EC key, as JWT_ALGORITHM=ES256 needs",
      },
      {
        alg: "ES256",
        pair: newKeyPair("ES256", "P-384"),
        message: "the configured key is not a P-256 EC key, as JWT_ALGORITHM=ES256 needs",
      },
    ];
    for (const [i, c] of cases.entries()) {
      const file = writePem(`mismatch-${i}.pem`, c.pair.privateKey);
      await assert.rejects(
        startTestApp("sqlite", {
          database: newDatabase(),
          env: { JWT_ALGORITHM: c.alg, JWT_SECRET_KEY: "", JWT_PRIVATE_KEY_FILE: file },
        }),
        {
          message: c.message,
        },
      );
    }
    // The same for a previous public key of the wrong type.
    const rsa = writePem("mismatch-current.pem", newKeyPair("RS256").privateKey);
    const ec = writePem("mismatch-previous.pub.pem", newKeyPair("ES256").publicKey);
    await assert.rejects(
      startTestApp("sqlite", {
        database: newDatabase(),
        env: {
          JWT_ALGORITHM: "RS256",
          JWT_SECRET_KEY: "",
          JWT_PRIVATE_KEY_FILE: rsa,
          JWT_PREVIOUS_PUBLIC_KEY_FILES: ec,
        },
      }),
      { message: "the configured key is not an RSA key, as JWT_ALGORITHM=RS256 needs" },
    );
  });

  it("refuses `keys rotate` when the keys come from configuration, and writes no key", () => {
    const database = newDatabase();
    const keyFile = writePem("rotate-refused.pem", newKeyPair("RS256").privateKey);
    assert.throws(
      () =>
        rotateGeneratedKey(
          configFor(database, { JWT_ALGORITHM: "RS256", JWT_SECRET_KEY: "", JWT_PRIVATE_KEY_FILE: keyFile }),
        ),
      {
        message:
          "keys come from JWT_PRIVATE_KEY_FILE: rotate by adding the old public key to JWT_PREVIOUS_PUBLIC_KEY_FILES and pointing JWT_PRIVATE_KEY_FILE at a new key",
      },
    );
    assert.throws(() => rotateGeneratedKey(configFor(database, { JWT_ALGORITHM: "HS256" })), {
      message:
        "keys come from JWT_SECRET_KEY: rotate by moving it to JWT_PREVIOUS_SECRET_KEYS and setting a new JWT_SECRET_KEY",
    });
    assert.equal(existsSync(join(database.dataDir, "keys")), false);
    assert.equal(existsSync(join(database.dataDir, "jwt-secret")), false);
  });
});

describe("loadConfig and the signing keys", () => {
  let cwd: string;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "gta-config-"));
  });
  after(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  function problems(env: Record<string, string>): readonly string[] {
    try {
      loadConfig({ NODE_ENV: "test", DATA_DIR: cwd, ...env }, cwd);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems;
    }
    return [];
  }

  it("refuses JWT_ALGORITHM=HS512, naming the variable and the algorithms it accepts", () => {
    assert.deepEqual(problems({ JWT_ALGORITHM: "HS512" }), ["JWT_ALGORITHM must be HS256, RS256 or ES256"]);
    assert.deepEqual(problems({ JWT_ALGORITHM: "none" }), ["JWT_ALGORITHM must be HS256, RS256 or ES256"]);
  });

  it("refuses NODE_ENV=production with RS256 or ES256 and no JWT_PRIVATE_KEY_FILE, and accepts it with one", () => {
    for (const alg of ["RS256", "ES256"] as const) {
      assert.deepEqual(problems({ NODE_ENV: "production", JWT_ALGORITHM: alg }), [
        `JWT_PRIVATE_KEY_FILE is required when NODE_ENV=production and JWT_ALGORITHM=${alg}`,
      ]);
      const file = join(cwd, `${alg}.pem`);
      writeFileSync(file, newKeyPair(alg).privateKey.export({ type: "pkcs8", format: "pem" }));
      assert.deepEqual(problems({ NODE_ENV: "production", JWT_ALGORITHM: alg, JWT_PRIVATE_KEY_FILE: file }), []);
    }
  });

  it("refuses a JWT_PRIVATE_KEY_FILE or a JWT_PREVIOUS_PUBLIC_KEY_FILES entry that does not exist", () => {
    const missing = join(cwd, "missing.pem");
    assert.deepEqual(problems({ JWT_ALGORITHM: "RS256", JWT_PRIVATE_KEY_FILE: missing }), [
      "JWT_PRIVATE_KEY_FILE must name an existing PEM file",
    ]);
    assert.deepEqual(problems({ JWT_ALGORITHM: "RS256", JWT_PREVIOUS_PUBLIC_KEY_FILES: missing }), [
      "JWT_PREVIOUS_PUBLIC_KEY_FILES must name existing PEM files",
    ]);
  });
});
