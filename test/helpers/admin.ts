// An app with an ADMIN from the ADMIN_USERNAME bootstrap, for suites that need one to act.
import { login } from "./api.js";
import type { StartOptions, TestApp } from "./app.js";

export const ROOT = { username: "root", password: "root password 1" };

/** StartOptions whose app creates ROOT as an ADMIN at start, with any further `env`. */
export function withRoot(env: Record<string, string> = {}): StartOptions {
  return { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password, ...env } };
}

/** A fresh access token of ROOT. */
export async function rootToken(t: TestApp): Promise<string> {
  return (await login(t, ROOT.username, { password: ROOT.password })).accessToken;
}
