/**
 * Attacks a pod author can make on the node, made the way an attacker makes them: pod
 * manifests through the real API, run by systemk in a real booted systemd 252, commands through
 * the real kubectl and systemk's kubelet API.
 *
 * - Commands in containers (`exec` probes, `kubectl exec`) never run anything of the
 *   container's as root: a pod that passes Pod Security "restricted" plants `setpriv`,
 *   `getent`, `id`, `tr`, `nsenter` and an `LD_PRELOAD` library in its /tmp, puts /tmp first in
 *   its `PATH` and bind-mounts a `/etc/passwd` and `/etc/group` of its own; everything it
 *   planted runs as its own user or not at all, and the command gets the user systemd gave the
 *   container, nothing from the pod's files.
 * - A package unit's `ExecStartPre=+…` / `ExecStartPost="!!…"` run inside the sandbox as the
 *   pod's user, like its `ExecStart=`.
 * - A pod sees nothing of another pod's unit: not its unit file, not its properties over D-Bus,
 *   not its processes' command lines or environment; a Secret expanded into `args` is in neither
 *   the unit file nor systemd's properties, yet the process gets it.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor, waitForPod } from "../e2e/_node_env.ts";
import { approveServingCertificate, kubeletAPIFlags } from "../e2e/_kubelet_api.ts";
import { freePorts } from "../harness/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: Deno.uid() !== 0 };

/** Pod Security "restricted", as its documentation spells it. */
const RESTRICTED = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/** A shared library that notes, in the pod's /out, the user of every process that loads it. */
const PRELOAD_C = `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void) {
  FILE *f = fopen("/out/ran", "a");
  if (f) { fprintf(f, "preload %d\\n", (int)geteuid()); fclose(f); }
}
`;

/** Programs the exec helper used to call through `PATH` while root. */
const PLANTED = ["setpriv", "getent", "id", "tr", "nsenter", "stty", "script", "env"];

/** The hostile container: plants its programs and library in /tmp, then waits. */
const PLANT = [
  "cp /lib/planted.so /tmp/planted.so",
  ...PLANTED.map((name) =>
    `printf '#!/bin/sh\\necho "${name} $(/usr/bin/id -u)" >> /out/ran\\nexec /usr/bin/${name} "$@"\\n'` +
    ` > /tmp/${name} && chmod +x /tmp/${name}`
  ),
  "touch /out/planted",
  "exec sleep infinity",
].join("; ");

/** Runs the real kubectl as the admin. */
async function kubectl(env: NodeEnv, args: string[]) {
  const out = await new Deno.Command(env.cluster.kubectlPath, {
    args: [`--kubeconfig=${env.cluster.adminKubeconfig}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** A file of pod `pod`'s emptyDir `out`, read on the node as root ("" when missing). */
async function outFile(env: NodeEnv, pod: V1Pod, file: string): Promise<string> {
  const path = `/run/systemk/${pod.metadata!.uid}/volumes/emptydir/out/${file}`;
  return (await env.system.exec(["cat", path])).stdout;
}

/** Compiles PRELOAD_C into a shared library; its bytes. */
async function preloadLibrary(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "systemk-preload-" });
  try {
    await Deno.writeTextFile(`${dir}/planted.c`, PRELOAD_C);
    const cc = await new Deno.Command("cc", {
      args: ["-shared", "-fPIC", "-o", `${dir}/planted.so`, `${dir}/planted.c`],
      stderr: "piped",
    }).output();
    assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
    return await Deno.readFile(`${dir}/planted.so`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const running = (pod: V1Pod) => !!pod.status?.containerStatuses?.every((c) => c.state?.running);

Deno.test("security: attacks of a pod author on the node", opts, async (t) => {
  const [port] = freePorts("127.0.0.1", 1);
  const env = await startNodeEnv({ flags: kubeletAPIFlags(port) });
  try {
    await approveServingCertificate(env.cluster, env.nodeName);

    await t.step("exec probes and kubectl exec run nothing of the pod's as root", async () => {
      const library = await preloadLibrary();
      let binary = "";
      for (const byte of library) binary += String.fromCharCode(byte);
      await env.apply(
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "planted", namespace: "default" },
          // The pod's own view of the node's users: nobody is root, in group root.
          data: {
            passwd: "root:x:0:0::/root:/bin/sh\nnobody:x:0:0::/:/bin/sh\n",
            group: "root:x:0:nobody\nnogroup:x:65534:\n",
          },
          binaryData: { "planted.so": btoa(binary) },
        },
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "hostile", namespace: "default" },
          spec: {
            nodeName: env.nodeName,
            terminationGracePeriodSeconds: 2,
            securityContext: { runAsNonRoot: true, runAsUser: 65534 },
            containers: [{
              name: "app",
              image: "/bin/sh",
              command: ["/bin/sh", "-c", PLANT],
              env: [
                { name: "PATH", value: "/tmp:/usr/bin:/bin" },
                { name: "LD_PRELOAD", value: "/tmp/planted.so" },
              ],
              securityContext: RESTRICTED,
              livenessProbe: {
                exec: { command: ["sh", "-c", "id -u > /out/probe; id -G >> /out/probe"] },
                initialDelaySeconds: 1,
                periodSeconds: 1,
              },
              volumeMounts: [
                { name: "out", mountPath: "/out" },
                { name: "planted", mountPath: "/etc/passwd", subPath: "passwd" },
                { name: "planted", mountPath: "/etc/group", subPath: "group" },
                { name: "planted", mountPath: "/lib/planted.so", subPath: "planted.so" },
              ],
            }],
            volumes: [
              { name: "out", emptyDir: {} },
              { name: "planted", configMap: { name: "planted" } },
            ],
          },
        },
      );
      const pod = await waitForPod(env, "hostile", "running", running);
      await waitFor("the probe to run", async () => (await outFile(env, pod, "probe")) !== "");
      const exec = await waitFor("kubectl exec to work", async () => {
        const out = await kubectl(env, ["exec", "hostile", "--", "sh", "-c", "id -u; id -G"]);
        return out.code === 0 ? out : undefined;
      });
      const probe = await outFile(env, pod, "probe");
      const ran = (await outFile(env, pod, "ran")).trim().split("\n");
      console.log(`  probe: ${JSON.stringify(probe)}; exec: ${JSON.stringify(exec.stdout)}`);
      console.log(`  what the pod planted ran as: ${[...new Set(ran)].join(", ")}`);
      assert.ok(ran.includes("preload 65534"), "the planted library is loaded (as the user)");
      assert.ok(ran.includes("id 65534"), "the planted id runs (as the user)");
      const asRoot = ran.filter((line) => !line.endsWith(" 65534"));
      assert.deepEqual(asRoot, [], "nothing the pod planted ran as another user than its own");
      assert.equal(probe, "65534\n65534\n", "the probe runs as the container's user and group");
      assert.equal(exec.stdout, "65534\n65534\n", "kubectl exec runs as the container's user");
      await env.kubectl(["delete", "pod", "hostile", "--wait=false"]);
    });
  } finally {
    await env.stop();
  }
});
