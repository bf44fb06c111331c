/**
 * The setting of the systemd integration tests: a booted test systemd (tests/harness/systemd.ts)
 * and systemk's real pod runtime (src/pods/runtime.ts) driving it from the host through the real
 * D-Bus adapter (`connectUnitManager`), as standalone mode wires it, minus the package manager:
 * images are absolute paths, or package images whose unit text a test gives (`packages`).
 *
 * The runtime writes volume files by absolute path, so its state directory is one the host and
 * the test system share at the same path: a fresh directory below `/var/cache/systemk-dev`,
 * which the harness binds in.
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { localNodeFacts } from "../../src/node/local.ts";
import { UserRecords } from "../../src/node/user_records.ts";
import { type Manifests, parseManifests } from "../../src/plan/mod.ts";
import type { NodeFacts, PackageInfo } from "../../src/plan/types.ts";
import type { EventSink, UnitManager } from "../../src/pods/ports.ts";
import { type OomKillWatcher, watchOomKills } from "../../src/pods/oom.ts";
import { PodRuntime, type RuntimeOptions } from "../../src/pods/runtime.ts";
import { connectUnitManager, type SystemdUnits } from "../../src/pods/systemd_units.ts";
import type { UnitProperties } from "../../src/unit/properties.ts";
import { unitName } from "../../src/unit/name.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";

/** Whether this process may boot a test systemd (namespaces need root). */
export const CAN_BOOT = Deno.uid() === 0;

/** Test options for tests that hold a booted system and a D-Bus connection across steps. */
export const SYSTEM_TEST = { ignore: !CAN_BOOT, sanitizeOps: false, sanitizeResources: false };

/** An event the runtime recorded. */
export interface RecordedEvent {
  pod: string;
  type: string;
  reason: string;
  message: string;
  container?: string;
}

/** A booted system with systemk's runtime attached. */
export interface PodSystem {
  sd: TestSystemd;
  units: SystemdUnits;
  runtime: PodRuntime;
  node: NodeFacts;
  /** The runtime's state directory, the same path on the host and inside. */
  stateDir: string;
  events: RecordedEvent[];
  /** Every change snapshot the unit manager reported, in order. */
  changes: { unit: string; props: UnitProperties }[];
  /** Latest status per pod UID. */
  statuses: Map<string, V1PodStatus>;
  /**
   * Hands a pod to the runtime: a manifest text or parsed manifests (one Pod, its ConfigMaps
   * and Secrets), or a Pod object. Namespace, UID, node name and restartPolicy get the API
   * server's defaults.
   */
  run(manifest: string | Manifests | V1Pod): V1Pod;
  /** Waits until `check` returns a value; the timeout error describes the system. */
  until<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T>;
  /** The latest status of `pod` once `predicate` holds for it. */
  statusWhen(pod: V1Pod, predicate: (s: V1PodStatus) => boolean): Promise<V1PodStatus>;
  /** Current properties of a unit. */
  props(unit: string): Promise<UnitProperties>;
  /** How often systemd itself restarted a unit (`NRestarts`): never, every unit is `Restart=no`. */
  systemdRestarts(unit: string): Promise<number>;
  /** Events, statuses and the journal of every systemk unit, for failure messages. */
  describe(): Promise<string>;
}

const NODE_NAME = "it-node";
const UNTIL_TIMEOUT_MS = 30_000;

/** Options of {@link withPodSystem}: runtime options, and what package images resolve to. */
export type PodSystemOptions =
  & Partial<
    Pick<RuntimeOptions, "backoffBaseMs" | "backoffMaxMs" | "crashLoopBackoffBaseMs" | "policy">
  >
  & {
    /** Package images by `image`: their package and unit text, as apt would have found them. */
    packages?: Record<string, PackageInfo>;
    /** What the runtime gets instead of the real unit manager (e.g. one that loses signals). */
    units?: (real: SystemdUnits) => UnitManager;
  };

/**
 * Boots a test systemd, attaches a runtime and runs `fn`; tears everything down afterwards.
 * `options` overrides runtime options (back-off delays, the security policy).
 */
