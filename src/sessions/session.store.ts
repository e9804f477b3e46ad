import type { Kysely } from "kysely";

import type { Database } from "../db/schema.js";

/** The only code that reads or writes the `sessions` table. */
export class SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records a new session (one per login or registration); its id becomes the tokens' `sid`. */
  async create(session: { id: string; userId: string; now: Date; expiresAt: Date; userAgent?: string; ip?: string }): Promise<void> {
    await this.db
      .insertInto("sessions")
      .values({
        id: session.id,
        user_id: session.userId,
        created_at: session.now.toISOString(),
        last_used_at: session.now.toISOString(),
        expires_at: session.expiresAt.toISOString(),
        user_agent: session.userAgent?.slice(0, 512) ?? null,
        ip: session.ip ?? null,
      })
      .execute();
  }
}
