// Calling the API as a client does: GraphQL over HTTP, sign-up and sign-in with their tokens, the
// claims a client can read from its own token, and the assertions the suites share.
import assert from "node:assert/strict";

import { INVALID_TOKEN_MESSAGES } from "../../src/errors.js";
import { payloadOf } from "./jwt.js";

export interface GraphQLResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T | null; errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, any> }> };
}

export interface GqlOptions {
  variables?: Record<string, unknown>;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  headers?: Record<string, string>;
}

/** What the helpers below need of an app: a GraphQL client (a TestApp is one). */
export interface ApiClient {
  gql<T = any>(query: string, options?: GqlOptions): Promise<GraphQLResponse<T>>;
}

/** POSTs a GraphQL operation to `url` over real HTTP; the response body must be JSON. */
export function gql<T = any>(url: string | URL, query: string, options: GqlOptions = {}): Promise<GraphQLResponse<T>> {
  return postBody<T>(
    url,
    { query, variables: options.variables },
    { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
  );
}

/** POSTs any JSON request body with exactly the headers given (no Authorization added) and reads a GraphQL response; the response body must be JSON. */
export async function postBody<T = any>(
  url: string | URL,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** The `extensions.code` of each error, in order. */
export function codes(response: GraphQLResponse): string[] {
  return (response.body.errors ?? []).map((e) => e.extensions?.code);
}

/** The password every test user starts with unless a test says otherwise. */
export const PASSWORD = "correct horse battery";

/** What a client keeps after register, login or refreshToken. */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
  userId: string;
}

/** What register, login and refreshToken ask for. */
export const AUTH_PAYLOAD = "accessToken refreshToken tokenType expiresIn user { id username roles }";

/** The shape of every refresh token: a prefix and 256 bits in base64url. */
export const REFRESH_TOKEN_SHAPE = /^rt_[A-Za-z0-9_-]{43}$/;

interface SignInOptions {
  password?: string;
  userAgent?: string;
}

/** Registers `username` and returns the raw response (so tests can look at the whole payload). */
export function registerRaw(t: ApiClient, username: string, options: SignInOptions = {}): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: RegisterInput!) { register(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input: { username, password: options.password ?? PASSWORD } },
    headers: options.userAgent ? { "user-agent": options.userAgent } : {},
  });
}

