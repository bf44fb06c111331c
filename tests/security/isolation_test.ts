/**
 * Security properties proven in a real systemd 252 (tests/harness/systemd.ts), with units and
 * volume files exactly as planPod and src/volumes/apply.ts make them:
 *
 * - a pod cannot read another pod's Secret through `/proc/<pid>/root` of the other pod's
 *   process when it runs as another user (through systemk's state directory it cannot either,
 *   even as root: tests/systemd/sandbox_test.ts);
 * - `allowPrivilegeEscalation: false` holds: a setuid-root binary does not elevate, while the
 *   same binary does elevate in a privileged container (so the check is meaningful). In a plain
 *   container of a non-root user it does not elevate either (systemd's implied
 *   `NoNewPrivileges=`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { planPod, type PodPlan } from "../../src/plan/mod.ts";
import { applyVolumes } from "../../src/volumes/apply.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { inputFromManifest } from "../plan/_fixtures.ts";

const SECRET = "pod-a-secret-value";

const POD_A = `
kind: Pod
metadata: {name: a, namespace: team-a, uid: sec-pod-a}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 65534, runAsGroup: 65534}
  containers:
    - name: holder
      image: /bin/sh
      command: [/bin/sh, -c, 'cat /creds/pw > /dev/null && exec sleep 300']
      volumeMounts: [{name: creds, mountPath: /creds}]
  volumes:
    - {name: creds, secret: {secretName: creds}}
---
kind: Secret
metadata: {name: creds, namespace: team-a}
data: {pw: ${btoa(SECRET)}}
`;

// Tries every way in it has, and writes what it read (or "denied") to its own emptyDir.
const PROBE = String.raw`
out=/out/result
try() { if v=$(cat "$1" 2> /dev/null); then echo "read $1: $v" >> $out; fi; }
: > $out
for p in /proc/[0-9]*; do try $p/root/creds/pw; done
echo done >> $out
`;

const POD_B = `
kind: Pod
metadata: {name: b, namespace: team-b, uid: sec-pod-b}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1, runAsGroup: 1}
  containers:
    - name: probe
      image: /bin/sh
      command: [/bin/sh, -c, ${JSON.stringify(PROBE)}]
      volumeMounts: [{name: out, mountPath: /out}]
  volumes:
    - {name: out, emptyDir: {}}
`;

const SUID = "/usr/local/bin/systemk-test-suid-id";

const POD_SETUID = `
kind: Pod
metadata: {name: setuid, namespace: default, uid: sec-pod-setuid}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 65534, runAsGroup: 65534}
  containers:
    - name: nnp
      image: ${SUID}
      command: [/bin/sh, -c, '${SUID} -u > /out/nnp']
      securityContext: {allowPrivilegeEscalation: false}
      volumeMounts: [{name: out, mountPath: /out}]
    - name: plain
      image: ${SUID}
      command: [/bin/sh, -c, '${SUID} -u > /out/plain']
      volumeMounts: [{name: out, mountPath: /out}]
    - name: control
      image: ${SUID}
      command: [/bin/sh, -c, '${SUID} -u > /out/control']
      securityContext: {privileged: true}
      volumeMounts: [{name: out, mountPath: /out}]
  volumes:
    - {name: out, emptyDir: {}}
`;

// Tries to swap the subPath directory for a symlink to /etc, which systemd would follow when
// it binds the subPath for the victim's next start.
const SWAP = String.raw`
{ rm -rf /data/sub || echo rm-refused; mv /data/sub /data/moved || echo mv-refused
  ln -sfT /etc /data/sub || echo ln-refused; } > /data/swap 2> /dev/null`;

const POD_SUBPATH = `
kind: Pod
metadata: {name: swap, namespace: default, uid: sec-pod-swap}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 65534, runAsGroup: 65534}
  initContainers:
    - name: swapper
      image: /bin/sh
      command: [/bin/sh, -c, ${JSON.stringify(SWAP)}]
      volumeMounts: [{name: data, mountPath: /data}]
  containers:
    - name: victim
      image: /bin/sh
      command: [/bin/sh, -c, 'ls -A /x > /out/seen']
      volumeMounts: [{name: data, mountPath: /x, subPath: sub}, {name: out, mountPath: /out}]
  volumes:
    - {name: data, emptyDir: {}}
    - {name: out, emptyDir: {}}
`;

/** Writes the plan's volume files inside the test system (paths under its root) and units. */
async function install(sd: TestSystemd, plan: PodPlan): Promise<void> {
  await applyVolumes(plan.volumes.map((v) => ({ ...v, path: sd.root + v.path })));
  for (const u of plan.units) {
    await Deno.writeTextFile(`${sd.root}/run/systemd/system/${u.name}`, u.text);
  }
  const reload = await sd.exec(["systemctl", "daemon-reload"]);
  assert.equal(reload.code, 0, reload.stderr);
}

