/**
 * `httpGet` probes, as the kubelet's: a GET with `User-Agent: kube-probe/…` and the probe's
 * headers (a `Host` header sets the request's host); status 200–399 succeeds, redirects are
 * not followed (a 3xx counts as success). `HTTPS` is TLS without certificate verification,
 * like the kubelet's prober: probes check liveness, not identity. `httpGet` lifecycle hooks
 * send the same request (src/pods/hooks.ts).
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import type { V1HTTPGetAction } from "@kubernetes/client-node";
import type { ProbeOutcome } from "./types.ts";

/** Where an `httpGet` action goes: its port, resolved to a number, and the default host. */
export interface HttpGetTarget {
  /** The action's port, resolved to a number (a named port looked up in the container). */
  port: number;
  /** The host where `get.host` is not set (the node: pods use its network). */
  host: string;
}

/**
 * The URL an `httpGet` action asks for.
 *
 * @param get The action.
 * @param target Its port, already resolved to a number, and the host without `get.host`.
 * @return E.g. `https://127.0.0.1:8443/healthz`.
 *
 * @example Usage
 * ```ts
 * import { httpGetURL } from "./http.ts";
 * import assert from "node:assert/strict";
 * assert.equal(httpGetURL({ port: 80, path: "ready" }, { port: 80, host: "::1" }), "http://[::1]:80/ready");
 * ```
 */
export function httpGetURL(get: V1HTTPGetAction, target: HttpGetTarget): string {
  const { port, host: defaultHost } = target;
  const scheme = (get.scheme ?? "HTTP").toLowerCase();
  const host = get.host || defaultHost;
  const path = get.path?.startsWith("/") ? get.path : `/${get.path ?? ""}`;
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${path}`;
}

/** What an `httpGet` request got: the response's status code, or why there was none. */
export interface HttpGetAnswer {
  url: string;
  status?: number;
  error?: string;
}

/**
 * Sends an `httpGet` action's request (a probe's or a lifecycle hook's) and waits for the
 * response's head.
 *
 * @param get The action (scheme, path, headers).
 * @param options Its `port`, already resolved to a number; `host` where `get.host` is not set
 *   (the node: pods use its network); `User-Agent`; a timeout (ms) and/or a signal that end
 *   the request.
 * @return The status code, or the error; never throws.
 *
 * @example Usage
 * ```ts ignore
 * import { requestHttpGet } from "./http.ts";
 * const answer = await requestHttpGet({ port: 80, path: "/drain" }, {
 *   port: 80,
 *   host: "127.0.0.1",
 *   userAgent: "kube-lifecycle/1.34",
 * });
 * ```
 */
export function requestHttpGet(
  get: V1HTTPGetAction,
  options: HttpGetTarget & { userAgent: string; timeoutMs?: number; signal?: AbortSignal },
): Promise<HttpGetAnswer> {
  const url = httpGetURL(get, options);
  const headers: Record<string, string> = { "user-agent": options.userAgent, "accept": "*/*" };
  for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const client = url.startsWith("https:") ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: Omit<HttpGetAnswer, "url">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", aborted);
      resolve({ url, ...answer });
    };
    const request = client.get(
      url,
      // No connection reuse between attempts (the kubelet disables keep-alive for probes).
      { headers, agent: false, rejectUnauthorized: false },
      (response) => {
        // The body is not needed: drop it so the connection closes.
        response.resume();
        finish({ status: response.statusCode ?? 0 });
        response.on("end", () => request.destroy());
      },
    );
    const fail = (error: string) => {
      finish({ error });
      request.destroy();
    };
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(
      () => fail("context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
      options.timeoutMs,
    );
    const aborted = () => fail("context canceled");
    options.signal?.addEventListener("abort", aborted);
    if (options.signal?.aborted) aborted();
    request.on("error", (e) => fail(e.message));
  });
}

/**
 * Runs one `httpGet` attempt.
 *
 * @param get The action (scheme, path, headers).
 * @param options Its `port` and default `host` (as {@link requestHttpGet}), and the probe's
 *   timeout (ms).
 * @return Success, or failure with the kubelet's message; never throws.
 *
 * @example Usage
 * ```ts ignore
 * import { checkHttpGet } from "./http.ts";
 * const outcome = await checkHttpGet({ port: 8443, scheme: "HTTPS" }, {
 *   port: 8443,
 *   host: "127.0.0.1",
 *   timeoutMs: 1000,
 * });
 * ```
 */
export async function checkHttpGet(
  get: V1HTTPGetAction,
  options: HttpGetTarget & { timeoutMs: number },
): Promise<ProbeOutcome> {
  const answer = await requestHttpGet(get, { ...options, userAgent: "kube-probe/1.34" });
  if (answer.status === undefined) {
    return { ok: false, message: `Get "${answer.url}": ${answer.error}` };
  }
  return answer.status >= 200 && answer.status < 400
    ? { ok: true }
    : { ok: false, message: `HTTP probe failed with statuscode: ${answer.status}` };
}
