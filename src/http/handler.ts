/**
 * The kubelet API's routes as one function from a web `Request` (plus the client's TLS
 * credentials) to a `Response` or a switch to a streaming protocol, independent of the server
 * that carries it:
 *
 * - `/healthz`, `/pods`, `/runningpods/`
 * - `/containerLogs/{namespace}/{pod}/{container}` (from journald)
 * - `/logs/`: the node's `/var/log` and the node log query (see {@link ./node_logs.ts})
 * - `/stats/summary`, `/metrics/resource` (usage for metrics-server and `kubectl top`)
 * - `/metrics` (systemk's own metrics)
 * - `/exec`, `/attach`, `/portForward`: SPDY/3.1 streaming (see {@link ./streaming.ts});
 *   `/run` (POST, `?cmd=`): a command's output in one answer
 *
 * Every request is authenticated and authorized first (see {@link ./auth.ts}).
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Credentials, RequestAuth } from "./auth.ts";
import { followUntilRunEnds, type Journal, whenRunWrites } from "./journal.ts";
import { LogOptionsError, parseLogOptions } from "./logs.ts";
import type { NodeLogs } from "./node_logs.ts";
import { apiRequests, systemkMetrics } from "../metrics/mod.ts";
import { containerUnit, creationMillis, findPod, isRunning, type PodSource } from "./pods.ts";
import type { ResourceSampler } from "./resources.ts";
import { TEXT, text } from "./responses.ts";
import { buildSummary, renderResourceMetrics } from "./stats.ts";
import {
  type CommandOutcome,
  dialLoopback,
  isProtocolSwitch,
  negotiate,
  PORT_FORWARD_V1,
  type PortDialer,
  portForward,
  type ProtocolSwitch,
  pump,
  REMOTE_COMMAND_V4,
  remoteCommand,
  runExec,
  streamOptions,
} from "./streaming.ts";
import { type ExecOptions, type ExecProcess, runToCompletion } from "../exec/container.ts";

/** Everything the routes read from. */
export interface KubeletHandlerOptions {
  nodeName: string;
  pods: PodSource;
  journal: Journal;
  sampler: ResourceSampler;
  auth: RequestAuth;
  /** Clock in ms since the epoch; default `Date.now`. */
  now?: () => number;
  /** Runs a command in the container of a unit (`kubectl exec`); absent: exec answers 501. */
  exec?: (unit: string, options: ExecOptions) => Promise<ExecProcess>;
  /** Serves `/logs/`; absent (`--enable-system-log-handler=false`): 405, as the kubelet. */
  nodeLogs?: NodeLogs;
  /** Connects to a pod's port (`kubectl port-forward`); default {@link dialLoopback}. */
  dial?: PortDialer;
  /** Where failures that the client only sees as 500 are explained. */
  log?: (message: string) => void;
}

/** Handles one request: a response, or a switch to a streaming protocol. */
export type KubeletHandler = (
  request: Request,
  credentials: Credentials,
) => Promise<Response | ProtocolSwitch>;

