// The multi-factor views: the challenge step after a password (a code, a recovery code, or a
// passkey), and, signed in, the account's second factors: an authenticator app (the secret and its
// otpauth:// URI, confirmed with a code, then the recovery codes shown once) and passkeys.
import { useQuery } from "@apollo/client/react";
import { type FormEvent, useState } from "react";

import { passkeySignIn, signOut, verifyCode } from "./auth";
import { SecurityDocument } from "./gql/graphql";
import { explain, explainApollo } from "./messages";
import { addPasskey, confirmTotp, enrollTotp } from "./security";

/** Runs a step that may throw because the browser made no passkey; the message to show, if any. */
async function withPasskey(step: () => Promise<{ message?: string } | undefined>): Promise<string | undefined> {
  try {
    return (await step())?.message;
  } catch {
    return explain({ message: "", extensions: { reason: "PASSKEY_CANCELLED" } });
  }
}

export function SecondFactorPrompt() {
  const [code, setCode] = useState("");
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async (step: () => Promise<string | undefined>) => {
    setProblem(undefined);
    setBusy(true);
    try {
      setProblem(await step());
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      const refusal = await verifyCode(code.trim());
      setCode("");
      return refusal && explain(refusal);
    });
  };
  const passkey = () =>
    void run(() =>
      withPasskey(async () => {
        const refusal = await passkeySignIn({ secondFactor: true });
        return refusal && { message: explain(refusal) };
      }),
    );
  return (
    <form id="second-factor" onSubmit={submit}>
      <h1>Two-step sign-in</h1>
      <p>Your password was right. Enter the code your authenticator app shows now, or one of your recovery codes.</p>
      <label>
        Code{" "}
        <input
          id="mfa-code"
          autoComplete="one-time-code"
          spellCheck={false}
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
      </label>
      <button id="verify-code" type="submit" disabled={busy || code.trim() === ""}>
        Verify
      </button>
      <button id="use-passkey" type="button" disabled={busy} onClick={passkey}>
        Use a passkey
      </button>
      <button id="cancel-sign-in" type="button" onClick={() => void signOut()}>
        Cancel
      </button>
      {problem && <p role="alert">{problem}</p>}
    </form>
  );
}

export function SecuritySettings({ assurance }: { assurance?: string }) {
  const security = useQuery(SecurityDocument, { fetchPolicy: "network-only" });
  const me = security.data?.me;
  return (
    <section id="security">
      <h2>Sign-in security</h2>
      <p id="mfa-state" data-enabled={me ? String(me.mfaEnabled) : undefined} data-assurance={assurance}>
        {me &&
          (me.mfaEnabled
            ? `Two-step sign-in is on (${me.recoveryCodesRemaining ?? 0} recovery codes left).`
            : "Two-step sign-in is off.")}{" "}
        {assurance && `This session: ${assurance}.`}
      </p>
      {security.error && <p role="alert">{explainApollo(security.error)}</p>}
      <TotpEnrollment done={() => void security.refetch()} />
      <h3>Passkeys</h3>
      <ul id="passkeys">
        {security.data?.passkeys.map((passkey) => (
          <li key={passkey.id} data-id={passkey.id}>
            {passkey.name}
          </li>
        ))}
      </ul>
      <AddPasskey done={() => void security.refetch()} />
    </section>
  );
}

function TotpEnrollment({ done }: { done: () => void }) {
  const [enrollment, setEnrollment] = useState<{ secret: string; otpauthUri: string }>();
  const [code, setCode] = useState("");
  const [recoveryCodes, setRecoveryCodes] = useState<string[]>();
  const [problem, setProblem] = useState<string>();
  const start = async () => {
    setProblem(undefined);
    const outcome = await enrollTotp();
    if ("ok" in outcome) setEnrollment(outcome.ok);
    else setProblem(explain(outcome.refused));
  };
  const confirm = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    const outcome = await confirmTotp(code.trim());
    setCode("");
    if ("refused" in outcome) return setProblem(explain(outcome.refused));
    setEnrollment(undefined);
    setRecoveryCodes(outcome.ok);
    done();
  };
  if (recoveryCodes)
    return (
      <div>
        <p>
          Your authenticator app is set up. Keep these recovery codes somewhere safe: each works once, and this is the
          only time they are shown.
        </p>
        <ol id="recovery-codes">
          {recoveryCodes.map((recoveryCode) => (
            <li key={recoveryCode}>{recoveryCode}</li>
          ))}
        </ol>
        <button id="recovery-codes-saved" onClick={() => setRecoveryCodes(undefined)}>
          I have saved them
        </button>
      </div>
    );
  return (
    <div>
      {!enrollment ? (
        <button id="enroll-totp" onClick={() => void start()}>
          Set up an authenticator app
        </button>
      ) : (
        <form onSubmit={(event) => void confirm(event)}>
          <p>
            Scan this address as a QR code in your authenticator app, or type the secret in:{" "}
            <code id="totp-uri">{enrollment.otpauthUri}</code> <code id="totp-secret">{enrollment.secret}</code>
          </p>
          <label>
            The code the app shows{" "}
            <input id="totp-code" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} />
          </label>
          <button id="confirm-totp" type="submit">
            Turn on
          </button>
        </form>
      )}
      {problem && <p role="alert">{problem}</p>}
    </div>
  );
}

function AddPasskey({ done }: { done: () => void }) {
  const [name, setName] = useState("This browser");
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const add = async () => {
    setProblem(undefined);
    setBusy(true);
    try {
      const message = await withPasskey(async () => {
        const outcome = await addPasskey(name);
        return "refused" in outcome ? { message: explain(outcome.refused) } : undefined;
      });
      setProblem(message);
      if (!message) done();
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <label>
        Name <input id="passkey-name" value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <button id="add-passkey" disabled={busy} onClick={() => void add()}>
        Add a passkey
      </button>
      {problem && <p role="alert">{problem}</p>}
    </div>
  );
}
