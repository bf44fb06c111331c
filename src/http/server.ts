/**
 * The kubelet API's HTTPS server. It is `node:https`, not `Deno.serve`, because it must see the
 * client's certificate (Deno.serve does not expose it) and must swap its own certificate while
 * connections stay open (`setSecureContext`), which a rotated serving certificate needs.
 *
 * @module
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import type { KubeletHandler } from "./handler.ts";

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

  private constructor(options: KubeletServerOptions) {
    this.#o = options;
    this.#server = https.createServer({
      ...options.certificate,
      // The certificate is checked by the handler's authenticator against --client-ca-file;
      // TLS only has to ask for one and hand it over.
      requestCert: true,
      rejectUnauthorized: false,
    }, (req, res) => void this.#serve(req, res));
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

  /** Stops listening and ends open responses (a `follow` stream would never end on its own). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const res of this.#open) res.destroy();
      this.#server.closeAllConnections?.();
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#open.add(res);
    res.on("close", () => this.#open.delete(res));
    try {
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate?.(false);
      const certificate = peer?.raw ? new X509Certificate(peer.raw) : undefined;
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string") headers.set(name, value);
      }
      const request = new Request(new URL(req.url ?? "/", "https://kubelet"), {
        method: req.method,
        headers,
      });
      const response = await this.#o.handler(request, {
        certificate,
        authorization: headers.get("authorization"),
      });
      await writeResponse(response, res);
    } catch (e) {
      this.#o.log?.(`kubelet API: ${req.method} ${req.url}: ${(e as Error).message}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  }
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
