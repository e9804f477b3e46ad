// Passkey ceremonies as a browser runs them, against a test app: the start mutation's options go to
// the software authenticator (helpers/webauthn.ts), and its answer to the finish mutation.
import assert from "node:assert/strict";

import type { GraphQLResponse } from "./api.js";
import type { TestApp } from "./app.js";
import { type AssertionOptions, type CeremonyOptions, SoftAuthenticator } from "./webauthn.js";

/** The relying party every passkey suite's app is configured with. */
export const RP_ID = "localhost";
export const ORIGIN = "http://localhost:4000";
export const PASSKEY_ENV = { WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN } as const;

export const AUTH_PAYLOAD = "accessToken refreshToken assurance mfaRequired user { id username }";

/** A software authenticator on the suites' origin. */
export function authenticator(): SoftAuthenticator {
  return new SoftAuthenticator(ORIGIN, RP_ID);
}

/** The data of a response that must have succeeded. */
export function dataOf<T = any>(res: GraphQLResponse<T>): T {
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data as T;
}

/** The first error's code and reason (or BAD_USER_INPUT's first field:rule). */
export function refusalOf(res: GraphQLResponse): string {
  const error = res.body.errors?.[0];
  assert.ok(error, `expected an error, got ${JSON.stringify(res.body.data)}`);
  const ext = error.extensions ?? {};
  if (ext.code === "BAD_USER_INPUT") return `BAD_USER_INPUT ${ext.fields?.[0]?.field}:${ext.fields?.[0]?.rule}`;
  return ext.reason ? `${ext.code} ${ext.reason}` : String(ext.code);
}

export async function startRegistration(t: TestApp, token: string): Promise<any> {
  return dataOf(await t.gql(`mutation { startPasskeyRegistration }`, { token })).startPasskeyRegistration;
}

export function finishRegistration(t: TestApp, token: string, response: unknown, name = "laptop") {
  return t.gql(
    `mutation($r: JSON!, $n: String!) { finishPasskeyRegistration(response: $r, name: $n) { id name createdAt lastUsedAt } }`,
    { token, variables: { r: response, n: name } },
  );
}

/** Registers a new passkey of `device` for the token's user; the Passkey. */
export async function enroll(
  t: TestApp,
  token: string,
  device: SoftAuthenticator,
  name = "laptop",
  overrides: CeremonyOptions = {},
): Promise<{ id: string; name: string }> {
  const options = await startRegistration(t, token);
  return dataOf(await finishRegistration(t, token, device.create(options, overrides), name)).finishPasskeyRegistration;
}

export async function startSignIn(t: TestApp, username?: string, token?: string): Promise<any> {
  const res = await t.gql(`mutation($u: String) { startPasskeySignIn(username: $u) }`, {
    token,
    variables: { u: username ?? null },
  });
  return dataOf(res).startPasskeySignIn;
}

export function finishSignIn(t: TestApp, response: unknown): Promise<GraphQLResponse> {
  return t.gql(`mutation($r: JSON!) { finishPasskeySignIn(response: $r) { ${AUTH_PAYLOAD} } }`, {
    variables: { r: response },
  });
}

/** A whole passkey sign-in of `device` (by `username`, or discoverable); the raw finish response. */
export async function signIn(
  t: TestApp,
  device: SoftAuthenticator,
  username?: string,
  overrides: AssertionOptions = {},
): Promise<GraphQLResponse> {
  return finishSignIn(t, device.get(await startSignIn(t, username), overrides));
}

export function verifyWithPasskey(t: TestApp, token: string, response: unknown): Promise<GraphQLResponse> {
  return t.gql(`mutation($r: JSON!) { verifyMfaWithPasskey(response: $r) { ${AUTH_PAYLOAD} } }`, {
    token,
    variables: { r: response },
  });
}

/** The stored audit rows of a user, oldest first, as `TYPE detail`. */
export async function auditOf(t: TestApp, userId: string): Promise<string[]> {
  const rows = await t.app.database.db
    .selectFrom("audit_events")
    .select(["type", "detail"])
    .where("user_id", "=", userId)
    .orderBy("id")
    .execute();
  return rows.map((r) => `${r.type} ${r.detail ?? ""}`.trim());
}

/** The user's sessions' rows: live or ended, their assurance. */
export async function sessionsOf(t: TestApp, userId: string) {
  return t.app.database.db
    .selectFrom("sessions")
    .select(["id", "aal", "amr", "mfa_pending", "revoked_reason"])
    .where("user_id", "=", userId)
    .orderBy("created_at")
    .execute();
}