export async function withPodSystem(
  fn: (s: PodSystem) => Promise<void>,
  options: PodSystemOptions = {},
): Promise<void> {
  await Deno.mkdir("/var/cache/systemk-dev", { recursive: true });
  const stateDir = await Deno.makeTempDir({ dir: "/var/cache/systemk-dev", prefix: "it-state-" });
  const sd = await bootTestSystemd();
  let units: SystemdUnits | undefined;
  let runtime: PodRuntime | undefined;
  let oomKills: OomKillWatcher | undefined;
  try {
    // The kernel (and its log) is the host's: OOM kills inside the test system show there.
    oomKills = watchOomKills();
    units = await connectUnitManager({
      busAddress: sd.busAddress,
      unitDir: `${sd.root}/run/systemd/system`,
    });
    const changes: PodSystem["changes"] = [];
    units.onChange((unit, props) => changes.push({ unit, props }));
    const node = await localNodeFacts({
      nodeName: NODE_NAME,
      internalIP: "127.0.0.1",
      externalIP: "127.0.0.1",
    });
    const events: RecordedEvent[] = [];
    const statuses = new Map<string, V1PodStatus>();
    const objects = new Map<string, ReturnType<typeof parseManifests>>();
    const sink: EventSink = {
      record(pod, { type, reason, message, container }) {
        events.push({ pod: pod.metadata?.name ?? "", type, reason, message, container });
      },
    };
    const rt = new PodRuntime({
      units: options.units?.(units) ?? units,
      node,
      stateDir,
      oomKills,
      events: sink,
      images: { resolve: (_pod, c) => Promise.resolve(options.packages?.[c.image!] ?? {}) },
      onStatus: (pod, status) => statuses.set(pod.metadata!.uid!, status),
      references(pod) {
        const m = objects.get(pod.metadata!.uid!);
        return Promise.resolve({
          configMaps: new Map((m?.configMaps ?? []).map((c) => [c.metadata!.name!, c])),
          secrets: new Map((m?.secrets ?? []).map((s) => [s.metadata!.name!, s])),
        });
      },
      policy: options.policy,
      // Pod ids run with records in the test system's /run/userdb, as on a node.
      userRecords: new UserRecords({ dir: `${sd.root}/run/userdb` }),
      backoffBaseMs: options.backoffBaseMs ?? 60_000,
      backoffMaxMs: options.backoffMaxMs,
      crashLoopBackoffBaseMs: options.crashLoopBackoffBaseMs ?? 200,
    });
    runtime = rt;
    const u = units;
    const describe = async () =>
      `events: ${JSON.stringify(events, null, 1)}\n` +
      `statuses: ${JSON.stringify([...statuses.values()], null, 1)}\njournal:\n${
        (await sd.exec(["journalctl", "--no-pager", "-o", "short-monotonic", "-u", "systemk.*"]))
          .stdout
      }`;
    const until = async <T>(
      what: string,
      check: () => Promise<T | undefined> | T | undefined,
    ): Promise<T> => {
      const deadline = Date.now() + UNTIL_TIMEOUT_MS;
      while (Date.now() < deadline) {
        const value = await check();
        if (value !== undefined) return value;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${what}\n${await describe()}`);
    };
    await fn({
      sd,
      units: u,
      runtime: rt,
      node,
      stateDir,
      events,
      changes,
      statuses,
      run(manifest) {
        const m = typeof manifest === "string"
          ? parseManifests(manifest)
          : "pods" in manifest
          ? manifest
          : { pods: [manifest], configMaps: [], secrets: [] };
        if (m.pods.length !== 1) throw new Error(`expected one Pod, found ${m.pods.length}`);
        const pod = structuredClone(m.pods[0]);
        pod.metadata = {
          namespace: "default",
          ...pod.metadata,
          uid: pod.metadata?.uid ?? crypto.randomUUID(),
        };
        pod.spec = { restartPolicy: "Always", ...pod.spec!, nodeName: NODE_NAME };
        objects.set(pod.metadata.uid!, m);
        rt.sync(pod);
        return pod;
      },
      until,
      statusWhen(pod, predicate) {
        const uid = pod.metadata!.uid!;
        return until(`status of ${pod.metadata!.name}`, () => {
          const s = statuses.get(uid);
          return s && predicate(s) ? s : undefined;
        });
      },
      props: (unit) => u.properties(unit),
      systemdRestarts: async (unit) => Number((await u.client.getServiceSettings(unit)).NRestarts),
      describe,
    });
  } finally {
    oomKills?.close();
    await runtime?.close();
    await units?.close();
    await sd.stop();
    await Deno.remove(stateDir, { recursive: true });
  }
}

/** The volume directory of an emptyDir volume of `pod`, as the host sees it. */
export function emptyDirPath(s: PodSystem, pod: V1Pod, volume: string): string {
  return `${s.stateDir}/${pod.metadata!.uid}/volumes/emptydir/${volume}`;
}

/** The unit name of a container of `pod`. */
export function unitOf(pod: V1Pod, container: string): string {
  return unitName({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name! }, container);
}
