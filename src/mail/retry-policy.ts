// When a mail that failed is tried again, when it is given up, and what of a failure may be written
// down: the sender's rules, apart from its timers and the transport.

/** After this long since its row was written, a mail that fails again is given up (status failed). */
export const GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000;

/** The wait after the 1st, 2nd, … failure; every later failure waits the last one. */
export const BACKOFF_MS = [10_000, 30_000, 60_000, 120_000, 300_000] as const;

/** Each wait is stretched or shrunk by up to this share, so that retries of one outage spread out. */
const JITTER = 0.1;

/** The longest stored or logged description of a failure. */
const MAX_ERROR_LENGTH = 300;

/** When the mail whose `attempt`-th try just failed is due again; `random` is in [0, 1). */
export function nextAttemptAt(now: number, attempt: number, random: () => number = Math.random): Date {
  const base = BACKOFF_MS[Math.min(Math.max(attempt, 1), BACKOFF_MS.length) - 1]!;
  return new Date(now + Math.round(base * (1 + JITTER * (2 * random() - 1))));
}

/** A transport failure as the sender acts on it: permanent or not, and how it is described. */
export interface SendFailure {
  /** The SMTP server refused this mail for good (a 5xx reply to its recipient or its content). */
  readonly permanent: boolean;
  /** The server answered with a reply code (it is up, and refused); false when it did not answer at all. */
  readonly replied: boolean;
  /** The SMTP reply code and text, or the transport's error code: no body, no address. */
  readonly description: string;
}

/**
 * Reads a nodemailer error. Only a 5xx reply to the envelope (RCPT) or to the message (DATA) is
 * permanent: the server will refuse this mail again. A 5xx to authentication (EAUTH) is the
 * operator's to fix, and every connection failure, timeout or 4xx passes, so those are retried.
 * Addresses in the reply text (servers echo the recipient) are cut to their domain.
 */
export function readFailure(error: unknown): SendFailure {
  const { code, responseCode, response, message } = (error ?? {}) as {
    code?: unknown;
    responseCode?: unknown;
    response?: unknown;
    message?: unknown;
  };
  const reply = typeof responseCode === "number" && responseCode > 0 ? responseCode : undefined;
  const permanent = reply !== undefined && reply >= 500 && (code === "EENVELOPE" || code === "EMESSAGE");
  const text = typeof response === "string" && response ? response : typeof message === "string" ? message : "";
  const parts = [
    typeof code === "string" ? code : "ERROR",
    reply && !text.startsWith(String(reply)) ? reply : "",
    text,
  ];
  return {
    permanent,
    replied: reply !== undefined,
    description: withoutAddresses(parts.filter(Boolean).join(" ")).slice(0, MAX_ERROR_LENGTH),
  };
}

/** `alice@example.com` becomes `…@example.com`. */
export function withoutAddresses(text: string): string {
  return text.replace(/[^\s<>"'(),;:]+@([A-Za-z0-9.-]+)/g, "…@$1");
}

/** The domain of an address (what a production log line may name of a recipient). */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}
