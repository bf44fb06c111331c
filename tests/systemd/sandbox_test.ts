/**
 * What a container may touch, who it runs as and what it may use, proven under the real
 * systemd 252 with units planned and started by systemk's runtime:
 * - the sandbox: its own volumes readable (its Secret's files mode 0640), another pod's volume
 *   files (an emptyDir's, a Secret's) out of reach even for root (the state directory is
 *   hidden), no writes outside its writable mounts (`/etc`, `/usr`, `/var/lib/other`, a
 *   `readOnly` volumeMount, a configMap), `/home` and `/root` hidden, a private `/tmp`;
 * - `runAsUser`/`runAsGroup` (numeric), `runAsUserName` (a node user: its primary group
 *   follows), `supplementalGroups`;
 * - memory and CPU limits in the unit's cgroup. The hosts here run cgroup v1 controllers with a
 *   v2 `unified` hierarchy beside them: systemd 252 writes `MemoryMax=` to the v1
 *   `memory.limit_in_bytes`, `CPUQuota=` to the v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us` and
 *   `CPUWeight=` to `cpu.shares`; `MemoryLow=` has no v1 equivalent and is not applied.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { DEFAULT_SECURITY_POLICY } from "../../src/plan/mod.ts";
import { emptyDirPath, type PodSystem, SYSTEM_TEST, unitOf, withPodSystem } from "./_pods.ts";
import { podSliceName } from "../../src/unit/mod.ts";

/** Runs a probe pod to completion; returns it and its `/out/result` lines as a map. */
async function probe(
  s: PodSystem,
  manifest: string,
): Promise<{ pod: V1Pod; r: Map<string, string> }> {
  const pod = s.run(manifest);
  const status = await s.statusWhen(pod, (st) => st.phase === "Succeeded" || st.phase === "Failed");
  assert.equal(status.phase, "Succeeded", await s.describe());
  const text = await Deno.readTextFile(`${emptyDirPath(s, pod, "out")}/result`);
  const r = new Map(
    text.trim().split("\n").map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1).trim()];
    }),
  );
  return { pod, r };
}

/** The file of a Secret volume's key of `pod`, as the host sees it. */
const secretPath = (s: PodSystem, pod: V1Pod, volume: string, key: string) =>
  `${s.stateDir}/${pod.metadata!.uid}/volumes/secret/${volume}/${key}`;

/** A shell line recording whether `command` succeeded, as `name=yes|no`. */
const attempt = (name: string, command: string) =>
  `if ${command} 2>/dev/null; then echo ${name}=yes; else echo ${name}=no; fi >> /out/result`;

