// Every way to get tokens, against an account with a second factor. The mutations returning an
// AuthPayload are read from the schema the app serves, and the table below must name exactly
// those: a new one fails the first test until its rows are written. Each row records what a
// client sees: the payload's assurance and mfaRequired, the access token's aal, mfa_pending and amr
// claims, and whether that token is held at the gate (a public query, posts, answers MFA_REQUIRED).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { getNamedType, type GraphQLSchema } from "graphql";

import { latestToken, registerVerified, requestReset, RESET_SUBJECT } from "../email/email-helpers.js";
import { claimsOf, type GraphQLResponse, PASSWORD } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { type EnrolledTotp, enrollUser, MFA_PAYLOAD, verifyMfaRaw } from "../helpers/mfa.js";

/** What a client sees of one path: the payload and its token, or the refusal. */
type Seen =
  | {
      assurance: "AAL1" | "AAL2";
      mfaRequired: boolean;
      aal: "aal1" | "aal2";
      mfaPending: boolean;
      amr: string[];
      /** The reason `{ posts { id } }` is refused with this access token; null when it is served. */
      gate: string | null;
    }
  | { refused: [code: string, reason: string] };

interface Row {
  readonly mutation: string;
  readonly path: string;
  readonly run: (t: TestApp) => Promise<{ res: GraphQLResponse; field: string }>;
  readonly expected: Seen;
}

const AAL1_OWING = {
  assurance: "AAL1",
  mfaRequired: true,
  aal: "aal1",
  mfaPending: true,
  gate: "MFA_REQUIRED",
} as const;
const AAL2_DONE = { assurance: "AAL2", mfaRequired: false, aal: "aal2", mfaPending: false, gate: null } as const;

let accounts = 0;

/** A new account with a verified address and a confirmed TOTP (enrolled through the API). */
async function enrolled(t: TestApp): Promise<{ username: string; email: string; totp: EnrolledTotp }> {
  const username = `paths-${++accounts}`;
  const email = `${username}@example.com`;
  const user = await registerVerified(t, username, email);
  return { username, email, totp: await enrollUser(t, user.accessToken) };
}

