/**
 * End to end on an untainted node (`--disable-taint`, as in the README's quickstart): the
 * quickstart's own pod, then what pods reference: the seed's uptimed-like pod (init container,
 * emptyDirs, configMap and secret volumes, runAsUser) and a live ConfigMap edit; a missing
 * required ConfigMap (clear status, Warning event, the pod starts once it is created) and
 * missing optional ones.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import {
  containerState,
  describeNode,
  type NodeEnv,
  startNodeEnv,
  waitFor,
  waitForPod,
} from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const EXTERNAL_IP = "127.0.0.2";

const running = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  (pod.status.containerStatuses ?? []).every((c) => c.ready);

/** The journal of a unit inside the test systemd, message text only. */
async function journal(env: NodeEnv, unit: string): Promise<string> {
  return (await env.system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", unit])).stdout;
}

function configMap(name: string, data: Record<string, string>) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default" }, data };
}

/** A pod printing $COLOR and sleeping, bound to n1; `container` and `pod` add to its spec. */
function envPod(name: string, container: Record<string, unknown>, pod = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName: "n1",
      terminationGracePeriodSeconds: 2,
      containers: [{
        name: "c",
        image: "/bin/sh",
        command: ["/bin/sh", "-c", 'echo "COLOR=$COLOR"; exec sleep infinity'],
        ...container,
      }],
      ...pod,
    },
  };
}