/** Builds the request handler; see the module doc. */
export function kubeletHandler(options: KubeletHandlerOptions): KubeletHandler {
  const now = options.now ?? (() => Date.now());

  async function route(request: Request, path: string): Promise<Response | ProtocolSwitch> {
    const url = new URL(request.url);
    const get = request.method === "GET" || request.method === "HEAD";
    if (path.startsWith("/run/")) {
      if (request.method !== "POST") {
        return text(405, `${request.method} is not allowed on ${path}`);
      }
      return await run(path, url.searchParams);
    }
    const streaming = STREAMING.find((p) => path.startsWith(`/${p}/`));
    if (streaming) {
      if (request.method !== "GET" && request.method !== "POST") {
        return text(405, `${request.method} is not allowed on ${path}`);
      }
      return streaming === "portForward"
        ? portForwardRoute(request, path)
        : remoteCommandRoute(request, path, streaming);
    }
    if (!get) return text(405, `${request.method} is not allowed on ${path}`);
    if (path === "/healthz") return text(200, "ok");
    if (path === "/pods" || path === "/pods/") return json(200, podList(options.pods.pods()));
    if (path === "/runningpods" || path === "/runningpods/") {
      return json(200, podList(runningPods()));
    }
    if (path.startsWith("/containerLogs/")) return await containerLogs(path, url.searchParams);
    if (path === "/logs" || path.startsWith("/logs/")) {
      if (!options.nodeLogs) return text(405, "logs endpoint is disabled.");
      return await options.nodeLogs.serve(path.slice("/logs".length), url.searchParams);
    }
    if (path === "/stats/summary" || path === "/stats/summary/") {
      const { sample, previous } = await options.sampler.sample();
      return json(200, buildSummary(options.nodeName, sample, { previous }));
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
    const pod = findPod(options.pods, { namespace, name });
    if (!pod) return text(404, `pod "${namespace}/${name}" does not exist on this node`);
    const unit = containerUnit(options.pods, { pod, container });
    if (typeof unit !== "string") return text(unit.status, unit.message);
    let logOptions;
    try {
      logOptions = parseLogOptions(query, BigInt(now()) * 1000n);
    } catch (e) {
      if (e instanceof LogOptionsError) return text(400, e.message);
      throw e;
    }
    const props = options.pods.unitState(unit);
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
    const ended = () => {
      const now = options.pods.unitState(unit);
      return Promise.resolve(!now || now.ExecMainStartTimestamp !== started || !isRunning(now));
    };
    const body = run === null
      ? whenRunWrites(
        () => options.journal.findRun(unit, { startedMicros: BigInt(started), previous: false }),
        read,
        { ended },
      )
      : read(run);
    return new Response(followUntilRunEnds(body, ended), { headers: { "content-type": TEXT } });
  }

  /** The pod of a streaming path's `{namespace}/{pod}[/{uid}]`, or why there is none. */
  function streamingPod(namespace: string, name: string, uid?: string): V1Pod | Response {
    const pod = findPod(options.pods, { namespace, name });
    if (!pod || (uid && pod.metadata?.uid !== uid)) {
      return text(404, `pod "${namespace}/${name}" does not exist on this node`);
    }
    return pod;
  }

  /**
   * The kubelet's legacy `/run/{ns}/{pod}[/{uid}]/{container}?cmd=a b c`: the command (split
   * at spaces, as the kubelet does) runs to its end; the answer is its stdout then stderr, or
   * 500 with them when it fails.
   */
  async function run(path: string, query: URLSearchParams): Promise<Response> {
    const parts = path.split("/").slice(2).map(decodeURIComponent);
    if (parts.length < 3 || parts.length > 4 || parts.some((p) => !p)) {
      return text(400, "expected /run/{namespace}/{pod}[/{uid}]/{container}?cmd=...");
    }
    const pod = streamingPod(parts[0], parts[1], parts.length === 4 ? parts[2] : undefined);
    if (pod instanceof Response) return pod;
    const container = parts.at(-1)!;
    const unit = containerUnit(options.pods, { pod, container });
    if (typeof unit !== "string") return text(unit.status, unit.message);
    const command = (query.get("cmd") ?? "").split(" ").filter(Boolean);
    if (command.length === 0) return text(400, "no command given (cmd=)");
    if (!options.exec) return text(501, "run needs systemk's systemd connection");
    let outcome;
    try {
      outcome = await runToCompletion(await options.exec(unit, { command }), RUN_OUTPUT_LIMIT);
    } catch (e) {
      return text(500, `error executing command in container: ${(e as Error).message}`);
    }
    if (outcome.exitCode !== 0) {
      const how = outcome.exitCode === null
        ? `was killed by ${outcome.signal}`
        : `exited with ${outcome.exitCode}`;
      return text(500, `command '${command.join(" ")}' ${how}: ${outcome.output}`);
    }
    return new Response(outcome.output, { headers: { "content-type": TEXT } });
  }

  function portForwardRoute(request: Request, path: string): Response | ProtocolSwitch {
    const parts = path.split("/").slice(2).map(decodeURIComponent);
    if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p)) {
      return text(400, "expected /portForward/{namespace}/{pod}[/{uid}]");
    }
    const pod = streamingPod(parts[0], parts[1], parts[2]);
    if (pod instanceof Response) return pod;
    const protocol = negotiate(request, [PORT_FORWARD_V1]);
    if (protocol instanceof Response) return protocol;
    return portForward(`${parts[0]}/${parts[1]}`, {
      dial: options.dial ?? dialLoopback,
      log: options.log,
    });
  }

  function remoteCommandRoute(
    request: Request,
    path: string,
    kind: "exec" | "attach",
  ): Response | ProtocolSwitch {
    const url = new URL(request.url);
    const parts = path.split("/").slice(2).map(decodeURIComponent);
    if (parts.length < 3 || parts.length > 4 || parts.some((p) => !p)) {
      return text(400, `expected /${kind}/{namespace}/{pod}[/{uid}]/{container}`);
    }
    const [namespace, name] = parts;
    const container = parts.at(-1)!;
    const streams = streamOptions(url.searchParams);
    if (typeof streams === "string") return text(400, streams);
    const pod = streamingPod(namespace, name, parts.length === 4 ? parts[2] : undefined);
    if (pod instanceof Response) return pod;
    const unit = containerUnit(options.pods, { pod, container });
    if (typeof unit !== "string") return text(unit.status, unit.message);
    const command = url.searchParams.getAll("command");
    if (kind === "exec" && command.length === 0) return text(400, "no command given");
    const protocol = negotiate(request, [REMOTE_COMMAND_V4]);
    if (protocol instanceof Response) return protocol;
    const exec = options.exec;
    if (kind === "exec" && !exec) {
      return text(501, "exec needs systemk's systemd connection, which this mode lacks");
    }
    if (kind === "exec") {
      return remoteCommand(
        streams,
        (s, signal) => runExec((stdin, tty) => exec!(unit, { command, stdin, tty }), s, { signal }),
        { log: options.log },
      );
    }
    return remoteCommand(streams, async (s, signal): Promise<CommandOutcome> => {
      if (s.stdin) {
        return {
          error: `container "${container}" has no standard input to attach to: systemk runs ` +
            `containers as systemd units with StandardInput=null; use kubectl exec -i`,
          reason: "BadRequest",
          code: 400,
        };
      }
      // Attaching shows what the container writes from now on: its log, followed.
      const logs = await containerLogs(
        `/containerLogs/${namespace}/${name}/${container}`,
        new URLSearchParams({ follow: "true", tailLines: "0" }),
      );
      if (!logs.ok || !logs.body) {
        return { error: (await logs.text()).trim(), reason: "BadRequest", code: logs.status };
      }
      await pump(logs.body, { to: s.stdout ?? s.stderr, signal });
      return { exitCode: 0 };
    }, { log: options.log });
  }

  function runningPods(): V1Pod[] {
    return options.pods.pods().flatMap((pod) => {
      const units = options.pods.containerUnits(pod);
      const running = (pod.spec?.containers ?? []).flatMap((c) => {
        const unit = units.get(c.name);
        const props = unit ? options.pods.unitState(unit) : undefined;
        return props && isRunning(props) ? [{ name: c.name, image: c.image }] : [];
      });
      if (running.length === 0) return [];
      const m = pod.metadata!;
      return [{
        metadata: { name: m.name, namespace: m.namespace, uid: m.uid },
        spec: { containers: running },
      }];
    });
  }

  return async (request, credentials) => {
    const path = new URL(request.url).pathname;
    let response: Response | ProtocolSwitch;
    const auth = await options.auth.check({ method: request.method, path }, credentials);
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
    const code = isProtocolSwitch(response) ? 101 : response.status;
    apiRequests.inc({ path: pathGroup(path), code: String(code) });
    return response;
  };
}

/** How much of each output stream `/run` answers with. */
const RUN_OUTPUT_LIMIT = 1024 * 1024;

/** The streaming endpoints, by their first path segment. */
const STREAMING = ["exec", "attach", "portForward"] as const;

/** The first path segment, so label values stay few (`/containerLogs`, `/stats`, ...). */
function pathGroup(path: string): string {
  return "/" + (path.split("/")[1] ?? "");
}

const PROMETHEUS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function podList(items: readonly V1Pod[]) {
  return { kind: "PodList", apiVersion: "v1", metadata: {}, items };
}
