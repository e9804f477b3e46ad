import { randomUUID } from "node:crypto";

import type { Logger } from "pino";

import { BadUserInputError, INVALID_CREDENTIALS_MESSAGE, UnauthenticatedError } from "../errors.js";
import type { SessionStore } from "../sessions/session.store.js";
import { Role } from "../users/role.js";
import { type UserRecord, type UserStore, UsernameTakenError } from "../users/user.store.js";
import type { AuthPayload } from "./auth.type.js";
import type { PasswordHasher } from "./passwords.js";
import type { TokenService } from "./tokens.js";

/** Where a request came from, stored with the session it starts. */
export interface ClientInfo {
  ip?: string;
  userAgent?: string;
}

export interface AuthServiceDeps {
  users: UserStore;
  sessions: SessionStore;
  passwords: PasswordHasher;
  tokens: TokenService;
  /** Absolute lifetime of a session, from JWT_REFRESH_TOKEN_EXPIRES. */
  sessionTtlSeconds: number;
  now: () => number;
  logger: Logger;
}

/** Registration and sign-in: checks credentials, starts sessions and mints their tokens. */
export class AuthService {
  constructor(private readonly deps: AuthServiceDeps) {}

  /**
   * Creates a USER account and signs it in. A taken username (in any letter case, also when two
   * registrations race) is BAD_USER_INPUT on `username`.
   */
  async register(input: { username: string; password: string }, client: ClientInfo): Promise<AuthPayload> {
    const passwordHash = await this.deps.passwords.hash(input.password);
    let user: UserRecord;
    try {
      user = await this.deps.users.insert({
        id: randomUUID(),
        username: input.username,
        passwordHash,
        roles: [Role.USER],
        now: new Date(this.deps.now()),
      });
    } catch (error) {
      if (error instanceof UsernameTakenError) {
        throw new BadUserInputError([{ field: "username", rule: "unique", message: "is already taken" }]);
      }
      throw error;
    }
    this.deps.logger.info({ userId: user.id }, "user registered");
    return this.startSession(user, client);
  }

  /**
   * Checks a username and password and starts a session. An unknown username and a wrong password
   * fail identically (same code, same message, one argon2 verification each).
   */
  async login(input: { username: string; password: string }, client: ClientInfo): Promise<AuthPayload> {
    const user = await this.deps.users.findByUsername(input.username);
    const ok = await this.deps.passwords.verify(user?.passwordHash, input.password);
    if (!user || !ok) {
      this.deps.logger.info({ userId: user?.id }, "login failed");
      throw new UnauthenticatedError(INVALID_CREDENTIALS_MESSAGE);
    }
    return this.startSession(user, client);
  }

  private async startSession(user: UserRecord, client: ClientInfo): Promise<AuthPayload> {
    const now = this.deps.now();
    const sessionId = randomUUID();
    await this.deps.sessions.create({
      id: sessionId,
      userId: user.id,
      now: new Date(now),
      expiresAt: new Date(now + this.deps.sessionTtlSeconds * 1000),
      ...client,
    });
    const { token } = this.deps.tokens.signAccessToken({ userId: user.id, roles: user.roles, sessionId, fresh: true });
    this.deps.logger.info({ userId: user.id, sessionId }, "session started");
    return {
      accessToken: token,
      tokenType: "Bearer",
      expiresIn: this.deps.tokens.accessTokenTtlSeconds,
      user: toPublicUser(user),
    };
  }
}

/** Drops the password hash. */
export function toPublicUser({ passwordHash: _passwordHash, ...user }: UserRecord) {
  return user;
}
