/**
 * PersistentVolumeClaim volumes end to end (real control plane with its PersistentVolume
 * controller and scheduler, booted systemd 252, systemk with the shipped permissions, kubectl
 * v1.34):
 *
 * - a StatefulSet with `volumeClaimTemplates` on local PersistentVolumes of a
 *   `WaitForFirstConsumer` StorageClass: the scheduler binds the claim to a volume of this node,
 *   systemk mounts it (a subPath read-write, the whole volume read-only), gives it the pod's
 *   `fsGroup`, and what replica 0 wrote is there for the replica that replaces it after
 *   `kubectl delete pod`; the volume's data outlives the StatefulSet;
 * - a hostPath PersistentVolume outside `--allowed-host-paths` (the administrator's object) is
 *   mounted, its `DirectoryOrCreate` path made;
 * - a claim not bound, a volume of another node and an NFS volume each give `FailedMount` naming
 *   what is wrong, and the pod waits.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: Deno.uid() !== 0 };

/** The pods' fsGroup: a pod id (systemk makes its userdb record), not a host group. */
const FS_GROUP = 5000;

const running = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  (pod.status.containerStatuses ?? []).every((s) => s.state?.running);

/** A local PersistentVolume at `path` of this node, of StorageClass `local`. */
function localVolume(name: string, path: string, hostname: string) {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name },
    spec: {
      capacity: { storage: "1Gi" },
      accessModes: ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "local",
      local: { path },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{
            matchExpressions: [{
              key: "kubernetes.io/hostname",
              operator: "In",
              values: [hostname],
            }],
          }],
        },
      },
    },
  };
}

/** A claim bound in advance to volume `volume` (and the volume to it). */
function preBound(name: string, volume: Record<string, unknown>) {
  const pvName = (volume.metadata as { name: string }).name;
  return [
    {
      ...volume,
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        storageClassName: "",
        ...(volume.spec as object),
        claimRef: { namespace: "default", name },
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name, namespace: "default" },
      spec: {
        accessModes: ["ReadWriteOnce"],
        storageClassName: "",
        volumeName: pvName,
        resources: { requests: { storage: "1Gi" } },
      },
    },
  ];
}

/** A pod on this node (no scheduler) mounting claim `claim` at /data. */
function claimPod(name: string, nodeName: string, claim: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName,
      terminationGracePeriodSeconds: 2,
      containers: [{
        name: "app",
        image: "/bin/sh",
        command: ["/bin/sh", "-c", "ls /data; exec sleep infinity"],
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      }],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim } }],
    },
  };
}

async function sh(env: NodeEnv, script: string): Promise<string> {
  const out = await env.system.exec(["/bin/sh", "-c", script]);
  if (out.code !== 0) throw new Error(`${script}: ${out.stderr}`);
  return out.stdout;
}

/** The FailedMount events of pod `name`, once one says `what`. */
function failedMount(env: NodeEnv, name: string, what: RegExp) {
  return waitFor(`FailedMount of ${name} matching ${what}`, async () => {
    const events = await podEvents(env, name);
    return events.find((e) => e.reason === "FailedMount" && what.test(e.message ?? ""));
  }, 60_000);
}

