/**
 * Inputs of the pure unit properties → pod status mapping.
 *
 * @module
 */
import type { V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import type { UnitProperties } from "../unit/properties.ts";
import type { ContainerResources } from "./resources.ts";

/** A container's unit as systemd reports it. */
export interface ContainerUnit {
  /** Unit name, e.g. `systemk.default.web.app.service`; named in error messages. */
  unitName: string;
  props: UnitProperties;
  /**
   * What identifies the installed image (e.g. `uptimed=1:0.4.6-3` from the unit's
   * `[X-Kubernetes]` metadata). Defaults to the container's `image` string.
   */
  imageID?: string;
  /**
   * The kernel's OOM killer killed a process of the run named by `props.InvocationID`.
   * systemd itself reports that (`Result=oom-kill`) only where the memory controller is on
   * cgroup v2; on v1/hybrid hosts (measured: systemd 252 here reports `Result=signal`,
   * SIGKILL) the caller must find out, e.g. from the unit cgroup's `memory.oom_control`
   * `oom_kill` counter or the kernel's "Memory cgroup out of memory" message naming the
   * unit's cgroup.
   */
  oomKilled?: boolean;
}

/** What the agent knows about a container that systemd does not. */
export interface ContainerOverride {
  /**
   * Why the container is not running although systemd would not say so: `ContainerCreating`
   * while its package installs, `ErrImagePull`, `ImagePullBackOff`,
   * `CreateContainerConfigError`, `CrashLoopBackOff` when the agent holds a restart back.
   * Applied like the kubelet's reason cache: never over a running container, nor over a
   * terminated one that will not be restarted.
   */
  waiting?: { reason: string; message?: string };
  /**
   * Latest readiness probe result. A running, started container without a readinessProbe is
   * ready; with one, it is not ready until this says `true`.
   */
  ready?: boolean;
  /**
   * Latest startup probe result. A running container without a startupProbe is started;
   * with one, it is not started (hence not ready) until this says `true`.
   */
  started?: boolean;
}

/** A pod-level problem to show in `status.reason` / `status.message`, e.g. a `PodError`. */
export interface PodFailure {
  reason: string;
  message: string;
}

/** The addresses the pod's status reports (systemk pods use host networking). */
export interface PodAddresses {
  hostIP: string;
  podIP: string;
}

/** Everything besides the pod itself that `computePodStatus` needs. */
export interface PodStatusOptions {
  /** Per container name (init and app names are unique within a pod): its unit, if any. */
  units: ReadonlyMap<string, ContainerUnit>;
  /** Per container name: agent and prober knowledge. */
  overrides?: ReadonlyMap<string, ContainerOverride>;
  /** Per container name: its allocated resources and those its unit runs with. */
  resources?: ReadonlyMap<string, ContainerResources>;
  /** The in-place resize conditions the pod's worker keeps (`PodResizePending`, ...). */
  resizeConditions?: readonly V1PodCondition[];
  /** Pod-level failure; the phase follows the containers unless `terminal` is set. */
  failure?: PodFailure;
  addresses: PodAddresses;
  /** The current time, for `startTime` and condition transitions. */
  now: Date;
  /**
   * The status last written (kubelet: the status manager's cache); defaults to
   * `pod.status`. Keeps `startTime`, condition transition times, terminal phases and whatever
   * systemd has forgotten. Conditions owned by others (readiness gates) come from `pod.status`,
   * where they change, when the pod has one.
   */
  previous?: V1PodStatus;
  /**
   * Whether the pod's "sandbox" (its directory and volumes) is in place, for the
   * `PodReadyToStartContainers` condition. Defaults to "some container has a unit".
   */
  sandboxReady?: boolean;
  /**
   * The agent has stopped every container of this pod for good (deleted, evicted, or
   * rejected with `failure`): the phase becomes terminal (Succeeded if every app container
   * exited 0, otherwise Failed), as the kubelet does when it finishes terminating a pod.
   */
  terminal?: boolean;
  /**
   * The agent ended the pod while keeping it (the kubelet's eviction by a pod sync handler,
   * e.g. an exceeded `activeDeadlineSeconds`): the phase is Failed whatever its containers
   * say, with `failure` as reason and message. A phase already terminal stays.
   */
  evicted?: boolean;
  /**
   * Conditions systemk sets when it ends the pod itself, beyond the kubelet's five: the
   * kubelet's `DisruptionTarget` (reason `TerminationByKubelet`) on a node shutdown. Each
   * replaces an observed condition of its type, keeping its transition time while its status
   * is unchanged.
   */
  conditions?: readonly V1PodCondition[];
  /**
   * The pod was refused at admission (the kubelet's `rejectPod`): phase Failed with `failure`
   * as reason and message, and no container statuses, since none of its containers was ever
   * created (`kubectl get pod` then shows the reason). A terminal previous status without
   * container statuses stays without them, so a rejected pod reads the same after a restart.
   */
  rejected?: boolean;
}
