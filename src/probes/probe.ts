/**
 * One probe attempt, as the kubelet's prober makes it: `httpGet` (http.ts: success = status
 * 200–399, HTTPS without certificate verification), `tcpSocket` (success = the connection
 * opens) and `grpc` (grpc.ts: the standard health service answers `SERVING`), each within
 * `timeoutSeconds`. Pods use the host's network, so the default host is the node itself.
 *
 * `exec` runs the command inside the container (src/exec/container.ts: its user, environment,
 * working directory and mount namespace) and succeeds when it exits 0; at `timeoutSeconds` it
 * is killed with everything it started and fails.
 *
 * @module
 */
import type { V1Container, V1Probe } from "@kubernetes/client-node";
import { type ContainerExec, runToCompletion } from "../exec/container.ts";
import { checkGrpc } from "./grpc.ts";
import { checkHttpGet } from "./http.ts";
import type { ProbeOutcome } from "./types.ts";

/** Thrown for a probe systemk cannot run (its handler is not implemented, or is invalid). */
export class UnsupportedProbe extends Error {}

/** What a probe runs against. */
export interface ProbeTarget {
  /** The container's spec (named ports). */
  container: V1Container;
  /** Where `httpGet` and `tcpSocket` connect without a `host`, and `grpc` always. */
  host: string;
  /** Runs a command in the container, for `exec` probes. */
  exec?: ContainerExec;
}

/**
 * Runs one attempt of `probe` against its container.
 *
 * @param probe The probe's spec.
 * @param target The container, the default host, and how to run commands in it.
 * @return Success or failure with a message.
 * @throws {UnsupportedProbe} For a probe without a handler, an unknown named port, or an
 *   `exec` probe without a command or without `exec`.
 *
 * @example Usage
 * ```ts ignore
 * import { checkProbe } from "./probe.ts";
 * const outcome = await checkProbe({ tcpSocket: { port: 80 } }, {
 *   container: { name: "web" },
 *   host: "127.0.0.1",
 * });
 * ```
 */
export async function checkProbe(
  probe: V1Probe,
  target: ProbeTarget,
): Promise<ProbeOutcome> {
  const { container, host: defaultHost, exec } = target;
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.exec) return await execProbe(probe.exec.command ?? [], timeoutMs, exec);
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port, container);
    return await checkHttpGet(probe.httpGet, { port, host: defaultHost, timeoutMs });
  }
  if (probe.grpc) {
    return await checkGrpc({ host: defaultHost, port: probe.grpc.port }, {
      service: probe.grpc.service ?? "",
      timeoutSeconds: timeoutMs / 1000,
    });
  }
  if (probe.tcpSocket) {
    const hostname = probe.tcpSocket.host || defaultHost;
    const port = resolvePort(probe.tcpSocket.port, container);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("i/o timeout")), timeoutMs);
    });
    const connecting = Deno.connect({ hostname, port });
    try {
      const conn = await Promise.race([connecting, timeout]);
      conn.close();
      return { ok: true };
    } catch (e) {
      // A connection that opens after the timeout must not leak.
      connecting.then((c) => c.close(), () => {});
      return { ok: false, message: `dial tcp ${hostname}:${port}: ${(e as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
  }
  throw new UnsupportedProbe("the probe has no handler");
}

/** An `exec` attempt: exit 0 succeeds; the output is the failure's message, as the kubelet's. */
async function execProbe(
  command: string[],
  timeoutMs: number,
  exec: ContainerExec | undefined,
): Promise<ProbeOutcome> {
  if (command.length === 0) throw new UnsupportedProbe("the exec probe has no command");
  if (!exec) throw new UnsupportedProbe("exec probes cannot run here");
  let outcome;
  try {
    outcome = await runToCompletion(await exec({ command, timeoutMs }));
  } catch (e) {
    // Not running, or systemd unreachable for a moment: this attempt fails, as the kubelet's
    // does when the runtime errs; the worker must never see an exception.
    return { ok: false, message: (e as Error).message };
  }
  if (outcome.timedOut) {
    return { ok: false, message: `command ${JSON.stringify(command.join(" "))} timed out` };
  }
  return outcome.exitCode === 0 ? { ok: true } : { ok: false, message: outcome.output };
}

/**
 * A port by number, or by the name of one of the container's ports.
 *
 * @param port The port as a probe or hook gives it.
 * @param container The container's spec.
 * @return The port number.
 * @throws {UnsupportedProbe} For a name the container has no port of.
 *
 * @example Usage
 * ```ts
 * import { resolvePort } from "./probe.ts";
 * import assert from "node:assert/strict";
 * const container = { name: "web", ports: [{ name: "http", containerPort: 8080 }] };
 * assert.equal(resolvePort("http", container), 8080);
 * ```
 */
export function resolvePort(port: number | string, container: V1Container): number {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = container.ports?.find((p) => p.name === port);
  if (!named) throw new UnsupportedProbe(`the container has no port named "${port}"`);
  return named.containerPort;
}
