// A real SMTP server for tests (smtp-server, mails parsed with mailparser), on a free loopback port
// it keeps: stop() makes an outage (connections refused), restart() ends it on the same port, and
// `mode` makes it stall ("hang": accepts TCP and never greets; "stall": takes DATA and never
// answers it) or refuse ("tempfail": 451 to RCPT; "reject": 550 to RCPT). Nothing is mocked.
import { createServer, type Server, type Socket } from "node:net";

import { type AddressObject, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

import { freePort } from "./processes.js";

export type SmtpMode = "up" | "hang" | "stall" | "tempfail" | "reject";

/** One mail as the server received it. */
export interface ReceivedMail {
  /** The envelope's recipients (RCPT TO). */
  readonly envelopeTo: string[];
  readonly from: string;
  /** The To header's addresses. */
  readonly to: string[];
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** The Date header, parsed. */
  readonly date: Date | undefined;
  /** The Message-ID header, with its angle brackets. */
  readonly messageId: string | undefined;
  /** Every header, names in lower case, values as mailparser gives them. */
  readonly headers: Map<string, unknown>;
  /** The message as it came, headers and body. */
  readonly raw: string;
}

export interface SmtpOptions {
  /** Required credentials (AUTH PLAIN/LOGIN, allowed without TLS); unset: no authentication. */
  auth?: { user: string; pass: string };
}

export class TestSmtpServer {
  /** Every mail received, in order of arrival. */
  readonly mails: ReceivedMail[] = [];
  private current: SmtpMode = "up";
  /** How long the server takes to answer each mail's DATA (a slow server), in ms. */
  replyDelayMs = 0;
  /** TCP connections accepted so far. */
  connections = 0;
  private listener: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly smtp: SMTPServer;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly port: number,
    private readonly options: SmtpOptions,
  ) {
    this.smtp = new SMTPServer({
      logger: false,
      disabledCommands: options.auth ? ["STARTTLS"] : ["STARTTLS", "AUTH"],
      allowInsecureAuth: true,
      authOptional: !options.auth,
      onAuth: (auth, _session, callback) =>
        auth.username === options.auth?.user && auth.password === options.auth?.pass
          ? callback(null, { user: auth.username })
          : callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 })),
      onRcptTo: (_address, _session, callback) => {
        if (this.mode === "tempfail")
          return callback(Object.assign(new Error("Try again later"), { responseCode: 451 }));
        if (this.mode === "reject") return callback(Object.assign(new Error("No such user"), { responseCode: 550 }));
        callback();
      },
      onData: (stream, session, callback) => void this.receive(stream, session.envelope.rcptTo, callback),
    });
    this.smtp.on("error", () => undefined);
  }

  /** What the server does (see the module comment). */
  get mode(): SmtpMode {
    return this.current;
  }

  /**
   * Changes what the server does from the next connection or mail on. Setting "hang" also cuts the
   * connections open now (as a server that froze and was reset), so a client's pooled connection
   * meets the hang on its next mail rather than slipping through.
   */
  set mode(mode: SmtpMode) {
    this.current = mode;
    if (mode === "hang") for (const socket of this.sockets) socket.destroy();
  }

  /** Starts a server on a free loopback port, accepting mail. */
  static async start(options: SmtpOptions = {}): Promise<TestSmtpServer> {
    const server = new TestSmtpServer(await freePort(), options);
    await server.restart();
    return server;
  }

  /** `smtp://127.0.0.1:<port>` (with the credentials when the server requires them), plus `query`. */
  url(query = ""): string {
    const auth = this.options.auth ? `${this.options.auth.user}:${this.options.auth.pass}@` : "";
    return `smtp://${auth}127.0.0.1:${this.port}${query ? `?${query}` : ""}`;
  }

  /** Resolves with the mails once at least `count` arrived; rejects after `timeoutMs`. */
  async waitForMails(count: number, timeoutMs = 15_000): Promise<ReceivedMail[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.mails.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.mails.length} of ${count} mails arrived within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.mails;
  }

  /** The outage: the port refuses connections, and every open one is cut. */
  async stop(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }

  /** Listens again on the same port (after {@link stop}); `mode` is left as it is. */
  async restart(): Promise<void> {
    if (this.listener) return;
    const listener = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.listener = listener;
  }

  /** Stops for good. */
  close(): Promise<void> {
    return this.stop();
  }

  private accept(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => undefined);
    // "hang": the connection is accepted and nothing is ever said on it.
    if (this.mode !== "hang") this.smtp.connect(socket);
  }

  private async receive(
    stream: NodeJS.ReadableStream,
    recipients: ReadonlyArray<{ address: string }>,
    callback: (error?: Error | null) => void,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve) => stream.on("end", resolve));
    // "stall": the message is read to its end and never answered.
    if (this.mode === "stall") return;
    if (this.replyDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.replyDelayMs));
    const raw = Buffer.concat(chunks).toString("utf8");
    const parsed = await simpleParser(raw);
    this.mails.push({
      envelopeTo: recipients.map((r) => r.address),
      from: addresses(parsed.from)[0] ?? "",
      to: addresses(parsed.to),
      subject: parsed.subject ?? "",
      text: parsed.text ?? "",
      html: typeof parsed.html === "string" ? parsed.html : "",
      date: parsed.date,
      messageId: parsed.messageId,
      headers: parsed.headers,
      raw,
    });
    callback();
    for (const wake of this.waiters.splice(0)) wake();
  }
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return list.flatMap((group) => group.value.map((address) => address.address ?? ""));
}
