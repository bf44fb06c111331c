/**
 * The kubelet API's HTTPS server. It is `node:https`, not `Deno.serve`, because it must see the
 * client's certificate (Deno.serve does not expose it) and must swap its own certificate while
 * connections stay open (`setSecureContext`), which a rotated serving certificate needs.
 *
 * Upgrade requests (`kubectl exec`/`attach`/`port-forward` through the apiserver: `Connection:
 * Upgrade`, `Upgrade: SPDY/3.1`) arrive as the server's `upgrade` event, with the TLS socket
 * itself: they go through the same handler, authentication and authorization first, and only
 * a {@link ProtocolSwitch} answer switches the socket (101) to the streaming protocol; any
 * other answer is written as a plain HTTP response and the connection closed.
 *
 * @module
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { KubeletHandler } from "./handler.ts";
import { isDisconnect } from "./spdy/session.ts";
import { isProtocolSwitch } from "./streaming.ts";

/** A serving certificate and its key, PEM. */
export interface ServingCertificate {
  cert: string;
  key: string;
}

/** Where and how to listen. */
export interface KubeletServerOptions {
  /** Listen address; default 0.0.0.0, as the kubelet's `--address`. */
  address?: string;
  port: number;
  certificate: ServingCertificate;
  handler: KubeletHandler;
  log?: (message: string) => void;
}

/** A listening kubelet API server. */
export class KubeletServer {
  readonly #server: https.Server;
  readonly #o: KubeletServerOptions;
  readonly #open = new Set<ServerResponse>();
  readonly #upgraded = new Set<Duplex>();

  private constructor(options: KubeletServerOptions) {
    this.#o = options;
    this.#server = https.createServer({
      ...options.certificate,
      // The certificate is checked by the handler's authenticator against --client-ca-file;
      // TLS only has to ask for one and hand it over.
      requestCert: true,
      rejectUnauthorized: false,
    }, (req, res) => void this.#serve(req, res));
    this.#server.on("upgrade", (req, socket, head) => void this.#upgrade(req, socket, head));
  }

  /** Starts listening; resolves once the port is bound. */
  static start(options: KubeletServerOptions): Promise<KubeletServer> {
    const server = new KubeletServer(options);
    return new Promise((resolve, reject) => {
      server.#server.once("error", reject);
      server.#server.listen(options.port, options.address ?? "0.0.0.0", () => {
        server.#server.off("error", reject);
        resolve(server);
      });
    });
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** Serves new connections with another certificate; open connections are not touched. */
  setCertificate(certificate: ServingCertificate): void {
    this.#server.setSecureContext(certificate);
  }

  /**
   * Stops listening and ends open responses (a `follow` stream would never end on its own)
   * and streaming connections.
   */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const res of this.#open) res.destroy();
      for (const socket of this.#upgraded) socket.destroy();
      this.#server.closeAllConnections?.();
    });
  }

  /** The handler's answer to a Node request, with the client's TLS credentials. */
  #handle(req: IncomingMessage) {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate?.(false);
    const certificate = peer?.raw ? new X509Certificate(peer.raw) : undefined;
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string") headers.set(name, value);
      // Repeated headers (X-Stream-Protocol-Version: one line per protocol) stay all there.
      else if (Array.isArray(value)) headers.set(name, value.join(", "));
    }
    const request = new Request(new URL(req.url ?? "/", "https://kubelet"), {
      method: req.method,
      headers,
    });
    return this.#o.handler(request, { certificate, authorization: headers.get("authorization") });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#open.add(res);
    res.on("close", () => this.#open.delete(res));
    try {
      const answer = await this.#handle(req);
      const response = isProtocolSwitch(answer)
        ? new Response("an upgrade request is required\n", { status: 400 })
        : answer;
      await writeResponse(response, res);
    } catch (e) {
      this.#o.log?.(`kubelet API: ${req.method} ${req.url}: ${(e as Error).message}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Uint8Array): Promise<void> {
    this.#upgraded.add(socket);
    socket.once("close", () => this.#upgraded.delete(socket));
    socket.on("error", (e: Error) => {
      if (!isDisconnect(e)) this.#o.log?.(`kubelet API: ${req.url}: ${e.message}`);
    });
    try {
      const answer = await this.#handle(req);
      if (!isProtocolSwitch(answer)) {
        const body = new Uint8Array(await answer.arrayBuffer());
        const lines = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ""}`];
        for (const [name, value] of answer.headers) lines.push(`${name}: ${value}`);
        lines.push(`content-length: ${body.length}`, "connection: close", "", "");
        socket.end(concatBytes(new TextEncoder().encode(lines.join("\r\n")), body));
        return;
      }
      const lines = ["HTTP/1.1 101 Switching Protocols", "connection: Upgrade"];
      for (const [name, value] of Object.entries(answer.headers)) lines.push(`${name}: ${value}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      // Bytes the client sent right behind its request belong to the new protocol.
      if (head.length > 0) socket.unshift(head);
      await answer.serve(socket);
    } catch (e) {
      this.#o.log?.(`kubelet API: ${req.method} ${req.url}: ${(e as Error).message}`);
      socket.destroy();
    }
  }
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Copies a web Response to a Node response. Reads the body only as fast as the client takes it
 * (waits for `drain`), and cancels the body when the client goes away, which is what stops a
 * `journalctl --follow` behind it.
 */
async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  let gone = false;
  const closed = new Promise<void>((resolve) =>
    res.once("close", () => {
      gone = true;
      resolve();
    })
  );
  // The body ends the moment the client leaves, even while waiting for the next log line.
  closed.then(() => reader.cancel().catch(() => {}));
  try {
    while (!gone) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await Promise.race([new Promise((resolve) => res.once("drain", resolve)), closed]);
      }
    }
  } finally {
    if (!gone) res.end();
  }
}