Deno.test({
  name: "sandbox, identity and limits of planned units under systemd",
  ...SYSTEM_TEST,
  async fn(t) {
    await withPodSystem(async (s) => {
      await t.step(
        "own volumes readable; other pods, /home, /root, /tmp hidden; writes confined",
        async () => {
          // Another pod with a file in its emptyDir and a Secret volume, running.
          const other = s.run(`
kind: Pod
metadata: {name: other}
spec:
  containers:
    - name: keep
      image: /bin/sh
      command: [/bin/sh, -c, 'echo other-secret > /data/secret; exec sleep infinity']
      volumeMounts: [{name: data, mountPath: /data}, {name: creds, mountPath: /creds}]
  volumes: [{name: data, emptyDir: {}}, {name: creds, secret: {secretName: other-creds}}]
---
kind: Secret
metadata: {name: other-creds}
data: {pw: ${btoa("other-pod-secret-value")}}
`);
          const otherSecret = `${emptyDirPath(s, other, "data")}/secret`;
          const otherSecretVolume = secretPath(s, other, "creds", "pw");
          await s.until(
            "the other pod's file",
            () => Deno.stat(otherSecret).then(() => true, () => undefined),
          );
          assert.equal(await Deno.readTextFile(otherSecretVolume), "other-pod-secret-value");
          // Things of the machine a container must not see or change.
          await Deno.mkdir(`${s.sd.root}/home/alice`, { recursive: true });
          await Deno.writeTextFile(`${s.sd.root}/home/alice/notes`, "private");
          await Deno.writeTextFile(`${s.sd.root}/root/notes`, "private");
          await Deno.mkdir(`${s.sd.root}/var/lib/other`, { recursive: true });
          await Deno.writeTextFile(`${s.sd.root}/tmp/host-marker`, "host");

          const { r } = await probe(
            s,
            `
kind: Pod
metadata: {name: sandbox}
spec:
  restartPolicy: Never
  containers:
    - name: probe
      image: /bin/sh
      command:
        - /bin/sh
        - -c
        - |
          echo "config=$(cat /cfg/key)" >> /out/result
          echo "own=$(cat /out/../out/result | head -c 6)" >> /out/result
          ${attempt("otherSecret", `cat ${otherSecret}`)}
          ${attempt("otherSecretVolume", `cat ${otherSecretVolume}`)}
          echo "credmode=$(stat -c %a /creds/pw)" >> /out/result
          echo "stateDir=$(ls -A ${s.stateDir} 2>&1 | tr '\\n' ' ')" >> /out/result
          ${attempt("writeEtc", "touch /etc/probe")}
          ${attempt("writeUsr", "touch /usr/probe")}
          ${attempt("writeVarLibOther", "touch /var/lib/other/probe")}
          ${attempt("writeReadOnlyMount", "touch /ro/probe")}
          ${attempt("writeConfigMap", "touch /cfg/probe")}
          ${attempt("writeOwnEmptyDir", "touch /out/probe")}
          ${attempt("readHome", "cat /home/alice/notes")}
          ${attempt("readRoot", "cat /root/notes")}
          echo "home=$(ls -A /home 2>&1 | tr '\\n' ' ')" >> /out/result
          ${attempt("seeHostTmp", "test -e /tmp/host-marker")}
          ${attempt("writeTmp", "touch /tmp/probe-marker")}
      volumeMounts:
        - {name: out, mountPath: /out}
        - {name: ro, mountPath: /ro, readOnly: true}
        - {name: cfg, mountPath: /cfg}
        - {name: creds, mountPath: /creds}
  volumes:
    - {name: out, emptyDir: {}}
    - {name: ro, emptyDir: {}}
    - {name: cfg, configMap: {name: cfg}}
    - {name: creds, secret: {secretName: creds}}
---
kind: ConfigMap
metadata: {name: cfg}
data: {key: configured}
---
kind: Secret
metadata: {name: creds}
data: {pw: ${btoa("own-secret")}}
`,
          );
          assert.equal(r.get("config"), "configured", "reads its own configMap");
          assert.equal(r.get("own"), "config", "reads its own emptyDir");
          assert.equal(r.get("otherSecret"), "no", "another pod's volume files are out of reach");
          assert.equal(r.get("otherSecretVolume"), "no", "another pod's Secret is out of reach");
          assert.equal(r.get("credmode"), "640", "Secret files are never readable by others");
          assert.equal(r.get("stateDir"), "", "the state directory shows no pod");
          assert.equal(r.get("writeEtc"), "no");
          assert.equal(r.get("writeUsr"), "no");
          assert.equal(r.get("writeVarLibOther"), "no");
          assert.equal(r.get("writeReadOnlyMount"), "no");
          assert.equal(r.get("writeConfigMap"), "no");
          assert.equal(r.get("writeOwnEmptyDir"), "yes");
          assert.equal(r.get("readHome"), "no");
          assert.equal(r.get("readRoot"), "no");
          assert.match(r.get("home")!, /^(|.*Permission denied.*)$/, "/home shows nothing");
          assert.equal(r.get("seeHostTmp"), "no", "/tmp is private");
          assert.equal(r.get("writeTmp"), "yes");
          const leaked = await Deno.stat(`${s.sd.root}/tmp/probe-marker`).then(
            () => true,
            () => false,
          );
          assert.equal(leaked, false, "the container's /tmp is not the machine's");
          for (const path of ["/etc/probe", "/usr/probe", "/var/lib/other/probe"]) {
            assert.equal(
              await Deno.stat(s.sd.root + path).then(() => true, () => false),
              false,
            );
          }
          assert.equal(await Deno.readTextFile(otherSecret), "other-secret\n", "untouched");
        },
      );

      await t.step("runAsUser/runAsGroup, runAsUserName and supplementalGroups", async () => {
        const daemon = s.node.lookupUser("daemon");
        assert.ok(daemon, "the machine has a daemon user");
        // umask 0: containers of different users append to one result file.
        const ids = (name: string) =>
          `umask 0; echo "${name}=$(id -u) $(id -g) $(id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' ')" >> /out/result`;
        const manifest = `
kind: Pod
metadata: {name: users}
spec:
  restartPolicy: Never
  securityContext: {supplementalGroups: [4, 100]}
  initContainers:
    - name: numeric
      image: /bin/sh
      command: [/bin/sh, -c, ${JSON.stringify(`${ids("numeric")}; touch /out/by-numeric`)}]
      securityContext: {runAsUser: 65534, runAsGroup: 50}
      volumeMounts: [{name: out, mountPath: /out}]
  containers:
    - name: named
      image: /bin/sh
      command: [/bin/sh, -c, ${JSON.stringify(ids("named"))}]
      securityContext: {windowsOptions: {runAsUserName: daemon}}
      volumeMounts: [{name: out, mountPath: /out}]
  volumes: [{name: out, emptyDir: {}}]
`;
        const { pod, r } = await probe(s, manifest);
        assert.equal(r.get("numeric"), "65534 50 4 50 100");
        const g = daemon.gid;
        assert.equal(
          r.get("named"),
          `${daemon.uid} ${g} ${[g, 4, 100].sort((a, b) => a - b).join(" ")}`,
        );
        const file = await Deno.stat(`${emptyDirPath(s, pod, "out")}/by-numeric`);
        assert.deepEqual([file.uid, file.gid], [65534, 50], "files are created as the user");
        const shown = await s.sd.exec([
          "systemctl",
          "show",
          "-p",
          "User,Group,SupplementaryGroups",
          unitOf(pod, "named"),
          unitOf(pod, "numeric"),
        ]);
        assert.equal(
          shown.stdout,
          `User=daemon\nGroup=${g}\nSupplementaryGroups=4 100\n\n` +
            "User=65534\nGroup=50\nSupplementaryGroups=4 100\n",
        );
      });

      await t.step("memory and CPU limits land in the unit's cgroup", async () => {
        const pod = s.run(`
kind: Pod
metadata: {name: limits}
spec:
  containers:
    - name: app
      image: /bin/sleep
      command: [/bin/sleep, infinity]
      resources:
        limits: {memory: 64Mi, cpu: 250m}
        requests: {memory: 32Mi, cpu: 100m}
`);
        const unit = unitOf(pod, "app");
        const props = await s.until("the limited unit running", async () => {
          const p = await s.props(unit);
          return p.SubState === "running" && p.MemoryCurrent !== undefined ? p : undefined;
        });
        assert.ok(props.MemoryCurrent! > 0, "memory is accounted");
        const shown = await s.sd.exec([
          "systemctl",
          "show",
          "-p",
          "ControlGroup,MemoryMax,CPUQuotaPerSecUSec,CPUWeight,MemoryLow",
          unit,
        ]);
        const p = new Map(
          shown.stdout.trim().split("\n").map((l) => l.split("=", 2) as [string, string]),
        );
        assert.equal(p.get("MemoryMax"), String(64 * 2 ** 20));
        assert.equal(p.get("CPUQuotaPerSecUSec"), "250ms");
        assert.equal(p.get("MemoryLow"), String(32 * 2 ** 20));
        const cgroup = p.get("ControlGroup")!;
        // In the pod's slice, as every container of the pod.
        assert.equal(cgroup, `/systemk.slice/${podSliceName(pod.metadata!.uid!)}/${unit}`);
        // The process really is in that cgroup, in each v1 hierarchy.
        const own = await Deno.readTextFile(`${s.sd.root}/proc/${props.MainPID}/cgroup`);
        assert.match(own, new RegExp(`^\\d+:memory:(/.*)?${cgroup.replaceAll(".", "\\.")}$`, "m"));
        const fs = `${s.sd.root}/sys/fs/cgroup`;
        const read = (path: string) => Deno.readTextFile(`${fs}/${path}`).then((t) => t.trim());
        assert.equal(await read(`memory${cgroup}/memory.limit_in_bytes`), String(64 * 2 ** 20));
        const cpu = await Deno.stat(`${fs}/cpu`).then(() => "cpu", () => "cpu,cpuacct");
        const quota = Number(await read(`${cpu}${cgroup}/cpu.cfs_quota_us`));
        const period = Number(await read(`${cpu}${cgroup}/cpu.cfs_period_us`));
        assert.equal(quota / period, 0.25, `quota ${quota} µs per ${period} µs`);
        // CPUWeight= maps to v1 shares as weight × 1024 / 100.
        const weight = Number(p.get("CPUWeight"));
        assert.equal(
          Number(await read(`${cpu}${cgroup}/cpu.shares`)),
          Math.floor((weight * 1024) / 100),
        );
        console.log(
          `  ${unit}: MemoryMax=${p.get("MemoryMax")} CPUQuota=${quota}/${period} ` +
            `CPUWeight=${weight} MemoryCurrent=${props.MemoryCurrent}`,
        );
      });
    }, {
      // The host groups the identity step runs with (adm, users, staff) are the node's to allow.
      policy: {
        ...DEFAULT_SECURITY_POLICY,
        allowedHostGroups: ["nogroup", "adm", "users", "staff"],
      },
    });
  },
});
