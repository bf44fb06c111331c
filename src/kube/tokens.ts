/**
 * Service account tokens for pods' projected `serviceAccountToken` volume sources (the
 * `kube-api-access-*` volume the apiserver adds to every pod): requested with the node's own
 * credentials as TokenRequests bound to the pod, cached, and renewed when 80 % of their
 * lifetime has passed (the kubelet's rule), so a pod always holds a valid token.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { serviceAccountTokenKey } from "../plan/mod.ts";
import { describeError, type KubeClients, type KubeLogger } from "./client.ts";
import { log } from "../log/mod.ts";

/** Options of {@link ServiceAccountTokens}. */
export interface ServiceAccountTokensOptions {
  clients: Pick<KubeClients, "core">;
  /** Called when a pod's tokens are due for renewal: re-plan the pod to write new ones. */
  onRenewalDue(podUID: string): void;
  log?: KubeLogger;
}

interface CachedToken {
  token: string;
  renewAt: number;
}

/** The kubelet's default when a source gives no expirationSeconds. */
const DEFAULT_EXPIRATION_SECONDS = 3600;

/** Requests, caches and renews the tokens of pods on this node. */
export class ServiceAccountTokens {
  readonly #opts: ServiceAccountTokensOptions;
  readonly #cache = new Map<string, Map<string, CachedToken>>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  /** @param options clients and the renewal callback. */
  constructor(options: ServiceAccountTokensOptions) {
    this.#opts = options;
  }

  /**
   * The tokens `pod`'s projected volumes need, keyed by `serviceAccountTokenKey`. A token the
   * apiserver refuses is left out (the planner then writes no token file) and logged.
   */
  async tokensFor(pod: V1Pod): Promise<Map<string, string>> {
    const uid = pod.metadata!.uid!;
    const cached = this.#cache.get(uid) ?? new Map<string, CachedToken>();
    const tokens = new Map<string, string>();
    const now = Date.now();
    for (const volume of pod.spec?.volumes ?? []) {
      for (const source of volume.projected?.sources ?? []) {
        const wanted = source.serviceAccountToken;
        if (!wanted) continue;
        const key = serviceAccountTokenKey(volume.name, wanted.path);
        let entry = cached.get(key);
        if (!entry || entry.renewAt <= now) {
          try {
            entry = await this.#request(pod, wanted.audience, wanted.expirationSeconds);
            cached.set(key, entry);
          } catch (e) {
            (this.#opts.log ?? log).warn(
              `token for pod ${pod.metadata!.namespace}/${pod.metadata!.name}: ${describeError(e)}`,
            );
            continue;
          }
        }
        tokens.set(key, entry.token);
      }
    }
    this.#cache.set(uid, cached);
    this.#schedule(uid, cached);
    return tokens;
  }

  /** Forgets a pod's tokens and its renewal timer. */
  release(podUID: string): void {
    clearTimeout(this.#timers.get(podUID));
    this.#timers.delete(podUID);
    this.#cache.delete(podUID);
  }

  /** Stops every renewal timer. */
  stop(): void {
    for (const uid of [...this.#timers.keys()]) this.release(uid);
  }

  async #request(
    pod: V1Pod,
    audience: string | undefined,
    expirationSeconds: number | undefined,
  ): Promise<CachedToken> {
    const requested = performance.now();
    const issued = Date.now();
    const response = await this.#opts.clients.core.createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName || "default",
      namespace: pod.metadata!.namespace!,
      body: {
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds: expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS,
          boundObjectRef: {
            apiVersion: "v1",
            kind: "Pod",
            name: pod.metadata!.name!,
            uid: pod.metadata!.uid!,
          },
        },
      },
    });
    const expires = response.status?.expirationTimestamp
      ? new Date(response.status.expirationTimestamp).getTime()
      : issued + (expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS) * 1000;
    const lifetime = Math.max(0, expires - issued - (performance.now() - requested));
    return { token: response.status!.token, renewAt: issued + lifetime * 0.8 };
  }

  #schedule(uid: string, cached: Map<string, CachedToken>): void {
    clearTimeout(this.#timers.get(uid));
    if (cached.size === 0) return;
    const next = Math.min(...[...cached.values()].map((t) => t.renewAt));
    const timer = setTimeout(() => {
      this.#timers.delete(uid);
      this.#opts.onRenewalDue(uid);
    }, Math.max(1000, next - Date.now()));
    // A renewal timer alone must not keep the process alive at shutdown.
    Deno.unrefTimer(timer as unknown as number);
    this.#timers.set(uid, timer);
  }
}
