import { createHash } from "node:crypto";

import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";

import { BadUserInputError } from "../errors.js";

/** How long a challenge may be answered: the WebAuthn ceremony's timeout, and no longer. */
export const CHALLENGE_TTL_MS = 5 * 60 * 1000;
/** WEBAUTHN_RESPONSE_MAX_BYTES: the most a WebAuthn response may weigh, as JSON text, before anything reads it. */
export const WEBAUTHN_RESPONSE_MAX_BYTES = 16 * 1024;
/** PASSKEYS_MAX_PER_USER: the most passkeys one account may hold. */
export const PASSKEYS_MAX_PER_USER = 20;
/** A passkey's name: 1 to 64 characters. */
export const PASSKEY_NAME_MAX = 64;
/** The relying party's name, shown by some authenticators next to the account. */
export const RP_NAME = "graphql-token-auth";
/**
 * The longest options a start mutation answers with, as JSON text: a registration's with
 * PASSKEYS_MAX_PER_USER excluded credentials of the longest id WebAuthn allows (1,023 bytes).
 */
export const OPTIONS_MAX_LENGTH = 32 * 1024;
/** The longest credential id WebAuthn allows, base64url (1,023 bytes). */
const CREDENTIAL_ID_MAX_LENGTH = 1364;

/** The key a challenge is stored and found under: SHA-256 of the base64url text the browser signs. */
export function hashChallenge(challenge: string): string {
  return createHash("sha256").update(challenge, "utf8").digest("base64url");
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function isText(value: unknown, max = WEBAUTHN_RESPONSE_MAX_BYTES): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= max && BASE64URL.test(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function shapeError(kind: string): BadUserInputError {
  return new BadUserInputError([
    { field: "response", rule: "shape", message: `is not a WebAuthn ${kind} response (the JSON the browser returns)` },
  ]);
}

/** The challenge the browser put in clientDataJSON, or undefined when it holds none. */
function challengeOf(clientDataJSON: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(clientDataJSON, "base64url").toString("utf8"));
    if (!isObject(parsed) || !isText(parsed.challenge, 512)) return undefined;
    return parsed.challenge;
  } catch {
    return undefined;
  }
}

/** What a finish reads of a response that passed {@link readResponse}: the response and its challenge. */
export interface ReadResponse<R> {
  response: R;
  challenge: string;
}

/**
 * Checks a WebAuthn response before the library sees it: at most WEBAUTHN_RESPONSE_MAX_BYTES of
 * JSON (`onTooLarge` is told, then BAD_USER_INPUT on `response`, rule maxBytes), and the shape of
 * the JSON @simplewebauthn/browser sends, with a challenge in its clientDataJSON (else
 * BAD_USER_INPUT on `response`, rule shape). Nothing is stored or spent for a refused one.
 */
export function readResponse(
  value: unknown,
  kind: "registration",
  onTooLarge: () => void,
): ReadResponse<RegistrationResponseJSON>;
export function readResponse(
  value: unknown,
  kind: "authentication",
  onTooLarge: () => void,
): ReadResponse<AuthenticationResponseJSON>;
export function readResponse(
  value: unknown,
  kind: "registration" | "authentication",
  onTooLarge: () => void,
): ReadResponse<RegistrationResponseJSON | AuthenticationResponseJSON> {
  const text = JSON.stringify(value ?? null);
  if (Buffer.byteLength(text, "utf8") > WEBAUTHN_RESPONSE_MAX_BYTES) {
    onTooLarge();
    throw new BadUserInputError([
      { field: "response", rule: "maxBytes", message: `must be at most ${WEBAUTHN_RESPONSE_MAX_BYTES} bytes of JSON` },
    ]);
  }
  if (!isObject(value) || !isObject(value.response) || value.type !== "public-key") throw shapeError(kind);
  const inner = value.response;
  const fields =
    kind === "registration"
      ? ["clientDataJSON", "attestationObject"]
      : ["clientDataJSON", "authenticatorData", "signature"];
  const wellFormed =
    isText(value.id, CREDENTIAL_ID_MAX_LENGTH) &&
    value.rawId === value.id &&
    fields.every((field) => isText(inner[field])) &&
    (inner.userHandle === undefined || isText(inner.userHandle, 128)) &&
    (value.clientExtensionResults === undefined || isObject(value.clientExtensionResults)) &&
    (inner.transports === undefined || (Array.isArray(inner.transports) && inner.transports.length <= 8));
  const challenge = wellFormed ? challengeOf(inner.clientDataJSON as string) : undefined;
  if (!challenge) throw shapeError(kind);
  const response = { clientExtensionResults: {}, ...value } as unknown as RegistrationResponseJSON;
  return { response, challenge };
}

/** Why a passkey proof was refused, for the audit log (MFA_FAILED `detail.reason`); never sent to the client. */
export type ProofFailure =
  | "CHALLENGE_INVALID"
  | "UNKNOWN_CREDENTIAL"
  | "WRONG_USER"
  | "WRONG_ORIGIN"
  | "WRONG_RP_ID"
  | "NO_USER_PRESENCE"
  | "NO_USER_VERIFICATION"
  | "BAD_SIGNATURE"
  | "COUNTER_REGRESSION"
  | "INVALID_RESPONSE";

/** The {@link ProofFailure} of an error @simplewebauthn/server threw, read from its message. */
export function failureOf(error: unknown): ProofFailure {
  const message = error instanceof Error ? error.message : "";
  if (/origin/i.test(message)) return "WRONG_ORIGIN";
  if (/RP ID/i.test(message)) return "WRONG_RP_ID";
  if (/user verification/i.test(message)) return "NO_USER_VERIFICATION";
  if (/not present/i.test(message)) return "NO_USER_PRESENCE";
  if (/counter/i.test(message)) return "COUNTER_REGRESSION";
  if (/challenge/i.test(message)) return "CHALLENGE_INVALID";
  return "INVALID_RESPONSE";
}
