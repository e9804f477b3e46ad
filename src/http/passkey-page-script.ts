// The script of the development passkey page (passkey-page.ts), served as a same-origin file so that
// the page's CSP needs no inline script. It signs in with a password (tokens in this page's memory
// only, body mode, no cookie), registers a passkey with @simplewebauthn/browser's startRegistration,
// signs in with one by startAuthentication (discoverable, or by username), and proves a passkey as
// the second factor of a password session that owes it (verifyMfaWithPasskey). It is the recipe of
// docs/multi-factor.md in plain JavaScript, and what test/browser/passkey-page.test.ts drives with
// Chromium's virtual authenticator.

/** Everything the page says, by situation; the browser test compares against these. */
export const PASSKEY_PAGE_MESSAGES = {
  signedOut: "Not signed in.",
  /** `{user}`, `{assurance}`, `{methods}`: from me and the access token. */
  signedIn: "Signed in as {user} ({assurance}, {methods}).",
  mfaRequired: "Signed in with a password: this account has a second factor, prove it to go on.",
  /** `{name}`: the passkey's name. */
  registered: "Passkey “{name}” added.",
  cancelled: "The browser created or used no passkey (cancelled, timed out, or none for this site).",
  network: "The server could not be reached.",
  /** `{code}`, `{reason}`: the server's error; `{message}` its words. */
  refused: "Refused: {code} {reason} {message}",
} as const;

