// The script of the pages behind the mailed links (link-pages.ts), served as a same-origin file so
// that the pages' CSP needs no inline script. It reads the token from the URL's fragment, which a
// browser never sends to a server, removes it from the address bar, and sends it only when the user
// submits: a mail scanner that fetches the link, or a person who only opens it, uses nothing up.

/** Everything the pages say, by situation; the browser tests compare against these. */
export const LINK_PAGE_MESSAGES = {
  /** No token in the fragment (or one no token looks like), e.g. after a reload. */
  incomplete: "This link is incomplete: open it again from the e-mail, whole. If it still fails, request a new one.",
  /** RESET_TOKEN_INVALID, VERIFICATION_TOKEN_INVALID, or a token the server calls malformed. */
  invalid: "This link has expired or was already used — request a new one.",
  mismatch: "The two passwords differ: type the same new password in both fields.",
  /** RATE_LIMITED; `{seconds}` is the server's `retryAfter`. */
  rateLimited: "Too many attempts from your network. Wait {seconds} seconds, then try again.",
  /** The request never got an answer; the link was not used. */
  network: "The server could not be reached: check your connection and try again. The link still works.",
  /** Any other refusal; `{code}` is the server's code. */
  failed: "The server could not do this right now ({code}). Try again in a moment.",
  mfaRequired:
    "This account has two-step sign-in: enter a code from your authenticator app, or one of your recovery codes.",
  resetDone:
    "Your password is changed, and every other session of your account was signed out. " +
    "Sign in with your new password.",
  /** verifyEmail of a changed address ends the account's sessions: the page cannot tell which case it was. */
  verifyDone:
    "Your e-mail address is verified. You can close this page. " +
    "If it replaced an earlier address, your account was signed out everywhere: sign in again.",
} as const;

/** The longest fragment read, and what a token may look like: a budget for what a link may carry. */
const MAX_FRAGMENT_LENGTH = 1024;
const TOKEN_SHAPE = "^[A-Za-z0-9_.~-]{16,512}$";

