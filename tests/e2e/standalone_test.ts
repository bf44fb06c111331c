/**
 * Standalone mode end to end: `systemk --pod-manifest-path <dir>` runs as the service `systemk`
 * of a booted systemd 252 (the test harness's), with the exact permissions it ships with, and
 * follows a manifest directory bound in from the host: pods run, a new file adds a pod, an edit
 * replaces it, a deletion removes it, bad files are reported by name without disturbing other
 * pods, and a restart of systemk adopts running units (and removes those whose file went away
 * meanwhile) instead of restarting them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PERMISSION_FLAGS } from "../../scripts/permissions.ts";
import { parseUnit, readMetadata } from "../../src/unit/mod.ts";
import { bootTestSystemd } from "../harness/systemd.ts";
import { waitFor } from "./_node_env.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const NODE = "t1";

/** A pod manifest named `name` with one container `container` running `script`. */
function podYAML(name: string, container: string, script: string, extra = ""): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:${extra}
  containers:
    - name: ${container}
      image: /bin/sh
      command: [/bin/sh, -c, ${JSON.stringify(script)}]
`;
}

const unitOf = (pod: string, container: string) =>
  `systemk.default.${pod}-${NODE}.${container}.service`;

Deno.test({
  name: "standalone mode follows a manifest directory and adopts its pods across restarts",
  ignore: Deno.uid() !== 0,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "systemk-manifests-" });
    await Deno.copyFile(`${REPO}/examples/standalone/hello.yaml`, `${dir}/hello.yaml`);
    await Deno.writeTextFile(`${dir}/web.yaml`, podYAML("web", "main", "exec sleep infinity"));
    // Fails once, never to be run again: a restart of systemk must not re-run it.
    await Deno.writeTextFile(
      `${dir}/job.yaml`,
      podYAML("job", "once", "echo job ran; exit 3", "\n  restartPolicy: Never"),
    );
    const sd = await bootTestSystemd({ binds: [dir] });
    const run = async (argv: string[]) => {
      const out = await sd.exec(argv);
      if (out.code !== 0) throw new Error(`${argv.join(" ")}: ${out.stderr}`);
      return out.stdout;
    };
    const log = () => run(["journalctl", "--no-pager", "-o", "cat", "-u", "systemk.service"]);
    const describe = async () =>
      `--- systemk log ---\n${await log()}\n--- units ---\n${await run([
        "systemctl",
        "list-units",
        "--all",
        "--no-pager",
        "systemk*",
      ])}`;
    const startSystemk = () =>
      run([
        "systemd-run",
        "--unit=systemk",
        "--setenv=NO_COLOR=1",
        `--working-directory=${REPO}`,
        "deno",
        "run",
        ...PERMISSION_FLAGS,
        `${REPO}/main.ts`,
        "--pod-manifest-path",
        dir,
        "--nodename",
        NODE,
      ]);
    /** Pod units loaded in systemd (not systemk's own service, not the pods' slices). */
    const units = async () =>
      (await run([
        "systemctl",
        "list-units",
        "--all",
        "--plain",
        "--no-legend",
        "systemk.*.service",
      ]))
        .split("\n").map((l) => l.trim().split(/\s+/)[0])
        .filter(Boolean);
    const show = async (unit: string, property: string) =>
      (await run(["systemctl", "show", "-P", property, unit])).trim();
    const state = (unit: string) => show(unit, "ActiveState");
    const invocations = async (names: string[]) =>
      Object.fromEntries(
        await Promise.all(names.map(async (u) => [u, await show(u, "InvocationID")])),
      );
    const unitFile = (unit: string) => `${sd.root}/run/systemd/system/${unit}`;
    const podUID = async (unit: string) =>
      readMetadata(parseUnit(await Deno.readTextFile(unitFile(unit))))!.podUID;
    const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
    /** Waits for `pattern` in systemk's log after `since` characters of it. */
    const logged = (what: string, pattern: RegExp, since = 0) =>
      waitFor(what, async () => pattern.test((await log()).slice(since)), 30_000, describe);
    const active = (unit: string) =>
      waitFor(`${unit} active`, async () => (await state(unit)) === "active", 30_000, describe);
    const gone = (unit: string) =>
      waitFor(
        `${unit} gone`,
        async () => !(await units()).includes(unit) && !(await exists(unitFile(unit))),
        30_000,
        describe,
      );

    try {
      const started = performance.now();
      await startSystemk();
      const lap = (what: string) =>
        console.log(`  ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);

      await t.step("runs every pod of the directory", async () => {
        for (
          const unit of [
            unitOf("hello", "writer"),
            unitOf("hello", "reader"),
            unitOf("web", "main"),
          ]
        ) {
          await active(unit);
        }
        await logged("hello Running", /^pod default\/hello-t1: Running 2\/2 ready/m);
        await logged("job Failed", /^pod default\/job-t1: Failed .*exit 3/m);
        // The example's containers talk: the writer's lines reach the reader.
        await waitFor(
          "the reader's first line",
          async () =>
            (await run(["journalctl", "--no-pager", "-o", "cat", "-u", unitOf("hello", "reader")]))
              .includes("hello from a ConfigMap #1"),
          30_000,
          describe,
        );
        lap("pods of the directory running");
      });

      await t.step("a new file adds a pod", async () => {
        await Deno.writeTextFile(
          `${dir}/extra.yaml`,
          podYAML("extra", "main", "exec sleep infinity"),
        );
        await active(unitOf("extra", "main"));
        lap("added");
      });

      await t.step("an edited file replaces its pod (new UID, old units gone)", async () => {
        const old = unitOf("web", "main");
        const oldUID = await podUID(old);
        await Deno.writeTextFile(
          `${dir}/web.yaml`,
          podYAML("web", "server", "exec sleep infinity"),
        );
        await active(unitOf("web", "server"));
        await gone(old);
        const newUID = await podUID(unitOf("web", "server"));
        assert.notEqual(newUID, oldUID);
        assert.equal(await exists(`${sd.root}/run/systemk/${oldUID}`), false, "old pod dir gone");
        lap("replaced");
      });

      await t.step("a deleted file stops and removes its pod's units and files", async () => {
        const unit = unitOf("extra", "main");
        const uid = await podUID(unit);
        assert.equal(await exists(`${sd.root}/run/systemk/${uid}`), true);
        await Deno.remove(`${dir}/extra.yaml`);
        await gone(unit);
        assert.equal(await exists(`${sd.root}/run/systemk/${uid}`), false, "pod dir gone");
        lap("deleted");
      });

      await t.step(
        "bad files get a clear error naming them; other pods are undisturbed",
        async () => {
          const running = [
            unitOf("hello", "writer"),
            unitOf("hello", "reader"),
            unitOf("web", "server"),
            unitOf("job", "once"),
          ];
          const before = await invocations(running);
          const since = (await log()).length;
          const broken = "kind: Pod\nmetadata: {name: [unclosed\n";
          await Deno.writeTextFile(`${dir}/broken.yaml`, broken);
          // A good file turning bad (an edit in progress) keeps its pod as it was.
          const job = await Deno.readTextFile(`${dir}/job.yaml`);
          await Deno.writeTextFile(`${dir}/job.yaml`, broken);
          await Deno.writeTextFile(
            `${dir}/nocommand.yaml`,
            "kind: Pod\nmetadata: {name: nocommand}\nspec:\n  containers: [{name: main, image: /bin/sh}]\n",
          );
          await logged("the broken file named", new RegExp(`${dir}/broken\\.yaml: .+`), since);
          await logged("the broken edit named", new RegExp(`${dir}/job\\.yaml: .+`), since);
          await logged(
            "the pod that cannot be planned named",
            /default\/nocommand-t1.*CreateContainerConfigError.*no command is given/,
            since,
          );
          assert.deepEqual(await invocations(running), before, "no other unit restarted");
          assert.deepEqual(
            (await units()).filter((u) => u.includes("nocommand")),
            [],
            "no unit for the pod that cannot be planned",
          );
          const reported = (await log()).slice(since).split("\n")
            .filter((l) => /broken|nocommand|job\.yaml/.test(l));
          console.log(`  what systemk said:\n    ${[...new Set(reported)].join("\n    ")}`);
          // Fixed again: the same manifest is the same pod (same UID), left as it is.
          await Deno.writeTextFile(`${dir}/job.yaml`, job);
          await Deno.remove(`${dir}/broken.yaml`);
          await Deno.remove(`${dir}/nocommand.yaml`);
          lap("bad files reported");
        },
      );

      await t.step(
        "a restart of systemk adopts running units instead of restarting them",
        async () => {
          const all = await units();
          const before = await invocations(all);
          await run(["systemctl", "stop", "systemk"]);
          const since = (await log()).length;
          await startSystemk();
          await logged("adoption", /standalone: node t1, .*, 3 pod\(s\) found running/, since);
          await logged("hello's status", /^pod default\/hello-t1: Running 2\/2 ready/m, since);
          await logged("job's status", /^pod default\/job-t1: Failed/m, since);
          assert.deepEqual(await invocations(await units()), before, "no unit restarted");
          lap("restarted and adopted");
        },
      );

      await t.step(
        "units of a manifest removed while systemk was down go at the next start",
        async () => {
          const keep = [
            unitOf("hello", "writer"),
            unitOf("hello", "reader"),
            unitOf("job", "once"),
          ];
          const before = await invocations(keep);
          await run(["systemctl", "stop", "systemk"]);
          const uid = await podUID(unitOf("web", "server"));
          await Deno.remove(`${dir}/web.yaml`);
          await startSystemk();
          await gone(unitOf("web", "server"));
          assert.equal(await exists(`${sd.root}/run/systemk/${uid}`), false, "pod dir gone");
          assert.deepEqual(await invocations(keep), before, "the other pods untouched");
          lap("orphan removed");
        },
      );
    } finally {
      await sd.exec(["systemctl", "stop", "systemk"]);
      await sd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
