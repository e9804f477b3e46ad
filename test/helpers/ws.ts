// A real graphql-ws client against a test app, and a feed that collects what one subscription receives.
import { type Client, createClient, type SubscribePayload } from "graphql-ws";
import WebSocket from "ws";

/** How a socket ended: its close code and reason, and when (performance.now()). */
export interface Closed {
  code: number;
  reason: string;
  at: number;
}

export interface WsConnection {
  client: Client;
  /** Resolves when the socket closes, for whatever reason. */
  closed: Promise<Closed>;
  /** Resolves when the server has acknowledged connection_init. */
  connected: Promise<void>;
  /**
   * Sends a `ping` with `payload` on the acknowledged socket (a renewal when it holds
   * `authorization`) and resolves with the payload of the server's next `pong`; rejects when the
   * socket closes first.
   */
  ping(payload?: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
}

/** The ws:// URL of a test app's http://…/graphql. */
export function wsUrlOf(httpUrl: string): string {
  return httpUrl.replace(/^http/, "ws");
}

/**
 * Opens one graphql-ws connection at once (not lazily), with `Authorization: Bearer <token>` in its
 * connectionParams when a token is given (or exactly `connectionParams`), and never retries, so
 * every close reaches the test.
 */
export function connect(
  httpUrl: string,
  options: { token?: string; connectionParams?: Record<string, unknown> } = {},
): WsConnection {
  let onClosed!: (closed: Closed) => void;
  let onConnected!: () => void;
  const closed = new Promise<Closed>((resolve) => (onClosed = resolve));
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  let socket: WebSocket | undefined;
  // Pings waiting for their pong, in the order they were sent (the server answers in order).
  const waiting: Array<(payload: Record<string, unknown> | undefined) => void> = [];
  const client = createClient({
    url: wsUrlOf(httpUrl),
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    shouldRetry: () => false,
    connectionParams:
      options.connectionParams ?? (options.token ? { authorization: `Bearer ${options.token}` } : undefined),
    // The client throws when the socket closes before acknowledgement unless someone listens.
    onNonLazyError: () => undefined,
    on: {
      connected: (connectedSocket) => {
        socket = connectedSocket as WebSocket;
        onConnected();
      },
      pong: (received, payload) => {
        if (received) waiting.shift()?.(payload);
      },
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: unknown };
        onClosed({ code, reason: String(reason), at: performance.now() });
      },
    },
  });
  const ping = (payload?: Record<string, unknown>) =>
    new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
      if (!socket) throw new Error("ping before the connection was acknowledged");
      waiting.push(resolve);
      void closed.then((c) => reject(new Error(`closed before the pong: ${c.code} ${c.reason}`)));
      socket.send(JSON.stringify(payload ? { type: "ping", payload } : { type: "ping" }));
    });
  return { client, closed, connected, ping };
}

/** What one subscription received: results (data or errors) in order, an error message, completion. */
export class Feed {
  readonly results: any[] = [];
  error: unknown;
  completed = false;
  private waiters: Array<() => void> = [];
  readonly dispose: () => void;

  constructor(client: Client, payload: SubscribePayload) {
    this.dispose = client.subscribe(payload, {
      next: (value) => this.push(() => this.results.push(value)),
      error: (error) => this.push(() => (this.error = error)),
      complete: () => this.push(() => (this.completed = true)),
    });
  }

  /** Resolves once `done` holds (checked after each message), or rejects after `timeoutMs`. */
  until(done: (feed: Feed) => boolean, timeoutMs = 5000): Promise<void> {
    if (done(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`feed: condition not met within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        if (!done(this)) return this.waiters.push(check);
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  /** Resolves with the next result after the ones already received. */
  async next(timeoutMs = 5000): Promise<any> {
    const count = this.results.length;
    await this.until((feed) => feed.results.length > count, timeoutMs);
    return this.results[count];
  }

  private push(record: () => void): void {
    record();
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

/**
 * Calls `act` every 50 ms until `feed` has received something (the subscription is only live once
 * the server has processed it, which the protocol does not acknowledge), for at most `timeoutMs`.
 */
export async function untilLive(feed: Feed, act: () => Promise<unknown>, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (feed.results.length === 0 && feed.error === undefined && !feed.completed) {
    if (performance.now() > deadline) throw new Error(`no event within ${timeoutMs} ms`);
    await act();
    await feed.until((f) => f.results.length > 0 || f.error !== undefined || f.completed, 50).catch(() => undefined);
  }
}
