// graphql-ws with the socket's token renewed in-band: after each refresh the app hands the new access
// token to the open socket (a `ping` whose payload holds `authorization`), which then lives until
// that token's exp, its subscriptions with it. A 4403 says why a socket was closed: TOKEN_EXPIRED (a
// renewal came too late, say after the laptop slept) reconnects with a fresh token; the others mean
// the session is over, and the user signs in again.
import { type Client, createClient } from "graphql-ws";

/** What the socket needs of the app's sign-in. */
export interface SocketAuth {
  /** The access token to connect with, refreshed first if it has expired; undefined: anonymous. */
  accessToken(): Promise<string | undefined>;
  /** Where the user goes when the session is over, with the reason the socket was closed for. */
  signOut(reason: string): void;
}

export interface RenewingClient {
  readonly client: Client;
  /** Hands a new access token of the same session (from a refresh) to the open socket. */
  renew(accessToken: string): void;
}

/** The 4403 reasons after which no connection succeeds until the user signs in again. */
const SESSION_OVER = ["SESSION_ENDED", "ACCOUNT_DISABLED", "TOKEN_INVALID"];
const OPEN = 1; // WebSocket.OPEN

function sessionOver(event: unknown): boolean {
  const { code, reason } = event as { code?: number; reason?: string };
  return code === 4403 && SESSION_OVER.includes(reason ?? "");
}

export function createRenewingClient(url: string, auth: SocketAuth, webSocketImpl?: unknown): RenewingClient {
  let socket: { readyState: number; send(data: string): void } | undefined;
  const client = createClient({
    url,
    webSocketImpl,
    // Called at each connection and reconnection.
    connectionParams: async () => {
      const token = await auth.accessToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    // graphql-ws retries a close event by default, a 4403 included: not once the session is over.
    shouldRetry: (event) => typeof event === "object" && event !== null && "code" in event && !sessionOver(event),
    on: {
      connected: (connected) => (socket = connected as typeof socket),
      closed: (event) => {
        socket = undefined;
        if (sessionOver(event)) auth.signOut((event as { reason: string }).reason);
      },
    },
  });
  return {
    client,
    renew(accessToken) {
      // No open socket: the next connection's connectionParams hands the token over.
      if (socket?.readyState !== OPEN) return;
      socket.send(JSON.stringify({ type: "ping", payload: { authorization: `Bearer ${accessToken}` } }));
    },
  };
}
