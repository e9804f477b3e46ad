// What the app says for each refusal, by `extensions.reason` or `extensions.code` (docs/errors.md).
// TOKEN_EXPIRED has no message: auth.ts refreshes and retries without the user noticing.
import { CombinedGraphQLErrors, type ErrorLike } from "@apollo/client";
import type { GraphQLFormattedError } from "graphql";

const MESSAGES: Record<string, string> = {
  SIGNED_OUT: "You signed out.",
  SESSION_ENDED:
    "Your session ended: it was signed out on another device, revoked, or your password changed. Sign in again.",
  REFRESH_TOKEN_INVALID: "Your session expired or was signed out elsewhere. Sign in again.",
  REFRESH_TOKEN_MISSING:
    "You were signed out because the sign-in cookie did not reach the server. The page and the API must be " +
    'on the same site (both on localhost, or both on 127.0.0.1), and sign-in and refresh must be sent with credentials: "include".',
  TOKEN_INVALID: "The server no longer accepts this sign-in. Sign in again.",
  ACCOUNT_DISABLED: "This account is disabled. Ask an administrator.",
  BAD_CREDENTIALS: "Wrong username or password.",
  NOT_SIGNED_IN: "Sign in first.",
  ORIGIN: "The API does not accept sign-ins from this page: add its origin to the server's CORS_ORIGINS.",
  NETWORK: "The server cannot be reached. Check that it is running, then reload.",
  MFA_REQUIRED: "Enter a code from your authenticator app (or a recovery code), or use a passkey, to go on.",
  MFA_ENROLLMENT_REQUIRED: "This needs a second factor: set up an authenticator app or a passkey first.",
  FRESH_TOKEN_REQUIRED: "For this, sign in again with your password first.",
  PASSKEY_CANCELLED: "No passkey was used: the browser's prompt was cancelled or timed out.",
};

/** The message for a reason this app signs out with (auth.ts's Session.reason). */
export function signedOutMessage(reason: string): string {
  return MESSAGES[reason] ?? `You were signed out (${reason}).`;
}

/** The message for one GraphQL error: its reason's, its code's, or the server's own words. */
export function explain(error: GraphQLFormattedError | undefined): string {
  const { code, reason, retryAfter, fields } = error?.extensions ?? {};
  if (code === "RATE_LIMITED") return `Too many attempts. Try again in ${Number(retryAfter)} s.`;
  if (code === "SERVICE_UNAVAILABLE") return `The server is busy. Try again in ${Number(retryAfter ?? 5)} s.`;
  if (code === "BAD_USER_INPUT" && Array.isArray(fields))
    return fields.map((field: { message: string }) => field.message).join(" ");
  return (
    (typeof reason === "string" && MESSAGES[reason]) ||
    (typeof code === "string" && MESSAGES[code]) ||
    error?.message ||
    "Something went wrong."
  );
}

/** The message for an error Apollo Client reports: the server's refusal, or a failed connection. */
export function explainApollo(error: ErrorLike): string {
  return CombinedGraphQLErrors.is(error) ? explain(error.errors[0]) : (MESSAGES.NETWORK ?? error.message);
}
