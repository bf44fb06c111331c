/**
 * Planned units run by a real systemd 252 (the test harness's namespaced one): what the golden
 * files only show, proven — the init chain, the user, values reaching the process exactly
 * (Environment=, the secret EnvironmentFile=, ExecStart words with `$`/`%` next to a
 * package's raw words), the sandbox (read-only root, other pods' files invisible, own volumes
 * mounted, configMaps read-only).
 *
 * @module
 */
import assert from "node:assert/strict";
import { planPod, type PodPlan } from "../../src/plan/mod.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { applyVolumes } from "../harness/plan_volumes.ts";
import { inputFromManifest } from "./_fixtures.ts";

async function installAndRun(sd: TestSystemd, plan: PodPlan): Promise<void> {
  await applyVolumes(sd, plan);
  for (const u of plan.units) {
    await Deno.writeTextFile(`${sd.root}/run/systemd/system/${u.name}`, u.text);
  }
  assert.equal((await sd.exec(["systemctl", "daemon-reload"])).code, 0);
  const apps = plan.units.filter((u) => !u.init).map((u) => u.name);
  // Starting the app units pulls the init chain in; oneshot inits finish before apps start.
  const start = await sd.exec(["systemctl", "start", ...apps]);
  assert.equal(start.code, 0, start.stderr);
  for (let i = 0; i < 200; i++) {
    const states = await sd.exec(["systemctl", "show", "-P", "SubState", ...apps]);
    const done = ["exited", "dead", "failed"];
    const subStates = states.stdout.split("\n").filter((s) => s !== "");
    if (subStates.every((s) => done.includes(s))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const status = await sd.exec(["systemctl", "status", "--no-pager", ...apps]);
  assert.fail(`units did not finish:\n${status.stdout}`);
}

const WEIRD = `a "quoted" 'single' \\back $HOME $(NOT) 100% %n tab\there\nnew line ünï`;
// Through the EnvironmentFile=: every character its parser treats specially.
const SECRET = "hunter2 $x ${y} \"q\" 's' `cmd` \\back\\\nline2 %n # not a comment\n";

const POD = `
kind: Pod
metadata: {name: it, namespace: default, uid: it-0001}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 65534}
  initContainers:
    - name: init
      image: /bin/sh
      command: [/bin/sh, -c, 'echo from-init > /data/init && mkdir /data/out']
      volumeMounts: [{name: data, mountPath: /data}]
  containers:
    - name: check
      image: /bin/sh
      command:
        - /bin/sh
        - -c
        - |
          out=/data/out
          id -u > $out/uid
          cat /data/init > $out/init
          printf %s "$WEIRD" > $out/weird
          printf %s "$PW" > $out/pw
          printf %s "$1" > $out/arg
          ls -A /run/systemk > $out/statedir
          touch /etc/systemk-test 2> /dev/null && echo writable > $out/etc || echo ro > $out/etc
          cat /config/key > $out/config
          touch /config/new 2> /dev/null && echo writable > $out/configrw || echo ro > $out/configrw
          stat -c %a /creds/pw > $out/credmode
        - sh
        - ${JSON.stringify(WEIRD)}
      env:
        - {name: WEIRD, value: ${JSON.stringify(WEIRD)}}
        - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: pw}}}
      volumeMounts:
        - {name: data, mountPath: /data}
        - {name: config, mountPath: /config}
        - {name: creds, mountPath: /creds}
    - name: pkg-args
      image: fakepkg
      args: [-c, 'printf %s "$1" > /data/out/pkgargs', sh, ${JSON.stringify(WEIRD)}]
      volumeMounts: [{name: data, mountPath: /data}]
    - name: pkg-command
      image: fakepkg
      command: [/bin/sh]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - {name: data, emptyDir: {}}
    - {name: config, configMap: {name: config}}
    - {name: creds, secret: {secretName: creds}}
---
kind: ConfigMap
metadata: {name: config}
data: {key: configured}
---
kind: Secret
metadata: {name: creds}
data: {pw: ${btoa(SECRET)}}
`;

// A package unit whose executable `args` keep.
const ARGS_UNIT = "[Service]\nExecStart=/bin/sh -c 'exit 1'\n";

// A package unit whose words systemd must still expand after `command` replaces its first word.
const COMMAND_UNIT = `[Service]
Environment=PKGVAR=from-package
ExecStart=/bin/false -c "printf %%s:%%s \${PKGVAR} \\"$$1\\" > /data/out/pkgcommand" arg0 "two words"
`;

Deno.test({
  name: "systemd runs planned units: init chain, user, exact values, sandbox",
  ignore: Deno.uid() !== 0,
  async fn() {
    const sd = await bootTestSystemd();
    try {
      const input = inputFromManifest(POD);
      input.packages = new Map([
        ["pkg-args", { name: "fakepkg", unitText: ARGS_UNIT }],
        ["pkg-command", { name: "fakepkg", unitText: COMMAND_UNIT }],
      ]);
      const plan = planPod(input);
      // another pod's secret, which must stay invisible
      await Deno.mkdir(`${sd.root}/run/systemk/other-pod`, { recursive: true });
      await Deno.writeTextFile(`${sd.root}/run/systemk/other-pod/secret`, "nope");
      await installAndRun(sd, plan);

      const out = `${sd.root}${plan.podDir}/volumes/emptydir/data/out`;
      const read = (name: string) => Deno.readTextFile(`${out}/${name}`);
      const journal = await sd.exec(["journalctl", "--no-pager", "-o", "cat", "-u", "systemk.*"]);
      const context = `journal:\n${journal.stdout}`;
      assert.equal(await read("uid"), "65534\n", context);
      assert.equal(await read("init"), "from-init\n");
      assert.equal(await read("weird"), WEIRD);
      assert.equal(await read("pw"), SECRET);
      assert.equal(await read("arg"), WEIRD);
      assert.equal(await read("statedir"), "", "no pod's state is visible");
      assert.equal(await read("etc"), "ro\n");
      assert.equal(await read("config"), "configured");
      assert.equal(await read("configrw"), "ro\n");
      assert.equal(await read("credmode"), "640\n");
      assert.equal(await read("pkgargs"), WEIRD);
      assert.equal(await read("pkgcommand"), "from-package:two words");
    } finally {
      await sd.stop();
    }
  },
});
