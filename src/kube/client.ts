/**
 * Kubernetes client setup for systemk: the kubeconfig of the node identity, the API clients
 * built from it, and small helpers the other `src/kube` modules share (error codes, patch
 * content types, MicroTime).
 *
 * @module
 */
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  Watch,
} from "@kubernetes/client-node";
import type { ConfigurationOptions } from "@kubernetes/client-node";

/** The API clients systemk uses, all built from one kubeconfig. */
export interface KubeClients {
  /** The loaded kubeconfig (also drives raw watches). */
  kubeConfig: KubeConfig;
  /** core/v1: nodes, pods, events, configmaps, secrets. */
  core: CoreV1Api;
  /** coordination.k8s.io/v1: the node Lease. */
  coordination: CoordinationV1Api;
  /** Streaming watches (`?watch=true`). */
  watch: Watch;
  /** The API server as pods with host networking reach it (KUBERNETES_SERVICE_HOST/PORT). */
  apiServer: ApiServerEndpoint;
}

/** Host and port of the API server, for `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`. */
export interface ApiServerEndpoint {
  /** Hostname or IP address, without IPv6 brackets. */
  host: string;
  port: number;
}

/** Where systemk's components report what they could not hand back to a caller. */
export interface KubeLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Logger used when the caller gives none: plain stderr lines. */
export const consoleLogger: KubeLogger = {
  info: (message) => console.error(message),
  warn: (message) => console.error(message),
};

/**
 * Loads a kubeconfig from `path`, or else the client's default search ($KUBECONFIG, then
 * ~/.kube/config, then the in-cluster service account).
 *
 * @param path kubeconfig file of the node identity; optional.
 * @return the loaded kubeconfig.
 * @throws when the file cannot be read or names no current cluster.
 * @example Usage
 * ```ts
 * const kc = loadKubeConfig(Deno.env.get("KUBECONFIG"));
 * ```
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error(
      `kubeconfig ${
        path ?? "(default)"
      } has no current cluster; pass --kubeconfig or set $KUBECONFIG`,
    );
  }
  return kc;
}

/**
 * Builds the API clients for a loaded kubeconfig.
 *
 * @param kubeConfig a kubeconfig with a current cluster.
 * @return the clients and the API server endpoint.
 * @example Usage
 * ```ts
 * const { core, apiServer } = createClients(loadKubeConfig("/etc/systemk/kubeconfig"));
 * ```
 */
export function createClients(kubeConfig: KubeConfig): KubeClients {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error("kubeconfig has no current cluster server");
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    watch: new Watch(kubeConfig),
    apiServer: apiServerEndpoint(server),
  };
}

/**
 * Host and port of an API server URL; the port defaults to 443 for https and 80 for http.
 *
 * @param serverURL the kubeconfig cluster's `server`, e.g. `https://10.0.0.1:6443`.
 * @return host (IPv6 without brackets) and port.
 * @throws on a URL that does not parse.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(apiServerEndpoint("https://[::1]:6443"), { host: "::1", port: 6443 });
 * ```
 */
export function apiServerEndpoint(serverURL: string): ApiServerEndpoint {
  const url = new URL(serverURL);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  return { host, port };
}

/**
 * The HTTP status code of an error thrown by client-node, whether from a generated API call
 * (`ApiException.code`) or a watch (`statusCode`); undefined for network errors.
 *
 * @param err anything caught.
 * @return the status code, if the error carries one.
 */
export function httpStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (typeof err === "object" && err !== null) {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.statusCode === "number") return e.statusCode;
    if (typeof e.code === "number") return e.code;
  }
  return undefined;
}

/**
 * A one-line description of an API error for logs: status code and the apiserver's message
 * (client-node puts the whole response body into `message`, which is too long for a log).
 *
 * @param err anything caught.
 * @return e.g. `403 Forbidden: configmaps "x" is forbidden: ...`.
 */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === "string" ? safeJSON(err.body) : err.body;
    const message = (body as { message?: string } | undefined)?.message;
    return `${err.code}${message ? `: ${message}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

/** Request options that send a PATCH with the given content type (client-node defaults to JSON patch). */
export function patchOptions(
  strategy: PatchStrategy,
): ConfigurationOptions {
  return setHeaderOptions("Content-Type", strategy) as ConfigurationOptions;
}

/** Options for a strategic merge patch. */
export const STRATEGIC_MERGE_PATCH: ConfigurationOptions = patchOptions(
  PatchStrategy.StrategicMergePatch,
);

/** Options for a JSON merge patch (RFC 7386). */
export const MERGE_PATCH: ConfigurationOptions = patchOptions(PatchStrategy.MergePatch);

/**
 * A MicroTime (`2006-01-02T15:04:05.000000Z`), which the apiserver demands for Lease renew
 * times; client-node's `V1MicroTime` serializes with the six fraction digits.
 *
 * @param date the instant; default now.
 */
export function microTime(date: Date = new Date()): V1MicroTime {
  return new V1MicroTime(date.getTime());
}
