// The bench's requests: its queries, the check every answer gets, autocannon runs and their summary.
import autocannon from "autocannon";

export const PASSWORD = "bench password 1234";
export const ME = "{ me { id } }";
export const ME_POSTS = "{ me { id username posts { id } } }";
export const TYPENAME = "{ __typename }";
export const LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }";

const isData = (body) => body.startsWith('{"data":{') && !body.includes('"errors"');

/** Whether a response body is the expected answer, per query. */
export const checks = {
  typename: (body) => isData(body) && body.includes('"__typename":"Query"'),
  me: (body) => isData(body) && body.includes('"me":{"id":"'),
  mePosts: (body) => isData(body) && body.includes('"posts":[{"id":"'),
  login: (body) => isData(body) && body.includes('"accessToken":"'),
};

export function graphqlBody(query, variables) {
  return JSON.stringify(variables ? { query, variables } : { query });
}

/** Starts an autocannon run; `done` resolves with its result, `stop()` ends it early. */
export function startLoad({
  url,
  query,
  token,
  requests,
  connections,
  duration,
  overallRate,
  timeout = 10,
  verifyBody,
}) {
  let instance;
  const done = new Promise((resolve, reject) => {
    instance = autocannon(
      {
        url,
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: query ? graphqlBody(query) : undefined,
        requests,
        connections,
        duration,
        overallRate,
        timeout,
        verifyBody,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
  return { done, stop: () => instance.stop() };
}

/** An autocannon result as the table keeps it: `{ rps, p50, p99, errors, requests }`. */
export function summarise(result) {
  // A failed request: a socket error or timeout, or a response that was not 2xx or whose body was
  // not the expected answer (a non-2xx body fails the check too, so the larger of the two counts).
  const failed = result.errors + Math.max(result.non2xx, result.mismatches);
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: failed,
    requests: result.requests.total,
  };
}

/** One login request per user, for autocannon to send in turn. */
export function loginRequests(url, usernames) {
  return usernames.map((username) => ({
    method: "POST",
    path: new URL(url).pathname,
    headers: { "content-type": "application/json" },
    body: graphqlBody(LOGIN, { input: { username, password: PASSWORD } }),
  }));
}
