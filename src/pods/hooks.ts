/**
 * Container lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`), one run each, with
 * the kubelet's handler semantics: `exec` runs the command inside the container (exit 0 =
 * success), `httpGet` (HTTP, or HTTPS without certificate verification) succeeds on any HTTP
 * answer (only a failed request fails: the kubelet does not look at the status code), `sleep`
 * waits. `tcpSocket` is refused, as the kubelet does.
 *
 * When to run them and what a failure does is the runtime's (src/pods/runtime.ts).
 *
 * @module
 */
import type { V1Container, V1LifecycleHandler } from "@kubernetes/client-node";
import { type ContainerExec, runToCompletion } from "../exec/container.ts";
import { requestHttpGet } from "../probes/http.ts";
import { resolvePort } from "../probes/probe.ts";

/** Where and how a hook runs. */
export interface HookContext {
  container: V1Container;
  /** Where `httpGet` goes without a `host`: the pod's IP, which is the node's. */
  host: string;
  /** Runs commands in the container; without it `exec` hooks fail. */
  exec?: ContainerExec;
  /** Ends the hook early (the container stops, the grace period is over). */
  signal: AbortSignal;
  /** A deadline systemd enforces on an `exec` hook's command, should systemk be gone (ms). */
  timeoutMs?: number;
}

/** How a hook went; `message` says why it failed (for logs: events do not carry it). */
export interface HookOutcome {
  ok: boolean;
  message?: string;
}

/**
 * Runs a lifecycle hook once.
 *
 * @param handler The hook's spec.
 * @param context Container, default host, exec, abort signal.
 * @return Success, or failure with a message; aborted hooks fail.
 *
 * @example Usage
 * ```ts
 * import { runHook } from "./hooks.ts";
 * import assert from "node:assert/strict";
 * const signal = new AbortController().signal;
 * const outcome = await runHook({ sleep: { seconds: 0 } }, { container: { name: "c" }, host: "127.0.0.1", signal });
 * assert.equal(outcome.ok, true);
 * ```
 */
export async function runHook(
  handler: V1LifecycleHandler,
  context: HookContext,
): Promise<HookOutcome> {
  try {
    if (handler.exec) return await execHook(handler.exec.command ?? [], context);
    if (handler.httpGet) {
      const port = resolvePort(handler.httpGet.port, context.container);
      const answer = await requestHttpGet(handler.httpGet, {
        port,
        host: context.host,
        userAgent: "kube-lifecycle/1.34",
        signal: context.signal,
      });
      return answer.status === undefined
        ? { ok: false, message: `Get "${answer.url}": ${answer.error}` }
        : { ok: true };
    }
    if (handler.sleep) return await sleep(handler.sleep.seconds * 1000, context.signal);
    return { ok: false, message: "the hook has no exec, httpGet or sleep action" };
  } catch (e) {
    // An unknown named port, systemd unreachable: the hook failed, the runtime goes on.
    return { ok: false, message: (e as Error).message };
  }
}

async function execHook(command: string[], context: HookContext): Promise<HookOutcome> {
  if (command.length === 0) return { ok: false, message: "the exec hook has no command" };
  if (!context.exec) return { ok: false, message: "exec hooks cannot run here" };
  const process = await context.exec({ command, timeoutMs: context.timeoutMs });
  const kill = () => process.kill();
  if (context.signal.aborted) kill();
  context.signal.addEventListener("abort", kill);
  try {
    const outcome = await runToCompletion(process);
    if (outcome.exitCode === 0) return { ok: true };
    const end = outcome.timedOut || context.signal.aborted
      ? "was killed before it finished"
      : outcome.signal
      ? `was killed by ${outcome.signal}`
      : `exited with ${outcome.exitCode}`;
    return {
      ok: false,
      message: `command ${JSON.stringify(command.join(" "))} ${end}: ${outcome.output}`,
    };
  } finally {
    context.signal.removeEventListener("abort", kill);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<HookOutcome> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve(signal.aborted ? { ok: false, message: "the sleep was cut short" } : { ok: true });
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done);
    if (signal.aborted) done();
  });
}
