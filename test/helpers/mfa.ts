// A second factor as a client and its authenticator app have it: enrolling TOTP through the API
// (enrollTotp, then confirmTotp with a code computed from the secret), the codes an app would show,
// the recovery codes confirmTotp returned, and verifyMfa.
import assert from "node:assert/strict";

import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";

import { type ApiClient, type GraphQLResponse, PASSWORD } from "./api.js";

/** RFC 6238's defaults, which the server uses: 30-second steps, 6 digits, HMAC-SHA-1. */
export const TOTP_PERIOD_MS = 30_000;
export const TOTP_DIGITS = 6;

/** What every AuthPayload-returning MFA call asks for. */
export const MFA_PAYLOAD = "accessToken refreshToken tokenType expiresIn assurance mfaRequired user { id username }";

/** The 30-second step a moment falls in. */
export function stepAt(atMs: number): number {
  return Math.floor(atMs / TOTP_PERIOD_MS);
}

/** The code an authenticator app shows for `secret` (base32, as enrollTotp returns it) at `step`. */
export function totpForStep(secret: string, step: number): string {
  return generateHOTP(decodeBase32IgnorePadding(secret.toUpperCase()), BigInt(step), TOTP_DIGITS);
}

/** The code an authenticator app shows for `secret` at `atMs` (default now). */
export function totpAt(secret: string, atMs: number = Date.now()): string {
  return totpForStep(secret, stepAt(atMs));
}

/** A code for `secret` that is not the current step's, nor either neighbour's: always refused. */
export function wrongTotp(secret: string, atMs: number = Date.now()): string {
  const step = stepAt(atMs);
  const taken = new Set([step - 1, step, step + 1].map((s) => totpForStep(secret, s)));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(TOTP_DIGITS, "0");
    if (!taken.has(code)) return code;
  }
}

/** A user's enrolled TOTP as the test's authenticator app holds it. */
export interface EnrolledTotp {
  secret: string;
  otpauthUri: string;
  /** The ten recovery codes confirmTotp returned (shown once). */
  recoveryCodes: string[];
  /** The step whose code confirmTotp (or the last {@link EnrolledTotp.nextCode}) used. */
  lastStep: number;
  /**
   * A code the server has not accepted yet for this user: the current step's, or the next step's
   * once the current one is used (the server accepts one step either side), remembered as used.
   * Throws when both are used (each step's code works once: move the app's clock on, or use a
   * recovery code).
   */
  nextCode(atMs?: number): string;
}

/** The texts enrollTotpRaw and confirmTotpRaw send (a suite whose server runs with TRUSTED_DOCUMENTS lists them). */
export const ENROLL_TOTP_DOCUMENT = `mutation { enrollTotp { secret otpauthUri } }`;
export const CONFIRM_TOTP_DOCUMENT = `mutation($code: String!) { confirmTotp(code: $code) }`;

/** enrollTotp with `accessToken` (a fresh session token); the raw response. */
export function enrollTotpRaw(t: ApiClient, accessToken: string): Promise<GraphQLResponse> {
  return t.gql(ENROLL_TOTP_DOCUMENT, { token: accessToken });
}

/** confirmTotp(code) with `accessToken`; the raw response. */
export function confirmTotpRaw(t: ApiClient, accessToken: string, code: string): Promise<GraphQLResponse> {
  return t.gql(CONFIRM_TOTP_DOCUMENT, { token: accessToken, variables: { code } });
}

/** verifyMfa(code) with `accessToken`, asking for the whole AuthPayload; the raw response. */
export function verifyMfaRaw(t: ApiClient, accessToken: string, code: string): Promise<GraphQLResponse> {
  return t.gql(`mutation($code: String!) { verifyMfa(code: $code) { ${MFA_PAYLOAD} } }`, {
    token: accessToken,
    variables: { code },
  });
}

/** A TOTP enrollment's secret and URI; fails the test when enrollTotp is refused. */
export async function enrollTotp(t: ApiClient, accessToken: string): Promise<{ secret: string; otpauthUri: string }> {
  const res = await enrollTotpRaw(t, accessToken);
  assert.equal(res.body.errors, undefined, `enrollTotp failed: ${JSON.stringify(res.body.errors)}`);
  return res.body.data.enrollTotp;
}