async function start(sd: TestSystemd, plan: PodPlan): Promise<string[]> {
  const names = plan.units.map((u) => u.name);
  const r = await sd.exec(["systemctl", "start", ...names]);
  const journal = async () =>
    (await sd.exec(["journalctl", "--no-pager", "-o", "cat", ...names.flatMap((n) => ["-u", n])]))
      .stdout;
  assert.equal(r.code, 0, `${r.stderr}\n${r.code === 0 ? "" : await journal()}`);
  return names;
}

/** Waits until every unit's SubState is one of `states`. */
async function waitFor(sd: TestSystemd, units: string[], states: string[]): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const r = await sd.exec(["systemctl", "show", "-P", "SubState", ...units]);
    const subStates = r.stdout.split("\n").filter((s) => s !== "");
    if (subStates.every((s) => states.includes(s))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const status = await sd.exec(["systemctl", "status", "--no-pager", ...units]);
  assert.fail(`units did not reach ${states}:\n${status.stdout}`);
}

Deno.test({
  name: "security: a pod reads no other pod's Secret through its /proc root",
  ignore: Deno.uid() !== 0,
  async fn() {
    const sd = await bootTestSystemd();
    try {
      const a = planPod(inputFromManifest(POD_A));
      const b = planPod(inputFromManifest(POD_B));
      await install(sd, a);
      await install(sd, b);
      await waitFor(sd, await start(sd, a), ["running"]);
      await waitFor(sd, await start(sd, b), ["exited", "dead", "failed"]);
      const result = await Deno.readTextFile(
        `${sd.root}${b.podDir}/volumes/emptydir/out/result`,
      );
      assert.equal(result, "done\n", "nothing read");
      // The secret is there and readable by its own pod's user (the probe's failures mean
      // something): pod A's unit read it before sleeping, or it would have exited.
      const state = await sd.exec(["systemctl", "show", "-P", "SubState", a.units[0].name]);
      assert.equal(state.stdout.trim(), "running");
    } finally {
      await sd.stop();
    }
  },
});

Deno.test({
  name: "security: allowPrivilegeEscalation: false keeps a setuid-root binary from elevating",
  ignore: Deno.uid() !== 0,
  async fn() {
    const sd = await bootTestSystemd();
    try {
      await Deno.copyFile("/usr/bin/id", sd.root + SUID);
      await Deno.chown(sd.root + SUID, 0, 0); // before chmod: chown clears the setuid bit
      await Deno.chmod(sd.root + SUID, 0o4755);
      const plan = planPod(inputFromManifest(POD_SETUID));
      await install(sd, plan);
      await waitFor(sd, await start(sd, plan), ["exited", "dead", "failed"]);
      const out = `${sd.root}${plan.podDir}/volumes/emptydir/out`;
      // Only a privileged container (no sandbox) lets setuid elevate a non-root user...
      assert.equal(await Deno.readTextFile(`${out}/control`), "0\n", "setuid elevates without");
      // ...a plain one does not either: systemd implies NoNewPrivileges= for a non-root User=
      // with ProtectKernelTunables= (measured), stricter than Kubernetes' default.
      assert.equal(await Deno.readTextFile(`${out}/plain`), "65534\n");
      assert.equal(
        await Deno.readTextFile(`${out}/nnp`),
        "65534\n",
        "and not with NoNewPrivileges",
      );
    } finally {
      await sd.stop();
    }
  },
});

Deno.test({
  name: "security: a pod cannot swap an emptyDir subPath for a symlink to the host",
  ignore: Deno.uid() !== 0,
  async fn() {
    const sd = await bootTestSystemd();
    try {
      const plan = planPod(inputFromManifest(POD_SUBPATH));
      await install(sd, plan);
      // Starting the victim runs the swapper (its init container) first.
      const victim = plan.units.filter((u) => !u.init).map((u) => u.name);
      await waitFor(sd, await start(sd, { ...plan, units: plan.units.filter((u) => !u.init) }), [
        "exited",
        "dead",
        "failed",
      ]);
      const volumes = `${sd.root}${plan.podDir}/volumes/emptydir`;
      assert.equal(
        await Deno.readTextFile(`${volumes}/data/swap`),
        "rm-refused\nmv-refused\nln-refused\n",
      );
      assert.equal(await Deno.readTextFile(`${volumes}/out/seen`), "", "its own empty directory");
      assert.ok((await Deno.lstat(`${volumes}/data/sub`)).isDirectory, `${victim} kept its dir`);
    } finally {
      await sd.stop();
    }
  },
});
