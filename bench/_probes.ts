/**
 * A probe target for the probing measurement (issue 7): one TCP listener on 127.0.0.1 that
 * counts the connections it accepts and answers an HTTP request with `200 OK`, so `httpGet`
 * and `tcpSocket` probes (pods use the node's network) and an `exec` probe that opens a
 * connection all reach it, and the count says how many probes actually ran.
 *
 * @module
 */

/** A listening probe target. */
export interface ProbeTarget {
  port: number;
  /** Connections accepted so far. */
  count(): number;
  close(): void;
}

const RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
);
const END_OF_HEAD = "\r\n\r\n";

/** Starts a target on a free port of 127.0.0.1. */
export function startProbeTarget(): ProbeTarget {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      void answer(conn);
    }
  })().catch(() => {}); // the listener was closed
  return {
    port: (listener.addr as Deno.NetAddr).port,
    count: () => accepted,
    close: () => listener.close(),
  };
}

/** Reads until the peer closes or an HTTP request head is complete; then answers it. */
async function answer(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  let head = "";
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      head += new TextDecoder().decode(buffer.subarray(0, n));
      if (head.includes(END_OF_HEAD)) {
        await conn.write(RESPONSE);
        return;
      }
    }
  } catch {
    // The prober gave up (timeout) or reset the connection: it still counted.
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}