/** The page's script: one for both pages, which `<body data-page>` tells apart. */
export const LINK_PAGE_SCRIPT = `"use strict";
(function () {
  const MESSAGES = ${JSON.stringify(LINK_PAGE_MESSAGES)};
  const TOKEN_SHAPE = new RegExp(${JSON.stringify(TOKEN_SHAPE)});
  // Relative, so that the page and the API stay together behind a proxy's path prefix.
  const GRAPHQL_URL = new URL("graphql", window.location.href).href;
  const page = document.body.dataset.page;
  const form = document.getElementById("link-form");
  const submit = form.querySelector("button[type=submit]");
  const outcome = document.getElementById("outcome");

  function readToken() {
    const fragment = window.location.hash.slice(1);
    if (fragment !== "" || window.location.search !== "") {
      // Out of the address bar, the history entry and any bookmark at once.
      window.history.replaceState(null, "", window.location.pathname);
    }
    if (fragment.length > ${MAX_FRAGMENT_LENGTH}) return null;
    const token = new URLSearchParams(fragment).get("token");
    return token !== null && TOKEN_SHAPE.test(token) ? token : null;
  }

  function say(text, kind) {
    outcome.textContent = text;
    outcome.className = "outcome " + kind;
    outcome.hidden = false;
    if (kind !== "progress") outcome.focus();
  }

  function finish(text, kind) {
    form.hidden = true;
    say(text, kind);
  }

  function fieldProblem(input, text) {
    const slot = document.getElementById(input.id + "-problem");
    slot.textContent = text;
    slot.hidden = text === "";
    if (text === "") input.removeAttribute("aria-invalid");
    else input.setAttribute("aria-invalid", "true");
  }

  // One POST of a GraphQL operation, without cookies: the page signs nobody in.
  async function call(query, variables, bearer) {
    const headers = { "content-type": "application/json" };
    if (bearer) headers.authorization = "Bearer " + bearer;
    let response;
    try {
      response = await fetch(GRAPHQL_URL, {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ query: query, variables: variables }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (unreachable) {
      return { network: true };
    }
    try {
      return await response.json();
    } catch (unreadable) {
      return { errors: [{ extensions: { code: "HTTP_" + response.status } }] };
    }
  }

  // Tells the user what the answer's first error means, next to the field it names if any.
  function explainRefusal(body, fields) {
    if (body.network) {
      say(MESSAGES.network, "error");
      return;
    }
    const error = (body.errors && body.errors[0]) || {};
    const extensions = error.extensions || {};
    const code = extensions.code || "UNKNOWN";
    const reason = extensions.reason;
    if (reason === "RESET_TOKEN_INVALID" || reason === "VERIFICATION_TOKEN_INVALID") {
      return finish(MESSAGES.invalid, "error");
    }
    if (code === "RATE_LIMITED") {
      return say(MESSAGES.rateLimited.replace("{seconds}", String(extensions.retryAfter || 60)), "error");
    }
    if (reason === "MFA_REQUIRED" && fields.mfa) {
      fields.mfa.closest(".field").hidden = false;
      fields.mfa.required = true;
      say(MESSAGES.mfaRequired, "error");
      return fields.mfa.focus();
    }
    if (code === "BAD_USER_INPUT" && Array.isArray(extensions.fields)) {
      let shown = false;
      for (const problem of extensions.fields) {
        const name = String(problem.field).split(".").pop();
        const input = name === "newPassword" ? fields.password : name === "mfaCode" ? fields.mfa : undefined;
        if (input) {
          fieldProblem(input, "This " + (input === fields.mfa ? "code " : "password ") + problem.message + ".");
          if (!shown) input.focus();
          shown = true;
        }
      }
      if (shown) {
        outcome.hidden = true;
        return;
      }
      // The token itself was refused as malformed: the link is as good as used.
      return finish(MESSAGES.invalid, "error");
    }
    say(MESSAGES.failed.replace("{code}", code), "error");
  }

  async function resetPassword(token) {
    const fields = {
      password: document.getElementById("new-password"),
      confirm: document.getElementById("confirm-password"),
      mfa: document.getElementById("mfa-code"),
    };
    fieldProblem(fields.password, "");
    fieldProblem(fields.mfa, "");
    if (fields.password.value !== fields.confirm.value) {
      fieldProblem(fields.confirm, MESSAGES.mismatch);
      return fields.confirm.focus();
    }
    fieldProblem(fields.confirm, "");
    const input = { token: token, newPassword: fields.password.value };
    if (fields.mfa.value !== "") input.mfaCode = fields.mfa.value;
    const body = await call(
      "mutation ResetPassword($input: ResetPasswordInput!) { resetPassword(input: $input) { accessToken } }",
      { input: input },
    );
    const payload = body.data && body.data.resetPassword;
    if (!payload) return explainRefusal(body, fields);
    for (const field of [fields.password, fields.confirm, fields.mfa]) field.value = "";
    // The reset opened a session nobody here will use: end it at once and keep nothing.
    await call("mutation EndResetSession { logout }", {}, payload.accessToken);
    finish(MESSAGES.resetDone, "done");
  }

  async function verifyEmail(token) {
    const body = await call("mutation VerifyEmail($token: String!) { verifyEmail(token: $token) }", { token: token });
    if (body.data && body.data.verifyEmail === true) return finish(MESSAGES.verifyDone, "done");
    if (body.data && body.data.verifyEmail === false) return finish(MESSAGES.invalid, "error");
    explainRefusal(body, {});
  }

  const token = readToken();
  if (token === null) return finish(MESSAGES.incomplete, "error");
  form.hidden = false;
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      await (page === "reset-password" ? resetPassword(token) : verifyEmail(token));
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
})();
`;
