// The software authenticator against @simplewebauthn/server itself, before any of our code: its
// registration and assertion verify, and each deliberate fault is caught by the library.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";

import { SoftAuthenticator } from "../helpers/webauthn.js";

const ORIGIN = "http://localhost:4000";
const RP_ID = "localhost";

async function registered() {
  const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
  const options = await generateRegistrationOptions({ rpName: "test", rpID: RP_ID, userName: "alice" });
  const response = authenticator.create(options, { be: true, bs: true });
  const verified = await verifyRegistrationResponse({
    response,
    expectedChallenge: options.challenge,
    expectedOrigin: ORIGIN,
    expectedRPID: RP_ID,
  });
  assert.equal(verified.verified, true);
  return { authenticator, credential: verified.registrationInfo.credential, info: verified.registrationInfo };
}

describe("software authenticator", () => {
  it("registers: a none attestation with an ES256 key, backup flags read as multiDevice", async () => {
    const { credential, info, authenticator } = await registered();
    assert.equal(info.fmt, "none");
    assert.equal(info.userVerified, true);
    assert.equal(info.credentialDeviceType, "multiDevice");
    assert.equal(info.credentialBackedUp, true);
    assert.equal(credential.id, authenticator.credentials[0]!.id);
    assert.equal(credential.counter, 0);
  });

  it("signs assertions the library verifies, counting up", async () => {
    const { authenticator, credential } = await registered();
    const options = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: "required" });
    const verified = await verifyAuthenticationResponse({
      response: authenticator.get(options),
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      credential,
    });
    assert.equal(verified.verified, true);
    assert.equal(verified.authenticationInfo.newCounter, 1);
    assert.equal(verified.authenticationInfo.userVerified, true);
  });

  it("each fault is refused by the library", async () => {
    const { authenticator, credential } = await registered();
    const options = await generateAuthenticationOptions({ rpID: RP_ID });
    const verify = (response: ReturnType<SoftAuthenticator["get"]>, stored = credential) =>
      verifyAuthenticationResponse({
        response,
        expectedChallenge: options.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential: stored,
      });
    await assert.rejects(verify(authenticator.get(options, { origin: "https://evil.example" })), /origin/i);
    await assert.rejects(verify(authenticator.get(options, { rpId: "evil.example" })), /RP ID/i);
    await assert.rejects(verify(authenticator.get(options, { uv: false })), /verif/i);
    await assert.rejects(verify(authenticator.get(options, { challenge: "AAAA" })), /challenge/i);
    await assert.rejects(verify(authenticator.get(options, { counter: 3 }), { ...credential, counter: 5 }), /counter/i);
  });
});