function login(t: TestApp, username: string, useCookie = false): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${MFA_PAYLOAD} } }`, {
    variables: { input: { username, password: PASSWORD, useCookie } },
  });
}

function refresh(t: TestApp, refreshToken: string): Promise<GraphQLResponse> {
  return t.gql(`mutation($rt: String) { refreshToken(refreshToken: $rt) { ${MFA_PAYLOAD} } }`, {
    variables: { rt: refreshToken },
  });
}

function resetPassword(t: TestApp, token: string, mfaCode?: string): Promise<GraphQLResponse> {
  return t.gql(`mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { ${MFA_PAYLOAD} } }`, {
    variables: { input: { token, newPassword: "a reset passphrase", ...(mfaCode ? { mfaCode } : {}) } },
  });
}

/** The login of an enrolled account, and verifyMfa on it with a TOTP code. */
async function verified(t: TestApp) {
  const account = await enrolled(t);
  const signedIn = (await login(t, account.username)).body.data.login;
  const res = await verifyMfaRaw(t, signedIn.accessToken, account.totp.nextCode());
  return { account, signedIn, res };
}

async function resetLink(t: TestApp, email: string): Promise<string> {
  await requestReset(t, email);
  return latestToken(t, email, RESET_SUBJECT);
}

const ROWS: readonly Row[] = [
  {
    mutation: "register",
    path: "register: a new account has no second factor yet",
    run: async (t) => ({
      res: await t.gql(`mutation($input: RegisterInput!) { register(input: $input) { ${MFA_PAYLOAD} } }`, {
        variables: { input: { username: `paths-new-${++accounts}`, password: PASSWORD } },
      }),
      field: "register",
    }),
    expected: { assurance: "AAL1", mfaRequired: false, aal: "aal1", mfaPending: false, amr: ["pwd"], gate: null },
  },
  {
    mutation: "login",
    path: "login with the password",
    run: async (t) => ({ res: await login(t, (await enrolled(t)).username), field: "login" }),
    expected: { ...AAL1_OWING, amr: ["pwd"] },
  },
  {
    mutation: "login",
    path: "login with the password in cookie mode",
    run: async (t) => ({ res: await login(t, (await enrolled(t)).username, true), field: "login" }),
    expected: { ...AAL1_OWING, amr: ["pwd"] },
  },
  {
    mutation: "refreshToken",
    path: "refreshToken of a session that owes the factor: never raised",
    run: async (t) => {
      const signedIn = (await login(t, (await enrolled(t)).username)).body.data.login;
      return { res: await refresh(t, signedIn.refreshToken), field: "refreshToken" };
    },
    expected: { ...AAL1_OWING, amr: ["pwd"] },
  },
  {
    mutation: "verifyMfa",
    path: "verifyMfa with a TOTP code",
    run: async (t) => ({ res: (await verified(t)).res, field: "verifyMfa" }),
    expected: { ...AAL2_DONE, amr: ["pwd", "otp"] },
  },
  {
    mutation: "verifyMfa",
    path: "verifyMfa with a recovery code",
    run: async (t) => {
      const account = await enrolled(t);
      const signedIn = (await login(t, account.username)).body.data.login;
      return { res: await verifyMfaRaw(t, signedIn.accessToken, account.totp.recoveryCodes[0]!), field: "verifyMfa" };
    },
    expected: { ...AAL2_DONE, amr: ["pwd", "recovery"] },
  },
  {
    mutation: "refreshToken",
    path: "refreshToken of the session after verifyMfa: AAL2 kept",
    run: async (t) => {
      const { res } = await verified(t);
      return { res: await refresh(t, res.body.data.verifyMfa.refreshToken), field: "refreshToken" };
    },
    expected: { ...AAL2_DONE, amr: ["pwd", "otp"] },
  },
  {
    mutation: "refreshToken",
    path: "refreshToken with the login's refresh token after verifyMfa: spent, never AAL2",
    run: async (t) => {
      const { signedIn } = await verified(t);
      return { res: await refresh(t, signedIn.refreshToken), field: "refreshToken" };
    },
    expected: { refused: ["UNAUTHENTICATED", "REFRESH_TOKEN_INVALID"] },
  },
  {
    mutation: "resetPassword",
    path: "resetPassword without mfaCode",
    run: async (t) => ({
      res: await resetPassword(t, await resetLink(t, (await enrolled(t)).email)),
      field: "resetPassword",
    }),
    expected: { refused: ["FORBIDDEN", "MFA_REQUIRED"] },
  },
  {
    mutation: "resetPassword",
    path: "resetPassword with a TOTP code as mfaCode",
    run: async (t) => {
      const account = await enrolled(t);
      const token = await resetLink(t, account.email);
      return { res: await resetPassword(t, token, account.totp.nextCode()), field: "resetPassword" };
    },
    expected: { ...AAL2_DONE, amr: ["reset", "otp"] },
  },
];

/** The Mutation fields whose type is AuthPayload. */
function authPayloadMutations(schema: GraphQLSchema): string[] {
  const fields = Object.values(schema.getMutationType()?.getFields() ?? {});
  return fields.filter((field) => getNamedType(field.type).name === "AuthPayload").map((field) => field.name);
}

async function seen(t: TestApp, res: GraphQLResponse, field: string): Promise<Seen> {
  const error = res.body.errors?.[0];
  if (error) {
    assert.equal(res.body.data ?? null, null);
    return { refused: [error.extensions?.code, error.extensions?.reason] };
  }
  const payload = res.body.data[field];
  const claims = claimsOf(payload.accessToken);
  const posts = await t.gql(`{ posts(first: 1) { id } }`, { token: payload.accessToken });
  return {
    assurance: payload.assurance,
    mfaRequired: payload.mfaRequired,
    aal: claims.aal,
    mfaPending: claims.mfa_pending === true,
    amr: claims.amr,
    gate: posts.body.errors?.[0]?.extensions?.reason ?? null,
  };
}

for (const kind of DATABASES) {
  describe(`every token-minting mutation against an account with a second factor (${kind})`, () => {
    const t = useTestApp(kind);

    it("has a row for every mutation returning AuthPayload, and only for those", () => {
      const inSchema = authPayloadMutations(t.app.schema).sort();
      const inTable = [...new Set(ROWS.map((row) => row.mutation))].sort();
      assert.deepEqual(inTable, inSchema, "write rows for the new AuthPayload mutations in ROWS");
    });

    for (const row of ROWS) {
      it(`${row.path}: ${JSON.stringify(row.expected)}`, async () => {
        const { res, field } = await row.run(t);
        assert.equal(res.status, 200);
        assert.deepEqual(await seen(t, res, field), row.expected);
      });
    }
  });
}
