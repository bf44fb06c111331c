/**
 * Who may use the kubelet API, decided as the kubelet decides it: authentication by client
 * certificate (against `--client-ca-file`) or bearer token (a TokenReview at the API server),
 * then authorization by a SubjectAccessReview on the node object: resource `nodes`, this node's
 * name, subresource `stats`, `metrics`, `log` or else `proxy` (the kubelet's own mapping; so
 * `/containerLogs` needs `nodes/proxy`), verb from the HTTP method. Anonymous requests are
 * refused. Answers of the API server are cached briefly, so a `kubectl logs -f` or a scrape
 * every 15 s does not turn into a review each time.
 *
 * @module
 */
import type { X509Certificate } from "node:crypto";
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { type CertificateUser, verifyClientCertificate } from "./x509.ts";

/** An authenticated caller. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What a request asks to do, in the authorizer's terms. */
export interface RequestAttributes {
  verb: string;
  resource: "nodes";
  subresource: "stats" | "metrics" | "log" | "proxy";
  name: string;
}

/** True when `path` is `prefix` or lies below it (the kubelet's `isSubpath`). */
function isSubpath(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix + "/");
}

const VERBS: Record<string, string> = {
  GET: "get",
  HEAD: "get",
  POST: "create",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

/** What authorization looks at of a kubelet API request. */
export interface RequestLine {
  /** The HTTP method: it maps to the verb. */
  method: string;
  /** The URL's path: it maps to the subresource. */
  path: string;
}

/**
 * The authorization attributes of a request, mapped as the kubelet maps them.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const get = (path: string) => requestAttributes("n1", { method: "GET", path });
 * assert.equal(get("/stats/summary").subresource, "stats");
 * assert.equal(get("/containerLogs/a/b/c").subresource, "proxy");
 * ```
 */
export function requestAttributes(nodeName: string, request: RequestLine): RequestAttributes {
  const { method, path } = request;
  const subresource = isSubpath(path, "/stats")
    ? "stats"
    : isSubpath(path, "/metrics")
    ? "metrics"
    : isSubpath(path, "/logs")
    ? "log"
    : "proxy";
  return { verb: VERBS[method] ?? "", resource: "nodes", subresource, name: nodeName };
}

/** The parts of a request authentication looks at. */
export interface Credentials {
  /** The verified-or-not certificate the client presented over TLS. */
  certificate?: X509Certificate;
  /** The `Authorization` header. */
  authorization?: string | null;
}

/** Answers from the API server: TokenReview and SubjectAccessReview. */
export interface ReviewClient {
  /** The user a bearer token belongs to, or undefined when the API server does not know it. */
  reviewToken(token: string): Promise<UserInfo | undefined>;
  /** Whether `user` may do `attributes`, with the authorizer's reason. */
  reviewAccess(user: UserInfo, attributes: RequestAttributes): Promise<Decision>;
}

/** An authorization decision. */
export interface Decision {
  allowed: boolean;
  reason?: string;
}

/** A review client that asks the API server with the node's own credentials. */
export function apiServerReviews(kubeConfig: KubeConfig): ReviewClient {
  const authn = kubeConfig.makeApiClient(AuthenticationV1Api);
  const authz = kubeConfig.makeApiClient(AuthorizationV1Api);
  return {
    async reviewToken(token) {
      const review = await authn.createTokenReview({
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
      });
      const s = review.status;
      if (!s?.authenticated || !s.user?.username) return undefined;
      return {
        username: s.user.username,
        uid: s.user.uid,
        groups: s.user.groups ?? [],
        extra: s.user.extra,
      };
    },
    async reviewAccess(user, attributes) {
      const review = await authz.createSubjectAccessReview({
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            resourceAttributes: { ...attributes, version: "v1" },
          },
        },
      });
      return { allowed: review.status?.allowed ?? false, reason: review.status?.reason };
    },
  };
}