Deno.test(
  "node mode end to end: the quickstart pod, ConfigMaps, Secrets, volumes, init containers",
  opts,
  async (t) => {
    const started = performance.now();
    const env = await startNodeEnv({ flags: ["--node-external-ip", EXTERNAL_IP] });
    console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
    try {
      await t.step("the README quickstart: examples/pods/loop.yaml runs and deletes", async () => {
        await waitFor("kubectl get nodes: n1 Ready", async () => {
          const nodes = await env.kubectl(["get", "nodes", "--no-headers"]);
          return /^n1\s+Ready\s/m.test(nodes);
        });
        const example = new URL("../../examples/pods/loop.yaml", import.meta.url).pathname;
        await env.kubectl(["apply", "-f", example]);
        const pod = await waitForPod(env, "loop", "Running", running);
        assert.equal(pod.spec?.nodeName, "n1");
        assert.equal(pod.status?.podIP, EXTERNAL_IP);
        await waitFor(
          "tick in the journal",
          async () => (await journal(env, "systemk.default.loop.loop.service")).includes("tick"),
        );
        await env.kubectl(["delete", "pod", "loop"]);
        assert.deepEqual(await env.units(), []);
      });

      await t.step(
        "the uptimed-like pod (init container, emptyDirs, configMap, secret, runAsUser) runs; a ConfigMap edit reaches its file",
        async () => {
          const script = [
            "while true",
            'do echo "conf: $(cat /etc/uptimed/uptimed.conf | tr "\\n" " ")"',
            'echo "scratch: $(cat /scratch/ready) mem: $(cat /mem/ready) uid: $(id -u) token: $(cat /secrets/token) $(stat -c %a /secrets/token)"',
            "sleep 0.5",
            "done",
          ].join("; ");
          const created = performance.now();
          await env.apply(
            configMap("uptimed-config", { "uptimed.conf": "UPDATE_INTERVAL=300\n" }),
            {
              apiVersion: "v1",
              kind: "Secret",
              metadata: { name: "uptimed-secret", namespace: "default" },
              stringData: { token: "s3cret" },
            },
            {
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: "uptimed", namespace: "default" },
              spec: {
                nodeName: "n1",
                terminationGracePeriodSeconds: 2,
                // A pod id (no account on the node: a userdb record is made for it); 996 was
                // a host account (polkitd), which the node's policy now keeps from pods.
                securityContext: { runAsUser: 5996, runAsGroup: 5996 },
                initContainers: [{
                  name: "prepare",
                  image: "/bin/sh",
                  command: [
                    "/bin/sh",
                    "-c",
                    "echo prepared > /scratch/ready; echo mem > /mem/ready",
                  ],
                  volumeMounts: [
                    { name: "scratch", mountPath: "/scratch" },
                    { name: "mem", mountPath: "/mem" },
                  ],
                }],
                containers: [{
                  name: "uptimed",
                  image: "/bin/sh",
                  command: ["/bin/sh", "-c", script],
                  volumeMounts: [
                    { name: "scratch", mountPath: "/scratch" },
                    { name: "mem", mountPath: "/mem" },
                    { name: "config", mountPath: "/etc/uptimed" },
                    { name: "secret", mountPath: "/secrets" },
                  ],
                }],
                volumes: [
                  { name: "scratch", emptyDir: {} },
                  { name: "mem", emptyDir: { medium: "Memory" } },
                  { name: "config", configMap: { name: "uptimed-config" } },
                  { name: "secret", secret: { secretName: "uptimed-secret", defaultMode: 0o400 } },
                ],
              },
            },
          );
          const pod = await waitForPod(env, "uptimed", "Running", running);
          console.log(`  create → Running: ${(performance.now() - created) | 0} ms`);
          assert.equal(pod.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 0);
          const unit = "systemk.default.uptimed.uptimed.service";
          const first = await waitFor("the app's output", async () => {
            const text = await journal(env, unit);
            // The container prints its lines one by one: wait for the last one too.
            return text.includes("UPDATE_INTERVAL=300") && text.includes("token:")
              ? text
              : undefined;
          });
          assert.match(first, /scratch: prepared mem: mem uid: 5996 token: s3cret 400/);

          const edited = performance.now();
          await env.apply(configMap("uptimed-config", { "uptimed.conf": "UPDATE_INTERVAL=60\n" }));
          await waitFor(
            "the edited ConfigMap inside the container",
            async () => (await journal(env, unit)).includes("UPDATE_INTERVAL=60"),
            60_000,
            () => describeNode(env, "uptimed"),
          );
          console.log(
            `  ConfigMap edit → seen in the container: ${(performance.now() - edited) | 0} ms`,
          );
          // The edit is a file rewrite, not a restart.
          const after = await env.getJSON<V1Pod>(["pod", "uptimed"]);
          assert.equal(after?.status?.containerStatuses?.[0]?.restartCount, 0);

          const uid = pod.metadata?.uid;
          await env.kubectl(["delete", "pod", "uptimed"]);
          assert.deepEqual(await env.units(), []);
          // The memory-backed emptyDir is unmounted and the pod's directory removed.
          const left = await env.system.exec(["test", "-e", `/run/systemk/${uid}`]);
          assert.notEqual(left.code, 0, `/run/systemk/${uid} still exists`);
          const mounts = await env.system.exec(["findmnt", "-rn", "-o", "TARGET"]);
          assert.ok(!mounts.stdout.includes(`${uid}`), "no mount of the pod is left");
        },
      );

      await t.step(
        "a missing required ConfigMap: CreateContainerConfigError naming it, a Warning event; the pod starts once it exists",
        async () => {
          await env.apply(envPod("needs-config", {
            env: [{
              name: "COLOR",
              valueFrom: { configMapKeyRef: { name: "colors", key: "color" } },
            }],
          }));
          const waiting = await waitForPod(
            env,
            "needs-config",
            "waiting on its config",
            (p) => containerState(p)?.waiting?.reason === "CreateContainerConfigError",
          );
          assert.equal(waiting.status?.phase, "Pending");
          assert.match(containerState(waiting)?.waiting?.message ?? "", /configmap.*"colors"/i);
          const event = await waitFor("a Warning event naming the ConfigMap", async () => {
            const list = await env.getJSON<{ items: CoreV1Event[] }>([
              "events",
              "--field-selector",
              "involvedObject.name=needs-config,type=Warning",
            ]);
            return list?.items.find((e) => /colors/.test(e.message ?? ""));
          });
          console.log(`  event: ${event.reason}: ${event.message}`);
          assert.deepEqual(await env.units(), []);

          const created = performance.now();
          await env.apply(configMap("colors", { color: "blue" }));
          await waitForPod(env, "needs-config", "Running", running);
          console.log(`  ConfigMap created → pod Running: ${(performance.now() - created) | 0} ms`);
          await waitFor(
            "COLOR=blue in the journal",
            async () =>
              (await journal(env, "systemk.default.needs-config.c.service")).includes(
                "COLOR=blue",
              ),
          );
        },
      );

      await t.step("missing optional ConfigMaps (env, envFrom, volume) do not block", async () => {
        await env.apply(envPod("optional-config", {
          env: [{
            name: "COLOR",
            valueFrom: { configMapKeyRef: { name: "absent", key: "color", optional: true } },
          }],
          envFrom: [{ configMapRef: { name: "absent-too", optional: true } }],
          volumeMounts: [{ name: "cfg", mountPath: "/cfg" }],
        }, { volumes: [{ name: "cfg", configMap: { name: "absent-volume", optional: true } }] }));
        const pod = await waitForPod(env, "optional-config", "Running", running);
        assert.equal(pod.status?.phase, "Running");
        await env.kubectl(["delete", "pod", "optional-config", "needs-config", "--wait=false"]);
      });
    } finally {
      await env.stop();
    }
  },
);
