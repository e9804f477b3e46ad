import { randomUUID, timingSafeEqual } from "node:crypto";

import type { Logger } from "pino";

import { isDatabaseUnavailable, OutageLog } from "../db/unavailable.js";
import { ServiceUnavailableError } from "../errors.js";
import { hashOpaqueSecret, randomOpaqueSecret } from "./opaque-token.js";
import type { ApiTokenPrincipal } from "./principal.js";
import type { RevocationList } from "./revocation-list.js";
import type { Role } from "./roles.js";
import { effectiveRoles, type Scope } from "./scopes.js";

/**
 * API tokens are opaque: `gta_<token id>_<43 base64url characters>`, 256 random bits behind a
 * greppable prefix (secret scanners can find a leaked one) and the token's id. The database keeps
 * the id and the SHA-256 of the secret, never the token. A token is looked up by its id once per
 * instance and then served from memory ({@link ApiTokenVerifier}); revocation reaches the cache
 * through the revocation list, which every instance keeps current within a second.
 *
 * Nothing about the format overlaps with the other credentials: an access token is a JWT (three
 * dot-separated parts, `typ: at+jwt`) and a refresh token is `rt_…`, so an API token can never be
 * verified as either, nor either of them as an API token.
 */
export const API_TOKEN_PREFIX = "gta_";
const SHAPE = /^gta_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** Every API token is this long: the prefix, a UUID, `_` and 256 bits in base64url. */
export const API_TOKEN_LENGTH = API_TOKEN_PREFIX.length + 36 + 1 + 43;

/** The longest lifetime an API token may be given (createApiToken's expiresIn). */
export const API_TOKEN_MAX_LIFETIME_SECONDS = 365 * 24 * 3600;

/** Whether an `Authorization` bearer value is shaped like an API token (checked before any lookup). */
export function isApiTokenShape(token: string): boolean {
  return token.startsWith(API_TOKEN_PREFIX) && SHAPE.test(token);
}

/** A new API token: its id, the token to hand out once, and the hash to store. */
export function mintApiToken(): { id: string; token: string; secretHash: string } {
  const id = randomUUID();
  const secret = randomOpaqueSecret();
  return { id, token: `${API_TOKEN_PREFIX}${id}_${secret}`, secretHash: hashOpaqueSecret(secret) };
}

/** Why an API token was refused; the first part of the name says it was an API token. */
export const API_TOKEN_FAILURES = ["API_TOKEN_UNKNOWN", "API_TOKEN_EXPIRED", "API_TOKEN_REVOKED"] as const;
export type ApiTokenFailure = (typeof API_TOKEN_FAILURES)[number];

export type ApiTokenVerdict =
  | {
      readonly ok: true;
      readonly principal: ApiTokenPrincipal;
      readonly expiresAt: number;
      /** When the token was created, in milliseconds since the epoch (introspection's `iat`). */
      readonly createdAt: number;
    }
  | { readonly ok: false; readonly reason: ApiTokenFailure; readonly holder?: { userId: string; apiTokenId: string } };

/** What one instance remembers of a token it looked up. */
interface Entry {
  readonly id: string;
  readonly userId: string;
  readonly ownerRoles: readonly Role[];
  readonly scopes: readonly Scope[];
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Null when the token is unknown or its secret did not match: refused without a database read. */
  readonly refused: ApiTokenFailure | null;
  /** When the entry was read; it is read again after {@link ApiTokenVerifierOptions.maxAgeMs}. */
  readonly readAt: number;
}

/** What the bearer check reads of an API token, with its owner's roles and state. */
export interface ApiTokenCheckRecord {
  id: string;
  userId: string;
  /** SHA-256 of the secret, hex. */
  secretHash: string;
  scopes: Scope[];
  createdAt: Date;
  expiresAt: Date;
  revoked: boolean;
  lastUsedAt: Date | null;
  ownerRoles: Role[];
  ownerDisabled: boolean;
}

/**
 * The api_tokens table as the bearer check needs it. Implemented by the table's store
 * (api-tokens/api-token.store.ts), so that access/ runs no SQL on a table a feature owns.
 */
export interface ApiTokenLookup {
  /** The token with this id, with its owner; undefined when there is none. */
  findForCheck(id: string): Promise<ApiTokenCheckRecord | undefined>;
  /** Writes the token's lastUsedAt. */
  recordUse(id: string, at: Date): Promise<void>;
}

export interface ApiTokenVerifierOptions {
  tokens: ApiTokenLookup;
  revocations: RevocationList;
  now: () => number;
  logger: Logger;
  /** How long a looked-up token is served from memory before it is read again. Default 60 s. */
  maxAgeMs?: number;
  /** How many tokens are remembered (known and refused alike). Default 10,000. */
  maxEntries?: number;
  /** lastUsedAt is written at most once per this period per token and instance. Default 5 minutes. */
  lastUsedGranularityMs?: number;
}

