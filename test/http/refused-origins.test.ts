// A browser origin that CORS refuses on /graphql is named in one warn line that says to add it to
// CORS_ORIGINS; not an allowed origin, the server's own, or no origin; and a flood of origins
// cannot fill the log.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { describe, it } from "node:test";

import { pino } from "pino";

import {
  REFUSED_ORIGIN_LOG_INTERVAL_MS,
  REFUSED_ORIGIN_LOG_MAX_ORIGINS,
  refusedOriginLog,
} from "../../src/http/refused-origins.js";
import { useTestApp } from "../helpers/app.js";

const ALLOWED = "http://localhost:5173";
const UNKNOWN = "http://127.0.0.1:5173";

type Line = { level: number; msg: string; origin?: string; reqId?: string };

function warnings(logs: readonly string[]): Line[] {
  return logs.map((text) => JSON.parse(text) as Line).filter((line) => line.level === 40);
}

/** A browser's POST of an operation from a page on `origin`, and its preflight first. */
async function callFrom(url: string, origin: string): Promise<void> {
  const preflight = await fetch(url, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
  });
  await preflight.body?.cancel();
  const response = await fetch(url, {
    method: "POST",
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify({ query: "{ __typename }" }),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
}

describe("a refused CORS origin on /graphql (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { CORS_ORIGINS: ALLOWED } });

  it("is named once in a warn line that says to add it to CORS_ORIGINS, however often it calls", async () => {
    const before = t.logs.length;
    for (let i = 0; i < 3; i += 1) await callFrom(t.url, UNKNOWN);
    const lines = warnings(t.logs.slice(before));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const [line] = lines;
    assert.equal(line!.origin, UNKNOWN);
    assert.ok(line!.reqId, "the line names the request");
    assert.equal(
      line!.msg,
      `a page on ${UNKNOWN} called /graphql, but ${UNKNOWN} is not in CORS_ORIGINS, so the browser withholds the answer from it: add it to CORS_ORIGINS if that page should use this API`,
    );
  });

  it("is not logged for an allowed origin, the server's own, a request without one, or an Origin no list could hold", async () => {
    const before = t.logs.length;
    const own = new URL(t.url).origin;
    for (const origin of [ALLOWED, own, "null", "not an origin", "https://Example.com"]) await callFrom(t.url, origin);
    const response = await fetch(t.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    await response.body?.cancel();
    assert.deepEqual(warnings(t.logs.slice(before)), []);
  });
});

describe("a refused origin in production, where CORS_ORIGINS is unset and every other origin is refused (sqlite)", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "production" } });

  it("is named too", async () => {
    const before = t.logs.length;
    await callFrom(t.url, "https://app.example");
    assert.deepEqual(
      warnings(t.logs.slice(before)).map((line) => line.origin),
      ["https://app.example"],
    );
  });
});

describe("the refused-origin log's budget", () => {
  /** The log under a clock of our own, and the origins it named. */
  function logUnderClock() {
    let time = 0;
    const named: string[] = [];
    const logger = pino({ level: "warn" }, { write: (text: string) => named.push(JSON.parse(text).origin) });
    const note = refusedOriginLog({ corsOrigins: [ALLOWED] }, logger, () => time);
    const call = (origin: string) =>
      note({ headers: { origin } } as IncomingMessage, { id: "request", host: "api.example" });
    return { named, call, advance: (ms: number) => (time += ms) };
  }

  it("names an origin again only once the interval has passed", () => {
    const { named, call, advance } = logUnderClock();
    call(UNKNOWN);
    advance(REFUSED_ORIGIN_LOG_INTERVAL_MS - 1);
    call(UNKNOWN);
    assert.deepEqual(named, [UNKNOWN]);
    advance(1);
    call(UNKNOWN);
    assert.deepEqual(named, [UNKNOWN, UNKNOWN]);
  });

  it("names at most the budget's origins within an interval, however many call, then names new ones again", () => {
    const { named, call, advance } = logUnderClock();
    for (let i = 0; i < 1_000; i += 1) call(`https://junk-${i}.example`);
    assert.equal(named.length, REFUSED_ORIGIN_LOG_MAX_ORIGINS);
    assert.deepEqual(
      named,
      Array.from({ length: REFUSED_ORIGIN_LOG_MAX_ORIGINS }, (_, i) => `https://junk-${i}.example`),
    );
    advance(REFUSED_ORIGIN_LOG_INTERVAL_MS / 2);
    call("https://late.example");
    assert.equal(named.length, REFUSED_ORIGIN_LOG_MAX_ORIGINS, "the budget is spent for this interval");
    advance(REFUSED_ORIGIN_LOG_INTERVAL_MS / 2);
    call("https://late.example");
    assert.equal(named.at(-1), "https://late.example", "the earlier origins' interval has passed");
  });
});
