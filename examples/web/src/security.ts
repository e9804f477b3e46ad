// Adding second factors from a signed-in tab: an authenticator app (enrollTotp, then confirmTotp
// with a code from the app, which returns the ten recovery codes, shown once) and passkeys
// (@simplewebauthn/browser's startRegistration). Both start from a fresh session (right after a
// sign-in; FRESH_TOKEN_REQUIRED otherwise). They go through auth.ts's send (credentials: "include"),
// so that any cookie the server sets reaches the browser. The first factor makes this session AAL2;
// a refresh then brings an access token that says so.
import { type PublicKeyCredentialCreationOptionsJSON, startRegistration } from "@simplewebauthn/browser";
import type { GraphQLFormattedError } from "graphql";

import { accessToken, refresh, send } from "./auth";
import * as ops from "./gql/graphql";

/** What a call answered: its data, or the server's refusal for the page to explain. */
export type Outcome<T> = { ok: T } | { refused: GraphQLFormattedError | undefined };

/** A new TOTP secret and its otpauth:// URI, to show as a QR code or type into the app. */
export async function enrollTotp(): Promise<Outcome<ops.EnrollTotpMutation["enrollTotp"]>> {
  const { data, errors } = await send(ops.EnrollTotpDocument, {}, await accessToken());
  return data?.enrollTotp ? { ok: data.enrollTotp } : { refused: errors?.[0] };
}

/** Confirms the enrollment with the app's current code; the recovery codes, to be shown once. */
export async function confirmTotp(code: string): Promise<Outcome<string[]>> {
  const { data, errors } = await send(ops.ConfirmTotpDocument, { code }, await accessToken());
  if (!data?.confirmTotp) return { refused: errors?.[0] };
  await refresh();
  return { ok: data.confirmTotp };
}

/** Registers a passkey of this browser under `name`. Throws when the browser made none (cancelled). */
export async function addPasskey(name: string): Promise<Outcome<{ id: string; name: string }>> {
  const token = await accessToken();
  const start = await send(ops.StartPasskeyRegistrationDocument, {}, token);
  if (!start.data) return { refused: start.errors?.[0] };
  const optionsJSON = start.data.startPasskeyRegistration as PublicKeyCredentialCreationOptionsJSON;
  const response = await startRegistration({ optionsJSON });
  const { data, errors } = await send(ops.FinishPasskeyRegistrationDocument, { response, name }, token);
  if (!data?.finishPasskeyRegistration) return { refused: errors?.[0] };
  await refresh();
  return { ok: data.finishPasskeyRegistration };
}