/** Options of {@link RequestAuth}. */
export interface RequestAuthOptions {
  nodeName: string;
  /** Trusted client CAs; without them client certificates are not accepted. */
  clientCAs?: readonly X509Certificate[];
  reviews: ReviewClient;
  /** How long a positive answer is reused (ms); default 10 s. */
  allowedTTLms?: number;
  /** How long a negative answer is reused (ms); default 5 s. */
  deniedTTLms?: number;
  now?: () => number;
  /** Where refusals are explained (the client only sees 401/403). */
  log?: (message: string) => void;
}

/** The outcome of checking one request. */
export type AuthResult =
  | { status: 200; user: UserInfo }
  | { status: 401; message: string }
  | { status: 403; message: string };

/** Authenticates and authorizes kubelet API requests; see the module doc. */
export class RequestAuth {
  readonly #o: RequestAuthOptions;
  readonly #now: () => number;
  readonly #tokens = new TTLCache<UserInfo | undefined>();
  readonly #decisions = new TTLCache<Decision>();

  constructor(options: RequestAuthOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => Date.now());
  }

  /** Checks one request: 200 with the user, 401 (who are you?) or 403 (not allowed). */
  async check(request: RequestLine, credentials: Credentials): Promise<AuthResult> {
    const user = await this.authenticate(credentials);
    if (!user) return { status: 401, message: "Unauthorized" };
    const attributes = requestAttributes(this.#o.nodeName, request);
    const key = JSON.stringify([user, attributes]);
    const decision = await this.#cached(this.#decisions, key, async () => {
      const d = await this.#o.reviews.reviewAccess(user, attributes);
      return { value: d, allowed: d.allowed };
    });
    if (decision.allowed) return { status: 200, user };
    return {
      status: 403,
      message: `Forbidden (user=${user.username}, verb=${attributes.verb}, resource=nodes, ` +
        `subresource=${attributes.subresource})`,
    };
  }

  /** The caller, from a valid client certificate or a bearer token the API server knows. */
  async authenticate(credentials: Credentials): Promise<UserInfo | undefined> {
    if (credentials.certificate && this.#o.clientCAs?.length) {
      try {
        return withAuthenticated(
          verifyClientCertificate(credentials.certificate, {
            roots: this.#o.clientCAs,
            currentTime: new Date(this.#now()),
          }),
        );
      } catch (e) {
        this.#o.log?.(`kubelet API: client certificate refused: ${(e as Error).message}`);
      }
    }
    const token = credentials.authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (!token) return undefined;
    return await this.#cached(this.#tokens, await sha256(token), async () => {
      const user = await this.#o.reviews.reviewToken(token);
      return { value: user, allowed: user !== undefined };
    });
  }

  async #cached<T>(
    cache: TTLCache<T>,
    key: string,
    fetch: () => Promise<{ value: T; allowed: boolean }>,
  ): Promise<T> {
    const now = this.#now();
    const hit = cache.get(key, now);
    if (hit) return hit.value;
    const { value, allowed } = await fetch();
    const ttl = allowed ? this.#o.allowedTTLms ?? 10_000 : this.#o.deniedTTLms ?? 5_000;
    cache.set(key, value, now, now + ttl);
    return value;
  }
}

function withAuthenticated(user: CertificateUser): UserInfo {
  return { username: user.username, groups: [...user.groups, "system:authenticated"] };
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A map whose entries expire; expired entries are swept as new ones arrive. */
class TTLCache<T> {
  readonly #entries = new Map<string, { value: T; expires: number }>();

  get(key: string, now: number): { value: T } | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires > now) return { value: entry.value };
    this.#entries.delete(key);
    return undefined;
  }

  set(key: string, value: T, now: number, expires: number): void {
    if (this.#entries.size > 1000) {
      for (const [k, e] of this.#entries) if (e.expires <= now) this.#entries.delete(k);
    }
    this.#entries.set(key, { value, expires });
  }
}
