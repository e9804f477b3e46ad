// The counters of the account flows (mail, the e-mail steps, multi-factor steps), in a file of their
// own beside metrics.ts, which defines the others and registers them all.
import type { Counter } from "prom-client";

/** How a counter is made: named with the prefix and registered on the app's registers. */
export type CounterMaker = <L extends string = never>(
  name: string,
  labelNames: readonly L[],
  help: string,
) => Counter<L>;

/** The counters of the account flows (mail, the e-mail steps, multi-factor steps) and of the production surface. */
export function defineFlowCounters(counter: CounterMaker) {
  return {
    mails: counter(
      "mails_total",
      ["outcome"],
      "Mails of the outbox by outcome: queued (written), suppressed (written, never sent: an unknown address or a spent allowance), sent, retried (a transport failure, tried again later), failed (given up after a day).",
    ),
    emailSteps: counter(
      "email_flow_steps_total",
      ["step"],
      "Steps of the e-mail flows: reset_requested, reset_completed, reset_token_invalid, verification_requested, verified, verification_token_invalid, email_changed.",
    ),
    mfaSteps: counter(
      "mfa_steps_total",
      ["method", "outcome"],
      "Multi-factor steps by method (totp, recovery, passkey) and outcome: enrolled, verified, failed, throttled (a wrong-code budget refused), removed.",
    ),
    documents: counter(
      "documents_total",
      ["kind"],
      "With TRUSTED_DOCUMENTS, GraphQL documents by kind: trusted (in the manifest), arbitrary (an OPERATIONS_ANY API token's), refused (PERSISTED_QUERY_NOT_ALLOWED).",
    ),
    introspections: counter(
      "introspections_total",
      ["result"],
      "POST /oauth/introspect calls by result: active, inactive, unauthorized, forbidden, rate_limited, bad_request, unavailable (503).",
    ),
    laneRequests: counter(
      "compiled_lane_total",
      ["result"],
      "POST /graphql requests the compiled lane answered (served) or handed to Apollo unchanged (handed_over).",
    ),
  };
}
