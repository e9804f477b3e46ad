// What the e-mail suites share: registering with an address, reading the outbox of the test database
// (the mail a user would receive), and the token of a mailed link.
import assert from "node:assert/strict";

import { codes, type GraphQLResponse, PASSWORD } from "../helpers/api.js";
import type { TestApp } from "../helpers/app.js";

export const AUTH_PAYLOAD = "accessToken refreshToken tokenType expiresIn user { id username email emailVerified }";

export interface OutboxRow {
  id: string;
  status: string;
  recipient: string;
  subject: string;
  text_body: string;
  html_body: string;
}

/** Every row of the outbox, oldest first (optionally only those to `recipient`). */
export async function outbox(t: TestApp, recipient?: string): Promise<OutboxRow[]> {
  const rows = await t.app.database.db
    .selectFrom("mail_outbox")
    .select(["id", "status", "recipient", "subject", "text_body", "html_body", "created_at"])
    .$if(recipient !== undefined, (q) => q.where("recipient", "=", recipient!))
    .orderBy("created_at")
    .orderBy("id")
    .execute();
  return rows;
}

/** The token of the link in a mail's text (the reset and verification links end in `token=<token>`). */
export function tokenIn(row: OutboxRow): string {
  const match = /token=([A-Za-z0-9_%-]+)/.exec(row.text_body);
  assert.ok(match, `no link in the mail "${row.subject}"`);
  return decodeURIComponent(match[1]!);
}

/**
 * What became of a mail, as a user would tell: `mailed` (queued, or already sent: the test app's
 * development sender takes rows within a second) or `suppressed` (never sent).
 */
export function fate(status: string): "mailed" | "suppressed" | "failed" {
  return status === "queued" || status === "sent" ? "mailed" : (status as "suppressed" | "failed");
}

/** The token of the newest mail with `subject` to `recipient`. */
export async function latestToken(t: TestApp, recipient: string, subject: string): Promise<string> {
  const rows = (await outbox(t, recipient)).filter((row) => row.subject === subject && fate(row.status) === "mailed");
  assert.ok(rows.length > 0, `no "${subject}" mail to ${recipient}`);
  return tokenIn(rows[rows.length - 1]!);
}

export const VERIFY_SUBJECT = "Verify your e-mail address";
export const RESET_SUBJECT = "Reset your password";

/** Registers with an address and returns the raw response. */
export function registerWithEmailRaw(
  t: TestApp,
  username: string,
  email: string,
  options: { useCookie?: boolean; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: RegisterInput!) { register(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input: { username, password: PASSWORD, email, useCookie: options.useCookie ?? false } },
    headers: options.headers,
  });
}

/** Registers with an address (unverified); fails the test on any error. */
export async function registerWithEmail(
  t: TestApp,
  username: string,
  email: string,
): Promise<{ accessToken: string; refreshToken: string; userId: string }> {
  const res = await registerWithEmailRaw(t, username, email);
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  const payload = res.body.data.register;
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id };
}

export function verifyEmail(t: TestApp, token: string, accessToken?: string): Promise<GraphQLResponse> {
  return t.gql(`mutation($token: String!) { verifyEmail(token: $token) }`, {
    variables: { token },
    token: accessToken,
  });
}

/** Registers with an address and verifies it through its mailed link. */
export async function registerVerified(
  t: TestApp,
  username: string,
  email: string,
): Promise<{ accessToken: string; refreshToken: string; userId: string }> {
  const user = await registerWithEmail(t, username, email);
  const res = await verifyEmail(t, await latestToken(t, email, VERIFY_SUBJECT));
  assert.deepEqual(res.body, { data: { verifyEmail: true } });
  return user;
}

export function requestReset(t: TestApp, email: string, headers?: Record<string, string>): Promise<GraphQLResponse> {
  return t.gql(`mutation($email: String!) { requestPasswordReset(email: $email) }`, {
    variables: { email },
    headers,
  });
}

export function resetPassword(
  t: TestApp,
  input: { token: string; newPassword: string; useCookie?: boolean },
  headers?: Record<string, string>,
): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input },
    headers,
  });
}

/** The error's code and reason, for one-line assertions. */
export function refusal(res: GraphQLResponse): { codes: string[]; reason: unknown } {
  return { codes: codes(res), reason: res.body.errors?.[0]?.extensions?.reason };
}

/** Counts the rows of a table (for "nothing changed"). */
export async function countRows(t: TestApp, table: "email_tokens" | "mail_outbox" | "sessions"): Promise<number> {
  const row = await t.app.database.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