Deno.test(
  "persistentVolumeClaim volumes: StatefulSet on local volumes, FailedMount",
  opts,
  async (t) => {
    const env = await startNodeEnv();
    try {
      const node = await waitFor(
        "the Node",
        () => env.getJSON<{ metadata: { labels: Record<string, string> } }>(["node", env.nodeName]),
      );
      const hostname = node.metadata.labels["kubernetes.io/hostname"];
      await sh(env, "mkdir -p /mnt/disks/vol0 /mnt/disks/vol1");

      await t.step(
        "a StatefulSet's replica keeps what it wrote after kubectl delete pod",
        async () => {
          await env.apply(
            {
              apiVersion: "storage.k8s.io/v1",
              kind: "StorageClass",
              metadata: { name: "local" },
              provisioner: "kubernetes.io/no-provisioner",
              volumeBindingMode: "WaitForFirstConsumer",
            },
            localVolume("local-0", "/mnt/disks/vol0", hostname),
            localVolume("local-1", "/mnt/disks/vol1", hostname),
            {
              apiVersion: "apps/v1",
              kind: "StatefulSet",
              metadata: { name: "web", namespace: "default" },
              spec: {
                serviceName: "web",
                replicas: 1,
                selector: { matchLabels: { app: "web" } },
                template: {
                  metadata: { labels: { app: "web" } },
                  spec: {
                    terminationGracePeriodSeconds: 2,
                    securityContext: { runAsUser: 1, runAsGroup: 1, fsGroup: FS_GROUP },
                    containers: [{
                      name: "app",
                      image: "/bin/sh",
                      command: [
                        "/bin/sh",
                        "-c",
                        'echo "$(cat /proc/sys/kernel/random/uuid)" >> /www/log; ' +
                        "touch /all/denied 2>&1 | tr -d '\\n'; echo; exec sleep infinity",
                      ],
                      volumeMounts: [
                        { name: "data", mountPath: "/www", subPath: "www" },
                        { name: "data", mountPath: "/all", readOnly: true },
                      ],
                    }],
                  },
                },
                volumeClaimTemplates: [{
                  metadata: { name: "data" },
                  spec: {
                    accessModes: ["ReadWriteOnce"],
                    storageClassName: "local",
                    resources: { requests: { storage: "1Gi" } },
                  },
                }],
              },
            },
          );
          const first = await waitForPod(env, "web-0", "running", running, { timeoutMs: 120_000 });
          const claim = await env.getJSON<
            { spec: { volumeName: string }; status: { phase: string } }
          >(
            ["pvc", "data-web-0"],
          );
          assert.equal(claim!.status.phase, "Bound");
          const dir = `/mnt/disks/${claim!.spec.volumeName === "local-0" ? "vol0" : "vol1"}`;
          const log = await waitFor("replica 0's line", async () => {
            const text = await sh(env, `cat ${dir}/www/log 2>/dev/null || true`);
            return text.trim() ? text : undefined;
          });
          assert.equal(log.trim().split("\n").length, 1);
          // fsGroup: the volume and what is in it belong to the group, directories setgid.
          const stat = (await sh(env, `stat -c '%g %A' ${dir} ${dir}/www ${dir}/www/log`)).trim();
          const [root, www, file] = stat.split("\n").map((line) => line.split(" "));
          assert.deepEqual([root[0], www[0], file[0]], Array(3).fill(String(FS_GROUP)), stat);
          assert.match(root[1], /^drwxrws/, stat);
          assert.match(www[1], /^drwxrws/, stat);
          // The whole volume is mounted read-only where the pod says so.
          const out = await waitFor("the container's output", async () => {
            const text = await sh(env, "journalctl -o cat -u systemk.default.web-0.app.service");
            return text.includes("/all/denied") ? text : undefined;
          });
          assert.match(out, /Read-only file system/);

          await env.kubectl(["delete", "pod", "web-0", "--wait=true"]);
          const second = await waitForPod(
            env,
            "web-0",
            "running again as a new pod",
            (pod) => running(pod) && pod.metadata!.uid !== first.metadata!.uid,
            { timeoutMs: 120_000 },
          );
          const lines = await waitFor("replica 0's second line", async () => {
            const text = (await sh(env, `cat ${dir}/www/log`)).trim().split("\n");
            return text.length === 2 ? text : undefined;
          });
          assert.notEqual(lines[0], lines[1]);
          // The first pod's pin of the subPath is gone, the second's is there.
          const mounts = await sh(env, "findmnt -rn -o TARGET | grep volume-subpaths || true");
          assert.ok(!mounts.includes(first.metadata!.uid!), mounts);
          assert.ok(mounts.includes(second.metadata!.uid!), mounts);

          await env.kubectl(["delete", "statefulset", "web", "--wait=true"]);
          await waitFor("web-0 gone", async () => !(await env.getJSON(["pod", "web-0"])));
          assert.equal((await sh(env, `cat ${dir}/www/log`)).trim().split("\n").length, 2);
          assert.equal(await sh(env, "findmnt -rn -o TARGET | grep volume-subpaths || true"), "");
        },
      );

      await t.step(
        "a hostPath PersistentVolume is not limited by --allowed-host-paths",
        async () => {
          await env.apply(
            ...preBound("host-claim", {
              apiVersion: "v1",
              kind: "PersistentVolume",
              metadata: { name: "host-pv" },
              spec: { hostPath: { path: "/srv/pv/host", type: "DirectoryOrCreate" } },
            }),
            claimPod("host", env.nodeName, "host-claim"),
          );
          await waitForPod(env, "host", "running", running);
          assert.equal((await sh(env, "stat -c %F /srv/pv/host")).trim(), "directory");
        },
      );

      await t.step("unbound claim, another node's volume, NFS: FailedMount", async () => {
        const other = localVolume("elsewhere", "/mnt/disks/vol1", "another-node");
        await env.apply(
          {
            apiVersion: "v1",
            kind: "PersistentVolumeClaim",
            metadata: { name: "unbound", namespace: "default" },
            spec: {
              accessModes: ["ReadWriteOnce"],
              storageClassName: "nothing-provides-this",
              resources: { requests: { storage: "1Gi" } },
            },
          },
          claimPod("waits", env.nodeName, "unbound"),
          ...preBound("other-claim", { ...other, spec: { ...other.spec, storageClassName: "" } }),
          claimPod("elsewhere", env.nodeName, "other-claim"),
          ...preBound("nfs-claim", {
            apiVersion: "v1",
            kind: "PersistentVolume",
            metadata: { name: "nfs-pv" },
            spec: { nfs: { server: "nfs.example", path: "/exports" } },
          }),
          claimPod("nfs", env.nodeName, "nfs-claim"),
        );
        await failedMount(env, "waits", /PVC default\/unbound has non-bound phase \("Pending"\)/);
        await failedMount(env, "elsewhere", /PersistentVolume elsewhere is for another node/);
        await failedMount(env, "nfs", /PersistentVolume nfs-pv has a nfs source/);
        for (const name of ["waits", "elsewhere", "nfs"]) {
          const pod = await env.getJSON<V1Pod>(["pod", name]);
          assert.equal(pod!.status?.phase, "Pending");
          assert.equal(pod!.status?.reason, "FailedMount");
        }
      });
    } finally {
      await env.stop();
    }
  },
);
