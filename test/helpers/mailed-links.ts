// The links in the mail an app wrote: read from its outbox table (mail_outbox, written in the same
// transaction as the change that sends the mail), as a user would read them in the mail's text.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

import type { Kysely } from "kysely";

import type { Database } from "../../src/db/schema.js";

/** How long a mail may take to appear (it is written before the mutation answers, so at once). */
const WAIT_MS = 5_000;

/**
 * The link to `path` (`/reset-password`, `/verify-email`) in the newest mail to `recipient` that
 * holds one, waiting for it at most {@link WAIT_MS}; `newerThan` skips links already seen. Mails that
 * are never sent (suppressed rows) are left out.
 */
export async function mailedLink(
  db: Kysely<Database>,
  recipient: string,
  path: string,
  newerThan: readonly string[] = [],
): Promise<string> {
  const pattern = new RegExp(`https?://[^\\s"<>]+${path}#token=[A-Za-z0-9_-]+`, "g");
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const rows = await db
      .selectFrom("mail_outbox")
      .select(["text_body", "created_at", "id"])
      .where("recipient", "=", recipient)
      .where("status", "!=", "suppressed")
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .execute();
    for (const row of rows) {
      const link = [...row.text_body.matchAll(pattern)].map((match) => match[0]).find((l) => !newerThan.includes(l));
      if (link) return link;
    }
    assert.ok(Date.now() < until, `no mail to ${recipient} holds a new link to ${path}`);
    await sleep(50);
  }
}

/** The token a mailed link carries in its fragment. */
export function tokenOf(link: string): string {
  const token = new URLSearchParams(new URL(link).hash.slice(1)).get("token");
  assert.ok(token, `${link} carries a token`);
  return token;
}

/** The same link on `origin` (a test app listens on a random port that PUBLIC_URL cannot know in advance). */
export function onOrigin(link: string, origin: string): string {
  const url = new URL(link);
  return `${origin}${url.pathname}${url.hash}`;
}
