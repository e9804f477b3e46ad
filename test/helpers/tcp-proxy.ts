import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on a loopback port in front of a real service (PostgreSQL, Redis), for fault tests
 * that must never stop or reconfigure the shared services themselves. Three states:
 *
 * - `forwarding`: bytes flow both ways, as if the app were connected directly.
 * - `frozen`: connections stay open (and new ones are accepted) but no byte moves in either
 *   direction until `thaw()`, which delivers everything held back: a hung server or network.
 * - `down`: every proxied connection is cut and new ones are closed at once: a server that is gone
 *   (restart, failover) until `up()`.
 */
export class TcpProxy {
  private state: "forwarding" | "frozen" | "down" = "forwarding";
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    // Assigned once the server listens; the connection callback only runs after that.
    // eslint-disable-next-line prefer-const
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    proxy = new TcpProxy(server, address.port, target);
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  static rewrite(url: string, port: number): string {
    const parsed = new URL(url);
    parsed.hostname = "127.0.0.1";
    parsed.port = String(port);
    return parsed.toString();
  }

  /** How many client connections are open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  freeze(): void {
    this.state = "frozen";
  }

  thaw(): void {
    this.state = "forwarding";
    for (const pair of this.pairs) pair.flush();
  }

  /** Cuts every connection and refuses new ones until {@link up}. */
  down(): void {
    this.state = "down";
    for (const pair of this.pairs) pair.destroy();
  }

  up(): void {
    this.state = "forwarding";
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) pair.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.state === "down") {
      client.destroy();
      return;
    }
    const pair = new Pair(
      client,
      () => this.state === "frozen",
      () => this.pairs.delete(pair),
    );
    this.pairs.add(pair);
    pair.open(this.target);
  }
}

/** One client connection and its upstream, with what the freeze holds back in each direction. */
class Pair {
  private upstream: Socket | undefined;
  private readonly toUpstream: Buffer[] = [];
  private readonly toClient: Buffer[] = [];
  private connected = false;
  private closed = false;

  constructor(
    private readonly client: Socket,
    private readonly frozen: () => boolean,
    private readonly onClose: () => void,
  ) {
    client.on("data", (chunk: Buffer) => {
      this.toUpstream.push(chunk);
      this.flush();
    });
    client.on("error", () => this.destroy());
    client.on("close", () => this.destroy());
  }

  open(target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    this.upstream = upstream;
    upstream.on("connect", () => {
      this.connected = true;
      this.flush();
    });
    upstream.on("data", (chunk: Buffer) => {
      this.toClient.push(chunk);
      this.flush();
    });
    upstream.on("error", () => this.destroy());
    upstream.on("close", () => this.destroy());
  }

  flush(): void {
    if (this.closed || this.frozen()) return;
    if (this.connected) for (const chunk of this.toUpstream.splice(0)) this.upstream!.write(chunk);
    for (const chunk of this.toClient.splice(0)) this.client.write(chunk);
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.upstream?.destroy();
    this.onClose();
  }
}