/** The page's script; `SimpleWebAuthnBrowser` is the global the library's UMD bundle defines. */
export const PASSKEY_PAGE_SCRIPT = `"use strict";
(function () {
  const MESSAGES = ${JSON.stringify(PASSKEY_PAGE_MESSAGES)};
  const GRAPHQL_URL = new URL("graphql", window.location.href).href;
  const webauthn = window.SimpleWebAuthnBrowser;
  const status = document.getElementById("status");
  const outcome = document.getElementById("outcome");
  const byId = (id) => document.getElementById(id);
  let tokens = null;

  function say(text, kind) {
    outcome.textContent = text;
    outcome.className = "outcome " + kind;
    outcome.dataset.kind = kind;
    outcome.hidden = false;
  }

  // One POST of a GraphQL operation, without cookies: tokens stay in this page's memory. \`bare\`:
  // without the access token.
  async function call(query, variables, bare) {
    const headers = { "content-type": "application/json" };
    if (tokens && !bare) headers.authorization = "Bearer " + tokens.accessToken;
    try {
      const response = await fetch(GRAPHQL_URL, {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ query: query, variables: variables || {} }),
        credentials: "omit",
        cache: "no-store",
      });
      return await response.json();
    } catch (unreachable) {
      return { network: true };
    }
  }

  // The answer's data field, or undefined after saying why there is none.
  function dataOf(body, field) {
    if (body.data && body.data[field] !== undefined && body.data[field] !== null) return body.data[field];
    if (body.network) return say(MESSAGES.network, "error");
    const error = (body.errors && body.errors[0]) || {};
    const ext = error.extensions || {};
    say(
      MESSAGES.refused
        .replace("{code}", ext.code || "UNKNOWN")
        .replace("{reason}", ext.reason || "")
        .replace("{message}", error.message || ""),
      "error",
    );
  }

  function claims(accessToken) {
    const part = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  }

  // Keeps a new pair and shows who is signed in, at which assurance, or that a factor is owed.
  async function keep(payload) {
    tokens = payload;
    const claim = claims(payload.accessToken);
    byId("second-factor").hidden = !payload.mfaRequired;
    byId("signed-in").hidden = payload.mfaRequired;
    status.dataset.assurance = payload.assurance;
    status.dataset.mfaRequired = String(payload.mfaRequired);
    status.dataset.amr = (claim.amr || []).join(" ");
    if (payload.mfaRequired) {
      status.textContent = MESSAGES.mfaRequired;
      return;
    }
    const me = dataOf(await call("query Me { me { username } }"), "me");
    if (!me) return;
    status.dataset.user = me.username;
    status.textContent = MESSAGES.signedIn
      .replace("{user}", me.username)
      .replace("{assurance}", payload.assurance)
      .replace("{methods}", status.dataset.amr);
  }

  const AUTH = "{ accessToken refreshToken assurance mfaRequired }";

  async function signInWithPassword() {
    const input = { username: byId("username").value, password: byId("password").value };
    const body = await call("mutation Login($input: LoginInput!) { login(input: $input) " + AUTH + " }", {
      input: input,
    });
    const payload = dataOf(body, "login");
    if (payload) await keep(payload);
  }

  // The browser's half of a ceremony: undefined (and a message) when it made nothing.
  async function ceremony(run) {
    try {
      return await run();
    } catch (refused) {
      say(MESSAGES.cancelled + " (" + (refused && refused.name) + ")", "error");
    }
  }

  async function addPasskey() {
    const options = dataOf(await call("mutation { startPasskeyRegistration }"), "startPasskeyRegistration");
    if (!options) return;
    const response = await ceremony(() => webauthn.startRegistration({ optionsJSON: options }));
    if (!response) return;
    const name = byId("passkey-name").value || "This browser";
    const body = await call(
      "mutation Finish($response: JSON!, $name: String!) { finishPasskeyRegistration(response: $response, name: $name) { id name } }",
      { response: response, name: name },
    );
    const passkey = dataOf(body, "finishPasskeyRegistration");
    if (passkey) say(MESSAGES.registered.replace("{name}", passkey.name), "done");
  }

  // Discoverable (no username: the authenticator offers its passkeys for this site) or by username.
  async function signInWithPasskey(username) {
    tokens = null;
    const start = await call("mutation Start($username: String) { startPasskeySignIn(username: $username) }", {
      username: username || null,
    });
    const options = dataOf(start, "startPasskeySignIn");
    if (!options) return;
    const response = await ceremony(() => webauthn.startAuthentication({ optionsJSON: options }));
    if (!response) return;
    const body = await call(
      "mutation Finish($response: JSON!) { finishPasskeySignIn(response: $response) " + AUTH + " }",
      { response: response },
    );
    const payload = dataOf(body, "finishPasskeySignIn");
    if (payload) await keep(payload);
  }

  // The second factor of a password session that owes it: the challenge is asked for without that
  // session's token (which may call only the fields that prove the factor), for this username's
  // passkeys; the answer goes to verifyMfaWithPasskey with the token.
  async function secondFactor() {
    const start = await call(
      "mutation Start($username: String) { startPasskeySignIn(username: $username) }",
      { username: byId("username").value },
      true,
    );
    const options = dataOf(start, "startPasskeySignIn");
    if (!options) return;
    const response = await ceremony(() => webauthn.startAuthentication({ optionsJSON: options }));
    if (!response) return;
    const body = await call(
      "mutation Verify($response: JSON!) { verifyMfaWithPasskey(response: $response) " + AUTH + " }",
      { response: response },
    );
    const payload = dataOf(body, "verifyMfaWithPasskey");
    if (payload) await keep(payload);
  }

  async function signOut() {
    if (tokens) await call("mutation { logout }");
    tokens = null;
    for (const key of ["assurance", "mfaRequired", "amr", "user"]) delete status.dataset[key];
    status.textContent = MESSAGES.signedOut;
    byId("signed-in").hidden = true;
    byId("second-factor").hidden = true;
  }

  // Each button runs one action at a time; the outcome of the last one stays shown.
  function on(id, action) {
    byId(id).addEventListener("click", async function (event) {
      event.preventDefault();
      const button = event.currentTarget;
      if (button.disabled) return;
      button.disabled = true;
      outcome.hidden = true;
      try {
        await action();
      } finally {
        button.disabled = false;
      }
    });
  }

  on("password-sign-in", signInWithPassword);
  on("add-passkey", addPasskey);
  on("passkey-sign-in", () => signInWithPasskey());
  on("passkey-sign-in-by-name", () => signInWithPasskey(byId("username").value));
  on("verify-with-passkey", secondFactor);
  on("sign-out", signOut);
  status.textContent = MESSAGES.signedOut;
  document.body.dataset.ready = webauthn && webauthn.browserSupportsWebAuthn() ? "true" : "unsupported";
})();
`;
