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
import { buildDeb } from "../packages/_fixtures.ts";

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

/** What the other pods must not see. */
const SECRET = "victim-secret-4f1d";
const PLAIN = "victim-plain-9c2e";
const ARGUMENT = "victim-argument-2b7a";

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

    await t.step(
      "a package's ExecStartPre=+ and ExecStartPost=!! run sandboxed as the pod's user",
      async () => {
        // Notes its user where only the sandbox mounts /out, and in the package's own directory,
        // which only root may write.
        const note = "/bin/sh -c 'id -u | tee -a /out/ran /var/lib/prefixed/ran > /dev/null; true'";
        const dir = await Deno.makeTempDir({ prefix: "systemk-deb-" });
        try {
          const deb = await buildDeb(dir, "prefixed", "1.0", {
            service: `ExecStartPre=+${note}\nExecStartPost="!!/bin/sh" ${note.slice(8)}\n` +
              "ExecStart=/usr/bin/prefixed\n",
          });
          await Deno.copyFile(deb, `${env.system.root}/var/tmp/prefixed.deb`);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
        // Installed beforehand, as a node admin would; policy-rc.d keeps its unit from starting.
        const install = await env.system.exec([
          "sh",
          "-c",
          "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d" +
          " && dpkg -i /var/tmp/prefixed.deb; status=$?; rm -f /usr/sbin/policy-rc.d; exit $status",
        ]);
        assert.equal(install.code, 0, install.stdout + install.stderr);
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "prefixed", namespace: "default" },
          spec: {
            nodeName: env.nodeName,
            terminationGracePeriodSeconds: 2,
            securityContext: { runAsNonRoot: true, runAsUser: 65534 },
            containers: [{
              name: "app",
              image: "prefixed",
              securityContext: RESTRICTED,
              volumeMounts: [{ name: "out", mountPath: "/out" }],
            }],
            volumes: [{ name: "out", emptyDir: {} }],
          },
        });
        const pod = await waitForPod(env, "prefixed", "running", running);
        // ExecStartPost= may still run once the container shows running.
        const inPod = await waitFor("both commands to note their user", async () => {
          const ran = await outFile(env, pod, "ran");
          return ran.split("\n").length > 2 ? ran : undefined;
        }, 30_000).catch(() => outFile(env, pod, "ran"));
        const host = await env.system.exec(["cat", "/var/lib/prefixed/ran"]);
        console.log(
          `  on the host: ${JSON.stringify(host.stdout)}; in the pod: ${JSON.stringify(inPod)}`,
        );
        assert.equal(host.stdout, "", "nothing ran outside the sandbox");
        assert.equal(inPod, "65534\n65534\n", "both ran in the sandbox as the pod's user");
        await env.kubectl(["delete", "pod", "prefixed", "--wait=false"]);
      },
    );

    await t.step("a pod sees nothing of another pod's unit, env or argv", async () => {
      for (const namespace of ["team-a", "team-b"]) {
        await env.kubectl(["create", "namespace", namespace]);
        await waitFor(
          `the default ServiceAccount of ${namespace}`,
          () => env.getJSON(["serviceaccount", "default", "--namespace", namespace]),
        );
      }
      await env.apply(
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "token", namespace: "team-a" },
          stringData: { token: SECRET },
        },
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "victim", namespace: "team-a" },
          spec: {
            nodeName: env.nodeName,
            terminationGracePeriodSeconds: 2,
            securityContext: { runAsUser: 1 },
            containers: [{
              name: "app",
              image: "/bin/sh",
              command: ["/bin/sh", "-c", "while :; do sleep 1; done", "victim"],
              args: ["--token=$(TOKEN)", `--arg=${ARGUMENT}`],
              env: [
                { name: "TOKEN", valueFrom: { secretKeyRef: { name: "token", key: "token" } } },
                { name: "PLAIN", value: PLAIN },
              ],
            }],
          },
        },
      );
      const victim = await waitForPod(env, "victim", "running", running, { namespace: "team-a" });
      // As root on the node: the Secret and the environment are in neither the unit file nor
      // systemd's properties, and the process has them all the same.
      const unit = "systemk.team-a.victim.app.service";
      const file = await env.system.exec(["cat", `/run/systemd/system/${unit}`]);
      const shown = await env.system.exec(["systemctl", "show", unit]);
      const pid = await env.unitProperty(unit, "MainPID");
      // Until systemd's forked child has executed the command, its name is "(sh)".
      const argv = await waitFor("the container's command line", async () => {
        const out = await env.system.exec(["sh", "-c", `tr '\\0' ' ' < /proc/${pid}/cmdline`]);
        return out.stdout.includes("--token=") ? out : undefined;
      }, 30_000);
      assert.ok(file.stdout.includes("[X-Kubernetes]"), file.stderr);
      assert.ok(!file.stdout.includes(SECRET) && !file.stdout.includes(PLAIN), "unit file");
      assert.ok(!shown.stdout.includes(SECRET) && !shown.stdout.includes(PLAIN), "properties");
      assert.ok(argv.stdout.includes(`--token=${SECRET} --arg=${ARGUMENT}`), argv.stdout);
      const mode = await env.system.exec(["stat", "-c", "%a %U", `/run/systemd/system/${unit}`]);
      assert.equal(mode.stdout.trim(), "600 root");

      // Everything another pod's author (Pod Security "restricted") tries.
      const LOOK = [
        `cat /run/systemd/system/systemk.* /run/systemd/transient/* 2>&1`,
        `ls /run/systemd/system 2>&1`,
        `systemctl show 'systemk.*' 2>&1`,
        `busctl --system tree org.freedesktop.systemd1 2>&1 | grep -i team 2>&1`,
        `cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'`,
        `ps -eo pid,user,args 2>&1`,
      ].join("; ");
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "nosy", namespace: "team-b" },
        spec: {
          nodeName: env.nodeName,
          restartPolicy: "Never",
          securityContext: { runAsNonRoot: true, runAsUser: 65534 },
          containers: [{
            name: "app",
            image: "/bin/sh",
            command: ["/bin/sh", "-c", `{ ${LOOK}; } > /out/seen; echo done >> /out/seen`],
            securityContext: RESTRICTED,
            volumeMounts: [{ name: "out", mountPath: "/out" }],
          }],
          volumes: [{ name: "out", emptyDir: {} }],
        },
      });
      const nosy = await waitForPod(
        env,
        "nosy",
        "done",
        (p) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed",
        { namespace: "team-b" },
      );
      const seen = await outFile(env, nosy, "seen");
      console.log(`  what the other pod saw:\n${seen.replace(/^/gm, "    | ")}`);
      assert.ok(seen.endsWith("done\n"), "the attempts ran");
      assert.ok(!seen.includes(SECRET), "no Secret value");
      assert.ok(!seen.includes(PLAIN), "no environment value");
      assert.ok(!seen.includes(ARGUMENT), "no argument");
      assert.ok(!seen.includes("team-a"), "no unit of the other pod");
      assert.ok(!seen.includes(victim.metadata!.uid!), "no trace of the other pod at all");
    });
  } finally {
    await env.stop();
  }
});