/**
 * Checks API tokens for the bearer check. Per request, for a token seen before: one Map lookup,
 * the revocation list's lookup of the token id (revokeApiToken, setUserDisabled, deleteAccount and
 * revokeUserSessions on any instance land there within a second), the expiry, and the owner's
 * current roles cut down by the scopes. Only the first use on an instance, and one use a minute
 * after that, reads the database; `lastUsedAt` is written in the background at most once per
 * {@link ApiTokenVerifierOptions.lastUsedGranularityMs}.
 */
export class ApiTokenVerifier {
  private readonly entries = new Map<string, Entry>();
  private readonly reading = new Map<string, Promise<Entry>>();
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly granularityMs: number;
  private readonly writeOutage: OutageLog;

  constructor(private readonly options: ApiTokenVerifierOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.granularityMs = options.lastUsedGranularityMs ?? 5 * 60_000;
    this.writeOutage = new OutageLog(options.logger, "recording API tokens' lastUsedAt");
  }

  /** Verifies a token of {@link isApiTokenShape}. Waits for the database only on a cache miss. */
  async verify(token: string): Promise<ApiTokenVerdict> {
    const now = this.options.now();
    let entry = this.entries.get(token);
    if (!entry || now - entry.readAt >= this.maxAgeMs) entry = await this.read(token);
    if (entry.refused === "API_TOKEN_UNKNOWN") {
      // deleteAccount deletes its tokens' rows, but their revocation is still known for a while:
      // the script is told its token was revoked rather than that it never existed.
      const revoked = this.options.revocations.isSessionEnded(SHAPE.exec(token)![1]!);
      return { ok: false, reason: revoked ? "API_TOKEN_REVOKED" : entry.refused };
    }
    const holder = { userId: entry.userId, apiTokenId: entry.id };
    if (entry.refused || this.options.revocations.isSessionEnded(entry.id))
      return { ok: false, reason: "API_TOKEN_REVOKED", holder };
    if (entry.expiresAt <= now) return { ok: false, reason: "API_TOKEN_EXPIRED", holder };
    this.recordUse(entry.id, now);
    const ownerRoles = this.options.revocations.currentRoles(entry.userId) ?? entry.ownerRoles;
    return {
      ok: true,
      principal: {
        kind: "api_token",
        userId: entry.userId,
        apiTokenId: entry.id,
        scopes: entry.scopes,
        ownerRoles,
        roles: effectiveRoles(ownerRoles, entry.scopes),
      },
      expiresAt: entry.expiresAt,
      createdAt: entry.createdAt,
    };
  }

  /** Forgets every remembered token; for tests. */
  clear(): void {
    this.entries.clear();
  }

  /** Reads one token, with concurrent reads of the same token sharing one query. */
  private read(token: string): Promise<Entry> {
    let pending = this.reading.get(token);
    if (!pending) {
      pending = this.load(token).finally(() => this.reading.delete(token));
      this.reading.set(token, pending);
    }
    return pending;
  }

  private async load(token: string): Promise<Entry> {
    const [, id, secret] = SHAPE.exec(token)!;
    let found;
    try {
      found = await this.options.tokens.findForCheck(id!);
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw new ServiceUnavailableError();
      throw error;
    }
    const readAt = this.options.now();
    const matches =
      found !== undefined &&
      timingSafeEqual(Buffer.from(found.secretHash, "hex"), Buffer.from(hashOpaqueSecret(secret!), "hex"));
    const entry: Entry =
      found && matches
        ? {
            id: found.id,
            userId: found.userId,
            ownerRoles: found.ownerRoles,
            scopes: found.scopes,
            createdAt: found.createdAt.getTime(),
            expiresAt: found.expiresAt.getTime(),
            // A disabled owner's tokens were revoked with the account; this covers one created meanwhile.
            refused: !found.revoked && !found.ownerDisabled ? null : "API_TOKEN_REVOKED",
            readAt,
          }
        : {
            id: "",
            userId: "",
            ownerRoles: [],
            scopes: [],
            createdAt: 0,
            expiresAt: 0,
            refused: "API_TOKEN_UNKNOWN",
            readAt,
          };
    if (found && matches && found.lastUsedAt !== null && !this.lastUsedWritten.has(found.id)) {
      this.lastUsedWritten.set(found.id, found.lastUsedAt.getTime());
    }
    this.remember(token, entry);
    return entry;
  }

  private remember(token: string, entry: Entry): void {
    this.entries.delete(token);
    this.entries.set(token, entry);
    // A Map iterates in insertion order: the first key is the one read longest ago.
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    while (this.lastUsedWritten.size > this.maxEntries)
      this.lastUsedWritten.delete(this.lastUsedWritten.keys().next().value!);
  }

  /** Writes lastUsedAt in the background when the stored value is older than the granularity. */
  private recordUse(id: string, now: number): void {
    const written = this.lastUsedWritten.get(id);
    if (written !== undefined && now - written < this.granularityMs) return;
    this.lastUsedWritten.set(id, now);
    void this.options.tokens
      .recordUse(id, new Date(now))
      .then(() => this.writeOutage.recovered())
      .catch((error: unknown) => {
        // Try again with the next use rather than a period later.
        this.lastUsedWritten.delete(id);
        this.writeOutage.failed(error);
      });
  }
}
