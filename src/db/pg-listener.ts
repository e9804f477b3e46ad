import pg from "pg";

import type { OutageLog } from "./unavailable.js";

// Reconnecting: the first retry soon, then doubling up to half a second, so a database that comes
// back is listened to again within about half a second, without a storm of attempts while it is down.
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 500;

// A frozen server or network ends no connection: the listener would wait for notifications that never
// come. A query on it this often, bounded by the connection's query_timeout, finds that out.
const HEARTBEAT_MS = 5000;

export interface PgListenerOptions {
  connection: pg.ClientConfig;
  /** The channels to LISTEN on (quoted as identifiers). */
  channels: readonly string[];
  onNotification: (channel: string, payload: string | undefined) => void;
  /**
   * Called each time the listener is back after losing its connection (not after the first start):
   * notifications sent meanwhile were missed, so a caller re-reads what it may have missed.
   */
  onReconnected?: () => void;
  /** Where connection failures are logged, once per outage. */
  outage: OutageLog;
}

/**
 * A dedicated PostgreSQL connection that LISTENs on some channels and survives its connection: when
 * the server ends it (a restart, `pg_terminate_backend`) or a heartbeat gets no answer, it reconnects
 * with backoff (100 ms, doubling up to 500 ms) and, once listening again, calls `onReconnected`.
 * Used by the revocation sync and by the subscription events.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = RECONNECT_FIRST_MS;
  private stopped = false;

  constructor(private readonly options: PgListenerOptions) {}

  /** Whether the LISTEN connection is up. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /** Connects and listens; rejects when the first attempt fails (no retry then). */
  start(): Promise<void> {
    return this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client(this.options.connection);
    client.on("notification", (message) => this.options.onNotification(message.channel, message.payload));
    // An error is always followed by 'end' (pg ends the connection); both lead to one reconnect.
    client.on("error", (error) => {
      this.options.outage.failed(error);
      this.reconnect(client);
    });
    client.on("end", () => this.reconnect(client));
    try {
      await client.connect();
      for (const channel of this.options.channels) await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.stopped) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.reconnectDelay = RECONNECT_FIRST_MS;
    this.options.outage.recovered();
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      client.query("select 1").catch((error: unknown) => {
        this.options.outage.failed(error);
        this.reconnect(client);
      });
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Drops a connection that failed and schedules attempts to listen again until one succeeds. */
  private reconnect(dead: pg.Client): void {
    if (this.stopped || this.client !== dead) return;
    this.client = undefined;
    clearInterval(this.heartbeat);
    dead.removeAllListeners("end");
    // end() on a frozen connection could wait for ever; the socket is dropped either way.
    void dead.end().catch(() => undefined);
    this.scheduleListen();
  }

  private scheduleListen(): void {
    if (this.stopped) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
    this.reconnectTimer = setTimeout(() => {
      this.listen()
        .then(() => {
          if (!this.stopped) this.options.onReconnected?.();
        })
        .catch((error: unknown) => {
          this.options.outage.failed(error);
          this.scheduleListen();
        });
    }, delay);
    this.reconnectTimer.unref();
  }
}
