/**
 * Attacks through a PersistentVolume a pod owns the contents of, made the way an attacker makes
 * them: pod manifests through the real API, run by systemk in a real booted systemd 252.
 *
 * - A pod plants a symlink to the host's /etc in its volume; a pod that mounts that path as a
 *   `subPath` does not get the host's /etc (read-write, out of its read-only sandbox): the
 *   subPath is walked without following symlinks and pinned, so it gets `FailedMount`.
 * - A pod plants symlinks to a host file and to /etc in its volume; giving the volume to the
 *   next pod's `fsGroup` changes the group of what is in the volume, not of what the symlinks
 *   point to.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod, V1VolumeMount } from "@kubernetes/client-node";
import { type NodeEnv, podEvents, startNodeEnv, waitFor, waitForPod } from "../e2e/_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: Deno.uid() !== 0 };

/** The pods' fsGroup: a pod id (systemk makes its userdb record), not a host group. */
const FS_GROUP = 5000;
/** A host file the pods must not reach (in the test systemd's overlay). */
const TARGET = "/etc/systemk-attack-target";

const running = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  (pod.status.containerStatuses ?? []).every((s) => s.state?.running);

async function sh(env: NodeEnv, script: string): Promise<string> {
  const out = await env.system.exec(["/bin/sh", "-c", script]);
  if (out.code !== 0) throw new Error(`${script}: ${out.stderr}`);
  return out.stdout;
}

/**
 * A pod on this node (root, the default) running `script` with claim `attack` at /data, or at
 * the given mounts.
 */
function pod(
  name: string,
  script: string,
  extra: { mounts?: V1VolumeMount[]; fsGroup?: number } = {},
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      terminationGracePeriodSeconds: 2,
      ...(extra.fsGroup ? { securityContext: { fsGroup: extra.fsGroup } } : {}),
      containers: [{
        name: "app",
        image: "/bin/sh",
        command: ["/bin/sh", "-c", `${script}; exec sleep infinity`],
        volumeMounts: extra.mounts ?? [{ name: "data", mountPath: "/data" }],
      }],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: "attack" } }],
    },
  };
}

Deno.test("security: a pod's symlinks in its PersistentVolume lead nowhere", opts, async (t) => {
  const env = await startNodeEnv();
  try {
    const node = await waitFor(
      "the Node",
      () => env.getJSON<{ metadata: { labels: Record<string, string> } }>(["node", env.nodeName]),
    );
    await sh(env, `mkdir -p /mnt/disks/attack && printf host > ${TARGET} && chmod 0600 ${TARGET}`);
    await env.apply(
      {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: "attack-pv" },
        spec: {
          capacity: { storage: "1Gi" },
          accessModes: ["ReadWriteOnce"],
          storageClassName: "",
          claimRef: { namespace: "default", name: "attack" },
          local: { path: "/mnt/disks/attack" },
          nodeAffinity: {
            required: {
              nodeSelectorTerms: [{
                matchExpressions: [{
                  key: "kubernetes.io/hostname",
                  operator: "In",
                  values: [node.metadata.labels["kubernetes.io/hostname"]],
                }],
              }],
            },
          },
        },
      },
      {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name: "attack", namespace: "default" },
        spec: {
          accessModes: ["ReadWriteOnce"],
          storageClassName: "",
          volumeName: "attack-pv",
          resources: { requests: { storage: "1Gi" } },
        },
      },
      pod(
        "planter",
        `mkdir -p /data/files && echo mine > /data/files/own && ln -s /etc /data/etc-link && ` +
          `ln -s ${TARGET} /data/target-link && ln -s /etc /data/files/etc-link`,
      ),
    );
    await waitForPod(env, "planter", "running", running);
    await waitFor("the planted symlinks", async () => {
      const out = await sh(env, "ls /mnt/disks/attack/files /mnt/disks/attack");
      return out.includes("etc-link") && out.includes("target-link") && out.includes("own");
    });

    await t.step("a subPath through a planted symlink is refused, not bound", async () => {
      await env.apply(pod("escape", "echo pwned > /hostetc/systemk-pwned", {
        mounts: [{ name: "data", mountPath: "/hostetc", subPath: "etc-link" }],
      }));
      // Either systemk refuses the mount, or the container runs (and has written by then).
      const outcome = await waitFor("escape refused or running", async () => {
        const events = await podEvents(env, "escape");
        const refused = events.find((e) => e.reason === "FailedMount");
        if (refused) return { refused };
        const status = await env.getJSON<V1Pod>(["pod", "escape"]);
        if (status && running(status)) {
          const wrote = await waitFor("the write", async () => {
            const out = await env.system.exec(["test", "-e", "/etc/systemk-pwned"]);
            return out.code === 0;
          }, 10_000).catch(() => false);
          return { wrote };
        }
      }, 60_000);
      const pwned = await env.system.exec(["test", "-e", "/etc/systemk-pwned"]);
      assert.notEqual(pwned.code, 0, "the pod wrote into the host's /etc through its subPath");
      assert.match(
        outcome.refused?.message ?? "",
        /etc-link is a symbolic link, which systemk does not follow/,
      );
    });

    await t.step("fsGroup changes the volume's files, not what its symlinks point to", async () => {
      await env.apply(pod("grouped", "id", { fsGroup: FS_GROUP }));
      await waitForPod(env, "grouped", "running", running);
      const target = (await sh(env, `stat -c '%g %a' ${TARGET} /etc`)).trim().split("\n");
      assert.deepEqual(target, ["0 600", "0 755"], "a host file changed group or mode");
      const own = (await sh(env, "stat -c '%g' /mnt/disks/attack/files/own")).trim();
      assert.equal(own, String(FS_GROUP));
    });
  } finally {
    await env.stop();
  }
});
