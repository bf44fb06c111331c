/**
 * Kubernetes client setup for systemk: the kubeconfig of the node identity, the API clients
 * built from it, and small helpers the other `src/kube` modules share (error codes, patch
 * content types, MicroTime).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
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
import type { ConfigurationOptions, RequestContext } from "@kubernetes/client-node";

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

/**
 * How long an idle kept-alive connection stays open: below the idle timeouts of the apiserver
 * and of the load balancers usually put before it (haproxy in kubeadm's HA guide: 20 s), so a
 * request never goes out on a connection the other side is closing; above the Lease renewal
 * interval (10 s), so an idle node keeps one connection.
 */
const IDLE_CONNECTION_MS = 15_000;
/**
 * Connections to the apiserver at once; more requests queue. A 2-core apiserver gains nothing
 * from more, and each open TLS connection costs memory. Watches do not count: they go through
 * their own connections (client-node's fetch path, {@link KubeConfig.applyToFetchOptions}).
 */
const MAX_CONNECTIONS = 16;
/** The agent options client-node derives from the kubeconfig; a change means new credentials. */
const TLS_OPTIONS = ["ca", "cert", "key", "pfx", "passphrase", "rejectUnauthorized", "servername"];

/**
 * A kubeconfig whose API calls share kept-alive connections. client-node 1.4.0 builds a new
 * agent without keep-alive for every request, so each call paid a TCP connect and a TLS
 * handshake with the client certificate (and the apiserver answered `Connection: close`).
 * The shared agent is built from the options client-node derives per request (it re-reads
 * certificate files each time); when they change — the client certificate was renewed — the
 * old agent and its connections are closed, as the kubelet does on rotation, so nothing keeps
 * talking with the old identity. Proxied clusters keep client-node's own agents.
 */
export class KeepAliveKubeConfig extends KubeConfig {
  #shared?: http.Agent;

  /** Applies credentials as client-node does, then puts the request on the shared agent. */
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    if (fresh && !this.getCurrentCluster()?.proxyUrl) context.setAgent(this.#sharedLike(fresh));
  }

  #sharedLike(fresh: http.Agent): http.Agent {
    const options = (fresh as http.Agent & { options: Record<string, unknown> }).options;
    const current = this.#shared as (http.Agent & { options: Record<string, unknown> }) | undefined;
    if (current && TLS_OPTIONS.every((k) => sameOption(current.options[k], options[k]))) {
      return current;
    }
    current?.destroy();
    const settings = {
      ...Object.fromEntries(TLS_OPTIONS.map((k) => [k, options[k]])),
      keepAlive: true,
      timeout: IDLE_CONNECTION_MS,
      maxSockets: MAX_CONNECTIONS,
      maxFreeSockets: MAX_CONNECTIONS,
    };
    this.#shared = fresh instanceof https.Agent
      ? new https.Agent(settings)
      : new http.Agent(settings);
    return this.#shared;
  }
}

function sameOption(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  return a === b;
}

/**
 * Loads a kubeconfig from `path`, or else the client's default search ($KUBECONFIG, then
 * ~/.kube/config, then the in-cluster service account).
 *
 * @param path kubeconfig file of the node identity; optional.
 * @return the loaded kubeconfig; its API calls keep connections alive.
 * @throws when the file cannot be read or names no current cluster.
 * @example Usage
 * ```ts
 * const kc = loadKubeConfig(Deno.env.get("KUBECONFIG"));
 * ```
 */
export function loadKubeConfig(path?: string): KeepAliveKubeConfig {
  const kc = new KeepAliveKubeConfig();
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
