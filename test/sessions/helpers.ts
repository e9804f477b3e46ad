import assert from "node:assert/strict";

import { type GraphQLResponse, type TestApp, codes } from "../helpers/app.js";

/** The password every user in the session suites starts with. */
export const PASSWORD = "correct horse battery";

/** What a client keeps after register, login or refreshToken. */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
  userId: string;
}

const AUTH_PAYLOAD = "accessToken refreshToken tokenType expiresIn user { id username roles }";

/** The shape of every refresh token: a prefix and 256 bits in base64url. */
export const REFRESH_TOKEN_SHAPE = /^rt_[A-Za-z0-9_-]{43}$/;

/** Registers `username` and returns the raw response (so tests can look at the whole payload). */
export function registerRaw(t: TestApp, username: string, options: { password?: string; userAgent?: string } = {}): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: RegisterInput!) { register(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input: { username, password: options.password ?? PASSWORD } },
    headers: options.userAgent ? { "user-agent": options.userAgent } : {},
  });
}

/** Logs `username` in and returns the raw response. */
export function loginRaw(t: TestApp, username: string, options: { password?: string; userAgent?: string } = {}): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input: { username, password: options.password ?? PASSWORD } },
    headers: options.userAgent ? { "user-agent": options.userAgent } : {},
  });
}

/** Exchanges a refresh token, sent without an Authorization header, and returns the raw response. */
export function refreshRaw(t: TestApp, refreshToken: string): Promise<GraphQLResponse> {
  return t.gql(`mutation($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { ${AUTH_PAYLOAD} } }`, {
    variables: { refreshToken },
  });
}

/** Registers a user and returns its first session's tokens; fails the test when registration fails. */
export async function registerUser(t: TestApp, username: string, options: { password?: string; userAgent?: string } = {}): Promise<Tokens> {
  return tokensFrom(await registerRaw(t, username, options), "register");
}

/** Logs in (a new session) and returns its tokens; fails the test when the login fails. */
export async function login(t: TestApp, username: string, options: { password?: string; userAgent?: string } = {}): Promise<Tokens> {
  return tokensFrom(await loginRaw(t, username, options), "login");
}

/** Rotates a refresh token and returns the new pair; fails the test when it is refused. */
export async function refresh(t: TestApp, refreshToken: string): Promise<Tokens> {
  return tokensFrom(await refreshRaw(t, refreshToken), "refreshToken");
}

function tokensFrom(res: GraphQLResponse, field: string): Tokens {
  assert.equal(res.status, 200);
  assert.equal(res.body.errors, undefined, `${field} failed: ${JSON.stringify(res.body.errors)}`);
  const payload = res.body.data[field];
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id };
}

/** Asks `me` with an access token. */
export function me(t: TestApp, accessToken: string): Promise<GraphQLResponse> {
  return t.gql(`{ me { id } }`, { token: accessToken });
}

/** The payload of a JWT, decoded without verification (the client's view of its own token). */
export function claimsOf(jwt: string): Record<string, any> {
  const payload = jwt.split(".")[1];
  assert.ok(payload, "a JWT has three segments");
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

/** The session id (`sid`) an access token belongs to. */
export function sessionOf(accessToken: string): string {
  return claimsOf(accessToken).sid;
}

/** The access token is accepted: `me` answers with its user. */
export async function assertAccessAccepted(t: TestApp, accessToken: string, userId: string): Promise<void> {
  const res = await me(t, accessToken);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.data, { me: { id: userId } }, `expected the token to work, got ${JSON.stringify(res.body.errors)}`);
}

/** The whole request was refused for its bearer token: HTTP 401 with the RFC 6750 challenge. */
export function assertInvalidToken(res: GraphQLResponse): void {
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
  assert.equal(res.body.data ?? null, null);
}

/** The access token is refused with 401 on `me`. */
export async function assertAccessRefused(t: TestApp, accessToken: string): Promise<void> {
  assertInvalidToken(await me(t, accessToken));
}

/** refreshToken answered UNAUTHENTICATED with HTTP 200 and no tokens. */
export function assertRefreshRefusedResponse(res: GraphQLResponse): void {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
  assert.equal(res.body.data, null);
  assert.equal(res.headers.get("www-authenticate"), null);
}

/** The refresh token is refused. */
export async function assertRefreshRefused(t: TestApp, refreshToken: string): Promise<void> {
  assertRefreshRefusedResponse(await refreshRaw(t, refreshToken));
}

/** Lets the wall clock move on, so rows written next get a later millisecond timestamp. */
export function nextMillisecond(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 3));
}