/** Logs `username` in and returns the raw response. */
export function loginRaw(t: ApiClient, username: string, options: SignInOptions = {}): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${AUTH_PAYLOAD} } }`, {
    variables: { input: { username, password: options.password ?? PASSWORD } },
    headers: options.userAgent ? { "user-agent": options.userAgent } : {},
  });
}

/** Exchanges a refresh token, sent without an Authorization header, and returns the raw response. */
export function refreshRaw(t: ApiClient, refreshToken: string): Promise<GraphQLResponse> {
  return t.gql(`mutation($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { ${AUTH_PAYLOAD} } }`, {
    variables: { refreshToken },
  });
}

/** Registers a user and returns its first session's tokens; fails the test when registration fails. */
export async function registerUser(t: ApiClient, username: string, options: SignInOptions = {}): Promise<Tokens> {
  return tokensFrom(await registerRaw(t, username, options), "register");
}

/** Logs in (a new session) and returns its tokens; fails the test when the login fails. */
export async function login(t: ApiClient, username: string, options: SignInOptions = {}): Promise<Tokens> {
  return tokensFrom(await loginRaw(t, username, options), "login");
}

/** Rotates a refresh token and returns the new pair; fails the test when it is refused. */
export async function refresh(t: ApiClient, refreshToken: string): Promise<Tokens> {
  return tokensFrom(await refreshRaw(t, refreshToken), "refreshToken");
}

function tokensFrom(res: GraphQLResponse, field: string): Tokens {
  assert.equal(res.status, 200);
  assert.equal(res.body.errors, undefined, `${field} failed: ${JSON.stringify(res.body.errors)}`);
  const payload = res.body.data[field];
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id };
}

/** Asks `me` with an access token. */
export function me(t: ApiClient, accessToken: string): Promise<GraphQLResponse> {
  return t.gql(`{ me { id } }`, { token: accessToken });
}

/** Every stored username, in sign-up order, as an admin sees them; fails the test on any error. */
export async function listUsernames(t: ApiClient, adminToken: string): Promise<string[]> {
  const res = await t.gql(`{ users { username } }`, { token: adminToken });
  if (res.status !== 200 || res.body.errors) throw new Error(`users query failed: ${JSON.stringify(res.body)}`);
  return res.body.data.users.map((u: { username: string }) => u.username);
}

/** The payload of a JWT, decoded without verification (the client's view of its own token). */
export function claimsOf(jwt: string): Record<string, any> {
  assert.ok(jwt.split(".")[1], "a JWT has three segments");
  return payloadOf(jwt);
}

/** The session id (`sid`) an access token belongs to. */
export function sessionOf(accessToken: string): string {
  return claimsOf(accessToken).sid;
}

/** The access token is accepted: `me` answers with its user. */
export async function assertAccessAccepted(t: ApiClient, accessToken: string, userId: string): Promise<void> {
  const res = await me(t, accessToken);
  assert.equal(res.status, 200);
  assert.deepEqual(
    res.body.data,
    { me: { id: userId } },
    `expected the token to work, got ${JSON.stringify(res.body.errors)}`,
  );
}

/**
 * The whole request was refused for its bearer token: HTTP 401 with the RFC 6750 challenge, one
 * UNAUTHENTICATED error whose reason the challenge repeats, and no data. `reason` pins the reason;
 * `exact` also holds it to the full contract: the reason's fixed message (or `message`, where the
 * header's shape earns a hint), and no `data` key at all (not even null).
 */
export function assertInvalidToken(
  res: GraphQLResponse,
  options: { exact?: boolean; reason?: string; message?: string } = {},
): void {
  assert.equal(res.status, 401);
  const reason = res.body.errors?.[0]?.extensions?.reason;
  assert.ok(Object.hasOwn(INVALID_TOKEN_MESSAGES, reason), `a 401's reason, got ${reason}`);
  if (options.reason !== undefined) assert.equal(reason, options.reason);
  assert.equal(res.headers.get("www-authenticate"), `Bearer error="invalid_token", error_description="${reason}"`);
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
  assert.equal(res.body.data ?? null, null);
  if (options.exact) {
    const expected = options.message ?? INVALID_TOKEN_MESSAGES[reason as keyof typeof INVALID_TOKEN_MESSAGES];
    assert.equal(res.body.errors?.[0]?.message, expected);
    assert.equal("data" in res.body, false, "a refused request has no data, not even null");
  }
}

/** The access token is refused with 401 on `me`. */
export async function assertAccessRefused(t: ApiClient, accessToken: string): Promise<void> {
  assertInvalidToken(await me(t, accessToken));
}

/** refreshToken answered UNAUTHENTICATED with HTTP 200 and no tokens (by default, reason REFRESH_TOKEN_INVALID). */
export function assertRefreshRefusedResponse(res: GraphQLResponse, reason = "REFRESH_TOKEN_INVALID"): void {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
  assert.equal(res.body.errors?.[0]?.extensions?.reason, reason);
  assert.equal(res.body.data, null);
  assert.equal(res.headers.get("www-authenticate"), null);
}

/** The refresh token is refused. */
export async function assertRefreshRefused(t: ApiClient, refreshToken: string): Promise<void> {
  assertRefreshRefusedResponse(await refreshRaw(t, refreshToken));
}

/** The `reason` the app logged as "access token rejected" for the request that got `res`, if any. */
export function loggedRejection(t: { logs: readonly string[] }, res: { headers: Headers }): string | undefined {
  const requestId = res.headers.get("x-request-id");
  if (!requestId) return undefined;
  for (const line of t.logs) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.reqId === requestId && entry.msg === "access token rejected") return entry.reason as string;
  }
  return undefined;
}

/** Lets the wall clock move on, so rows written next get a later millisecond timestamp. */
export function nextMillisecond(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 3));
}