/**
 * Enrolls TOTP for the user of `accessToken` (a fresh session token) through the API, as a client
 * would: enrollTotp, then confirmTotp with the code of the step of `now()` (default the wall clock;
 * pass the app's clock when it is frozen). Fails the test when either is refused.
 */
export async function enrollUser(
  t: ApiClient,
  accessToken: string,
  options: { now?: () => number } = {},
): Promise<EnrolledTotp> {
  const now = options.now ?? Date.now;
  const { secret, otpauthUri } = await enrollTotp(t, accessToken);
  const step = stepAt(now());
  const res = await confirmTotpRaw(t, accessToken, totpForStep(secret, step));
  assert.equal(res.body.errors, undefined, `confirmTotp failed: ${JSON.stringify(res.body.errors)}`);
  const recoveryCodes: string[] = res.body.data.confirmTotp;
  assert.equal(recoveryCodes.length, 10);
  const enrolled: EnrolledTotp = {
    secret,
    otpauthUri,
    recoveryCodes,
    lastStep: step,
    nextCode(atMs = now()) {
      const current = stepAt(atMs);
      const next = Math.max(enrolled.lastStep + 1, current);
      if (next > current + 1)
        throw new Error("no unused TOTP step within one step of now: move the app's clock on or use a recovery code");
      enrolled.lastStep = next;
      return totpForStep(secret, next);
    },
  };
  return enrolled;
}

/** verifyMfa with a code; returns the AuthPayload, failing the test when it is refused. */
export async function verifyMfa(t: ApiClient, accessToken: string, code: string): Promise<Record<string, any>> {
  const res = await verifyMfaRaw(t, accessToken, code);
  assert.equal(res.body.errors, undefined, `verifyMfa failed: ${JSON.stringify(res.body.errors)}`);
  return res.body.data.verifyMfa;
}

/** The form a recovery code is shown in: three groups of four base32 characters. */
export const RECOVERY_CODE_SHAPE = /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/;

/** The `detail` of each audit event of `type` for the user, oldest first (coalesced rows flushed first). */
export async function auditDetails(
  t: { app: { audit: { flush(): Promise<void> }; database: { db: any } } },
  userId: string,
  type: string,
): Promise<Array<string | null>> {
  await t.app.audit.flush();
  const rows = await t.app.database.db
    .selectFrom("audit_events")
    .select(["detail"])
    .where("user_id", "=", userId)
    .where("type", "=", type)
    .orderBy("id")
    .execute();
  return rows.map((r: { detail: string | null }) => r.detail);
}

/** Every `gta_mfa_steps_total` sample of the app, by `method/outcome`. */
export async function mfaSteps(t: { app: { metrics: { registry: { metrics(): Promise<string> } } } }) {
  const text = await t.app.metrics.registry.metrics();
  const found: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^gta_mfa_steps_total\{method="([a-z]+)",outcome="([a-z]+)"\} (\d+)$/.exec(line);
    if (match) found[`${match[1]}/${match[2]}`] = Number(match[3]);
  }
  return found;
}

/** The `gta_rate_limit_hits_total` sample of one limit. */
export async function rateLimitedCount(
  t: { app: { metrics: { registry: { metrics(): Promise<string> } } } },
  limit: string,
): Promise<number> {
  const text = await t.app.metrics.registry.metrics();
  const match = new RegExp(`^gta_rate_limit_hits_total\\{limit="${limit}"\\} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Signs an enrolled user in as a client does: login (AAL1, owing the factor), then verifyMfa with
 * the authenticator's next unused code, or, when this step's and the next are used, the last of
 * the recovery codes (taken off the list). Returns the AAL2 session's tokens (fresh, like the login's).
 */
export async function signInAal2(
  t: ApiClient,
  username: string,
  enrolled: EnrolledTotp,
  options: { password?: string } = {},
): Promise<{ accessToken: string; refreshToken: string; userId: string }> {
  const res = await t.gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
    variables: { input: { username, password: options.password ?? PASSWORD } },
  });
  assert.equal(res.body.errors, undefined, `login failed: ${JSON.stringify(res.body.errors)}`);
  let code: string;
  try {
    code = enrolled.nextCode();
  } catch {
    code = enrolled.recoveryCodes.pop()!;
  }
  const payload = await verifyMfa(t, res.body.data.login.accessToken, code);
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id };
}
