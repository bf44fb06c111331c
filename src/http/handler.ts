/**
 * The kubelet API's routes as one function from a web `Request` (plus the client's TLS
 * credentials) to a `Response`, independent of the server that carries it:
 *
 * - `/healthz`, `/pods`, `/runningpods/`
 * - `/containerLogs/{namespace}/{pod}/{container}` (from journald)
 * - `/stats/summary`, `/metrics/resource` (usage for metrics-server and `kubectl top`)
 * - `/metrics` (systemk's own metrics)
 * - `/exec`, `/attach`, `/portForward`, `/run`: 501, not supported yet
 *
 * Every request is authenticated and authorized first (see {@link ./auth.ts}).
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Credentials, RequestAuth } from "./auth.ts";
import { followUntilRunEnds, type Journal, whenRunWrites } from "./journal.ts";
import { LogOptionsError, parseLogOptions } from "./logs.ts";
import { apiRequests, systemkMetrics } from "./metrics.ts";
import {
  containerUnits,
  creationMillis,
  findPod,
  isRunning,
  type PodSource,
  type UnitPropertiesReader,
} from "./pods.ts";
import type { ResourceSampler } from "./resources.ts";
import { buildSummary, renderResourceMetrics } from "./stats.ts";

/** Everything the routes read from. */
export interface KubeletHandlerOptions {
  nodeName: string;
  pods: PodSource;
  unitProperties: UnitPropertiesReader;
  journal: Journal;
  sampler: ResourceSampler;
  auth: RequestAuth;
  /** Clock in ms since the epoch; default `Date.now`. */
  now?: () => number;
  /** Where failures that the client only sees as 500 are explained. */
  log?: (message: string) => void;
}

/** Handles one request. */
export type KubeletHandler = (request: Request, credentials: Credentials) => Promise<Response>;

const NOT_SUPPORTED = ["/exec", "/attach", "/portForward", "/run"];

