// Raw HTTP for tests: requests sent exactly as given and responses read whole, whatever their
// status, headers or content type (bodies that are not JSON included).

/** An HTTP response read whole, whatever its content type. */
export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json: any;
}

/** Sends a request exactly as given: no JSON encoding and no headers beyond those in `init`. */
export async function send(url: string | URL, init: RequestInit = {}): Promise<RawResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** POSTs a JSON body (any value, or a string sent as is) with extra headers. */
export function postJson(url: string | URL, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return send(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** POSTs a GraphQL request body (`query`, `variables` and whatever else is given), with `token` as a Bearer token. */
export function postGraphQL(url: string | URL, body: Record<string, unknown>, token?: string): Promise<RawResponse> {
  return postJson(url, body, token ? { authorization: `Bearer ${token}` } : {});
}

/** The `extensions.code` of each error of a GraphQL response body, in order (the body need not be JSON). */
export function errorCodes(res: RawResponse): unknown[] {
  const errors = res.json?.errors;
  return Array.isArray(errors) ? errors.map((e: { extensions?: { code?: unknown } }) => e?.extensions?.code) : [];
}

/** The origin (`http://127.0.0.1:port`) of a GraphQL endpoint URL, for the app's other routes. */
export function originOf(graphqlUrl: string): string {
  return graphqlUrl.replace(/\/graphql$/, "");
}
