/**
 * systemk's own metrics, served at `/metrics`: the layers below the HTTP server (systemd,
 * kube, pods) update them here, so none of them imports the HTTP layer.
 *
 * @example Usage
 * ```ts
 * import { reconcileDuration, systemkMetrics } from "./mod.ts";
 * reconcileDuration.observe({}, 0.012);
 * const text = systemkMetrics.render();
 * ```
 *
 * @module
 */
import { type Counter, type Gauge, type Histogram, Registry } from "./registry.ts";

export * from "./registry.ts";

/** Latency buckets in seconds, 1 ms to 1 min. */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** systemk's own metrics, served at `/metrics`. */
export const systemkMetrics: Registry = new Registry();

/** Pods on this node per phase (`phase` label); set as a whole with `replaceAll`. */
export const podsByPhase: Gauge = systemkMetrics.gauge(
  "systemk_pods",
  "Pods on this node by phase.",
);

/** How long one reconcile of one pod took. */
export const reconcileDuration: Histogram = systemkMetrics.histogram(
  "systemk_pod_reconcile_duration_seconds",
  "Duration of one reconcile of one pod.",
  { buckets: LATENCY_BUCKETS },
);

/** Reconciles that ended in an error. */
export const reconcileErrors: Counter = systemkMetrics.counter(
  "systemk_pod_reconcile_errors_total",
  "Pod reconciles that ended in an error.",
);

/** Latency of pod status writes to the API server. */
export const statusWriteDuration: Histogram = systemkMetrics.histogram(
  "systemk_pod_status_write_duration_seconds",
  "Latency of pod status patches to the API server.",
  { buckets: LATENCY_BUCKETS },
);

/** Pod status writes that failed. */
export const statusWriteErrors: Counter = systemkMetrics.counter(
  "systemk_pod_status_write_errors_total",
  "Pod status patches that failed.",
);

/** Duration of package (image) installs; `result` is `success` or `failure`. */
export const aptInstallDuration: Histogram = systemkMetrics.histogram(
  "systemk_package_install_duration_seconds",
  "Duration of package installs for images, by result.",
  { buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] },
);

/** Watches restarted (after an error, a timeout or a relist); `resource` label. */
export const watchRestarts: Counter = systemkMetrics.counter(
  "systemk_watch_restarts_total",
  "Watches of the API server that were restarted, by resource.",
);

/**
 * D-Bus signals systemk's systemd connection received, by `member` and `interface` (for
 * `PropertiesChanged`: the interface whose properties changed). Each one is unmarshalled.
 */
export const dbusSignals: Counter = systemkMetrics.counter(
  "systemk_dbus_signals_received_total",
  "D-Bus signals received from systemd, by member and interface.",
);

/** Requests to the kubelet API by path group and status code. */
export const apiRequests: Counter = systemkMetrics.counter(
  "systemk_kubelet_api_requests_total",
  "Requests to the kubelet API by path and HTTP status code.",
);