/** Builds the request handler; see the module doc. */
export function kubeletHandler(options: KubeletHandlerOptions): KubeletHandler {
  const now = options.now ?? (() => Date.now());

  async function route(request: Request, path: string): Promise<Response> {
    const url = new URL(request.url);
    const get = request.method === "GET" || request.method === "HEAD";
    const unsupported = NOT_SUPPORTED.find((p) => path === p || path.startsWith(`${p}/`));
    if (unsupported) {
      return text(
        501,
        `${unsupported.slice(1)} is not supported by systemk yet: containers are systemd units, ` +
          `use ssh and systemctl/journalctl on the node meanwhile`,
      );
    }
    if (!get) return text(405, `${request.method} is not allowed on ${path}`);
    if (path === "/healthz") return text(200, "ok");
    if (path === "/pods" || path === "/pods/") return json(200, podList(options.pods.pods()));
    if (path === "/runningpods" || path === "/runningpods/") {
      return json(200, podList(await runningPods()));
    }
    if (path.startsWith("/containerLogs/")) return await containerLogs(path, url.searchParams);
    if (path === "/stats/summary" || path === "/stats/summary/") {
      const { sample, previous } = await options.sampler.sample();
      return json(200, buildSummary(options.nodeName, sample, previous));
    }
    if (path === "/metrics/resource") {
      const { sample } = await options.sampler.sample();
      return new Response(renderResourceMetrics(sample), { headers: PROMETHEUS });
    }
    if (path === "/metrics") return new Response(systemkMetrics.render(), { headers: PROMETHEUS });
    return text(404, `404 page not found: ${path}`);
  }

  async function containerLogs(path: string, query: URLSearchParams): Promise<Response> {
    const parts = path.slice("/containerLogs/".length).split("/").map(decodeURIComponent);
    if (parts.length !== 3 || parts.some((p) => !p)) {
      return text(400, "expected /containerLogs/{namespace}/{pod}/{container}");
    }
    const [namespace, name, container] = parts;
    const pod = findPod(options.pods, namespace, name);
    if (!pod) return text(404, `pod "${namespace}/${name}" does not exist on this node`);
    const unit = containerUnits(pod).get(container);
    if (!unit) return text(404, `container "${container}" not found in pod "${namespace}/${name}"`);
    let logOptions;
    try {
      logOptions = parseLogOptions(query, BigInt(now()) * 1000n);
    } catch (e) {
      if (e instanceof LogOptionsError) return text(400, e.message);
      throw e;
    }
    const props = await options.unitProperties(unit).catch(() => undefined);
    // The runtime restarts containers itself (systemd's NRestarts stays 0): a restartCount of
    // 0 means no previous run of this pod, whatever the journal holds of an earlier one.
    const restartCount =
      [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
        .find((c) => c.name === container)?.restartCount ?? 0;
    if (logOptions.previous && props?.ExecMainStartTimestamp && restartCount === 0) {
      return text(400, `previous terminated container "${container}" in pod "${name}" not found`);
    }
    // Whole seconds: creationTimestamp has no finer precision.
    const created = BigInt(Math.floor(creationMillis(pod) / 1000)) * 1_000_000n;
    const run = await options.journal.findRun(unit, {
      startedMicros: BigInt(props?.ExecMainStartTimestamp ?? 0),
      previous: logOptions.previous,
      sinceMicros: created > 0n ? created : undefined,
    });
    if (run === undefined) {
      return text(
        400,
        logOptions.previous
          ? `previous terminated container "${container}" in pod "${name}" not found`
          : `container "${container}" in pod "${name}" is waiting to start`,
      );
    }
    // A previous run is over: its log is complete, there is nothing to follow.
    const follow = logOptions.follow && !logOptions.previous;
    const read = (stream: string) => options.journal.read(unit, stream, { ...logOptions, follow });
    if (!follow) {
      // null: started, nothing written yet: an empty log, as for a quiet container.
      return new Response(run === null ? "" : read(run), { headers: { "content-type": TEXT } });
    }
    const started = props?.ExecMainStartTimestamp ?? 0;
    const ended = async () => {
      const now = await options.unitProperties(unit).catch(() => undefined);
      return !now || now.ExecMainStartTimestamp !== started || !isRunning(now);
    };
    const body = run === null
      ? whenRunWrites(
        () => options.journal.findRun(unit, { startedMicros: BigInt(started), previous: false }),
        read,
        ended,
      )
      : read(run);
    return new Response(followUntilRunEnds(body, ended), { headers: { "content-type": TEXT } });
  }

  async function runningPods(): Promise<V1Pod[]> {
    const pods = await Promise.all(
      options.pods.pods().map(async (pod) => {
        const units = containerUnits(pod);
        const containers = await Promise.all(
          (pod.spec?.containers ?? []).map(async (c) => {
            const props = await options.unitProperties(units.get(c.name)!).catch(() => undefined);
            return props && isRunning(props) ? [{ name: c.name, image: c.image }] : [];
          }),
        );
        const running = containers.flat();
        if (running.length === 0) return [];
        const m = pod.metadata!;
        return [{
          metadata: { name: m.name, namespace: m.namespace, uid: m.uid },
          spec: { containers: running },
        }];
      }),
    );
    return pods.flat();
  }

  return async (request, credentials) => {
    const path = new URL(request.url).pathname;
    let response: Response;
    const auth = await options.auth.check(request.method, path, credentials);
    if (auth.status !== 200) {
      response = text(auth.status, auth.message);
    } else {
      try {
        response = await route(request, path);
      } catch (e) {
        options.log?.(`kubelet API: ${request.method} ${path}: ${(e as Error).message}`);
        response = text(500, `internal error: ${(e as Error).message}`);
      }
    }
    apiRequests.inc({ path: pathGroup(path), code: String(response.status) });
    return response;
  };
}

/** The first path segment, so label values stay few (`/containerLogs`, `/stats`, ...). */
function pathGroup(path: string): string {
  return "/" + (path.split("/")[1] ?? "");
}

const TEXT = "text/plain; charset=utf-8";
const PROMETHEUS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

function text(status: number, body: string): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": TEXT },
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function podList(items: readonly V1Pod[]) {
  return { kind: "PodList", apiVersion: "v1", metadata: {}, items };
}
