/**
 * `httpGet` probes, as the kubelet's: a GET with `User-Agent: kube-probe/…` and the probe's
 * headers (a `Host` header sets the request's host); status 200–399 succeeds, redirects are
 * not followed (a 3xx counts as success). `HTTPS` is TLS without certificate verification,
 * like the kubelet's prober: probes check liveness, not identity.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import type { V1HTTPGetAction } from "@kubernetes/client-node";
import type { ProbeOutcome } from "./probe.ts";

/**
 * The URL an `httpGet` action asks for.
 *
 * @param get The action.
 * @param port Its port, already resolved to a number.
 * @param defaultHost The host without `get.host`.
 * @return E.g. `https://127.0.0.1:8443/healthz`.
 *
 * @example Usage
 * ```ts
 * import { httpGetURL } from "./http.ts";
 * import assert from "node:assert/strict";
 * assert.equal(httpGetURL({ port: 80, path: "ready" }, 80, "::1"), "http://[::1]:80/ready");
 * ```
 */
export function httpGetURL(get: V1HTTPGetAction, port: number, defaultHost: string): string {
  const scheme = (get.scheme ?? "HTTP").toLowerCase();
  const host = get.host || defaultHost;
  const path = get.path?.startsWith("/") ? get.path : `/${get.path ?? ""}`;
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${path}`;
}

/**
 * Runs one `httpGet` attempt.
 *
 * @param get The action (scheme, path, headers).
 * @param port Its port, already resolved to a number.
 * @param defaultHost The host without `get.host` (the node: pods use its network).
 * @param timeoutMs The probe's timeout.
 * @return Success, or failure with the kubelet's message; never throws.
 *
 * @example Usage
 * ```ts ignore
 * import { checkHttpGet } from "./http.ts";
 * const outcome = await checkHttpGet({ port: 8443, scheme: "HTTPS" }, 8443, "127.0.0.1", 1000);
 * ```
 */
export function checkHttpGet(
  get: V1HTTPGetAction,
  port: number,
  defaultHost: string,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const url = httpGetURL(get, port, defaultHost);
  const headers: Record<string, string> = { "user-agent": "kube-probe/1.34", "accept": "*/*" };
  for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const client = url.startsWith("https:") ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const request = client.get(
      url,
      // No connection reuse between attempts (the kubelet disables keep-alive for probes).
      { headers, agent: false, rejectUnauthorized: false },
      (response) => {
        // The body is not needed: drop it so the connection closes.
        response.resume();
        const status = response.statusCode ?? 0;
        finish(
          status >= 200 && status < 400
            ? { ok: true }
            : { ok: false, message: `HTTP probe failed with statuscode: ${status}` },
        );
        response.on("end", () => request.destroy());
      },
    );
    const fail = (message: string) => {
      finish({ ok: false, message: `Get "${url}": ${message}` });
      request.destroy();
    };
    const timer = setTimeout(
      () => fail("context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
      timeoutMs,
    );
    request.on("error", (e) => fail(e.message));
  });
}
