/**
 * What every fault test checks afterwards, "nothing lost": every pod that should run is Running
 * and Ready, exactly one unit per container of the existing pods (no duplicate, no orphan), and
 * no unit that ran through the fault was restarted (same InvocationID).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { describeNode, type NodeEnv, waitFor } from "../e2e/_node_env.ts";

/** Options of the fault tests' `Deno.test`: the environment outlives single awaits. */
export const FAULT_TEST_OPTS = { sanitizeOps: false, sanitizeResources: false };

/** A pod's phase is Running and its Ready condition True. */
export const ready = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  pod.status.conditions?.find((c) => c.type === "Ready")?.status === "True";

/** The unit systemk runs a container of a pod as. */
export const unitOf = (pod: V1Pod, container: string) =>
  `systemk.${pod.metadata?.namespace}.${pod.metadata?.name}.${container}.service`;

/** A pod bound to `node` that sleeps forever (an absolute-path image, so nothing is installed). */
export function sleeper(name: string, node = "n1", labels: Record<string, string> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 2,
      containers: [{ name: "c", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
    },
  };
}

/**
 * A Deployment `name` of `replicas` sleepers at `version` (an env var of the container, so a
 * change rolls it). The rolling-update bounds are Kubernetes' defaults, written out because
 * the fault tests count on them.
 */
export function sleeperDeployment(name: string, replicas: number, version: string) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "default" },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: { rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [{
            name: "app",
            image: "/bin/sleep",
            command: ["/bin/sleep", "infinity"],
            env: [{ name: "VERSION", value: version }],
          }],
        },
      },
    },
  };
}

/** Every pod in the API, the units each should have, and the units systemd has. */
export async function podsAndUnits(env: NodeEnv) {
  const pods = (await env.getJSON<{ items: V1Pod[] }>(["pods", "--all-namespaces"]))?.items ?? [];
  const expected = pods.flatMap((p) => (p.spec?.containers ?? []).map((c) => unitOf(p, c.name)));
  return { pods, expected: expected.sort(), units: (await env.units()).sort() };
}

/** One unit's identity of run and state, as `systemctl show` reports them. */
export interface UnitRun {
  invocationID: string;
  activeState: string;
}

/** InvocationID and ActiveState of every loaded systemk unit, read in one `systemctl show`. */
export async function unitRuns(env: NodeEnv): Promise<Map<string, UnitRun>> {
  const names = await env.units();
  // `systemctl show` takes no glob: the units are named.
  const out = names.length
    ? await env.system.exec([
      "systemctl",
      "show",
      "--property=Id,InvocationID,ActiveState",
      ...names,
    ])
    : { stdout: "" };
  const runs = new Map<string, UnitRun>();
  for (const block of out.stdout.split("\n\n")) {
    const fields = Object.fromEntries(
      block.split("\n").filter(Boolean).map((
        l,
      ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    if (fields.Id) {
      runs.set(fields.Id, { invocationID: fields.InvocationID, activeState: fields.ActiveState });
    }
  }
  return runs;
}

/**
 * States of a unit whose run is under way. `activating` counts: systemk reports a container
 * running (and the pod Ready) from its main process' start, before a busy machine has finished
 * setting up its sandbox and systemd reports `active`; the InvocationID is the run's from the
 * start on.
 */
const LIVE = new Set(["active", "activating"]);

/**
 * Remembers the first run seen of every running unit, so the end of a test can tell whether a
 * unit that ran through the faults was ever restarted.
 */
export class RunLedger {
  readonly #first = new Map<string, string>();

  /** Notes the runs of the units not yet seen that run now. */
  async note(env: NodeEnv): Promise<void> {
    for (const [unit, run] of await unitRuns(env)) {
      if (LIVE.has(run.activeState) && run.invocationID && !this.#first.has(unit)) {
        this.#first.set(unit, run.invocationID);
      }
    }
  }

  /**
   * The units noted that still exist and run another invocation than the first seen, how many
   * kept theirs, the units noted that are gone, and the units there now that were never noted
   * (with their state and run).
   */
  async restarted(
    env: NodeEnv,
  ): Promise<{ restarted: string[]; kept: number; gone: string[]; unnoted: string[] }> {
    const now = await unitRuns(env);
    const restarted: string[] = [];
    const gone: string[] = [];
    let kept = 0;
    for (const [unit, id] of this.#first) {
      const run = now.get(unit);
      if (!run) {
        gone.push(unit);
        continue;
      }
      if (run.invocationID === id) kept++;
      else restarted.push(`${unit}: ${id} → ${run.invocationID} (${run.activeState})`);
    }
    const unnoted = [...now].filter(([unit]) => !this.#first.has(unit))
      .map(([unit, run]) => `${unit}: ${run.invocationID} (${run.activeState})`);
    return { restarted, kept, gone, unnoted };
  }
}

/**
 * Waits until the API and systemd agree: `count` pods (if given), all Running and Ready, none
 * being deleted, and exactly one unit per container of them. Asserts no container restarted.
 */
export async function assertNothingLost(
  env: NodeEnv,
  opts: { count?: number; timeoutMs?: number; ready?: (pod: V1Pod) => boolean } = {},
) {
  const isReady = opts.ready ?? ready;
  const settled = await waitFor(
    "every pod Running with exactly its units",
    async () => {
      const now = await podsAndUnits(env);
      const ok = (opts.count === undefined || now.pods.length === opts.count) &&
        now.pods.every(isReady) && now.pods.every((p) => !p.metadata?.deletionTimestamp) &&
        JSON.stringify(now.units) === JSON.stringify(now.expected);
      return ok ? now : undefined;
    },
    opts.timeoutMs ?? 120_000,
    async () => {
      const now = await podsAndUnits(env);
      const missing = now.expected.filter((u) => !now.units.includes(u));
      const orphans = now.units.filter((u) => !now.expected.includes(u));
      const notReady = now.pods.filter((p) => !isReady(p)).map((p) => p.metadata?.name);
      return `pods ${now.pods.length}, not ready: ${notReady.join(" ")}\n` +
        `missing units: ${missing.join(" ")}\norphan units: ${orphans.join(" ")}\n` +
        await describeNode(env);
    },
  );
  for (const pod of settled.pods) {
    for (const s of pod.status?.containerStatuses ?? []) {
      assert.equal(s.restartCount, 0, `${pod.metadata?.name}/${s.name} restarted`);
    }
  }
  return settled;
}

/** A deterministic generator of numbers in [0, 1) (mulberry32), for replayable random faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A positive integer from the environment variable `name`, else `fallback`. */
export function envInt(name: string, fallback: number): number {
  const value = Number(Deno.env.get(name));
  return Number.isInteger(value) && value > 0 ? value : fallback;
}
