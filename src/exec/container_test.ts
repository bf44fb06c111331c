/**
 * execInContainer against a booted systemd 252 (tests/harness/systemd.ts) running a container
 * unit made by the real planner: the command sees the container's user, groups, environment
 * (plain and Secret), working directory, private /tmp and privilege limits; exit codes, stdin,
 * the timeout and kill() leave nothing behind; a terminal has the asked size, and again after a
 * resize. Needs root (namespaces); skipped otherwise.
 */
import assert from "node:assert/strict";
import { planPod } from "../plan/mod.ts";
import { SystemdClient } from "../systemd/mod.ts";
import { bootTestSystemd, type TestSystemd } from "../../tests/harness/systemd.ts";
import { waitFor } from "../../tests/harness/wait.ts";
import { applyVolumes } from "../../tests/harness/plan_volumes.ts";
import { inputFromManifest } from "../../tests/plan/_fixtures.ts";
import {
  containerSettings,
  type ExecContext,
  ExecError,
  execInContainer,
  type ExecOptions,
  runToCompletion,
  systemdRunArguments,
} from "./container.ts";

const skip = Deno.uid() !== 0;

const SECRET = "s3cr3t $HOME 'q' \"d\"";
const POD = `
kind: Pod
metadata: {name: ex, namespace: default, uid: ex-0001}
spec:
  securityContext: {runAsUser: 65534, supplementalGroups: [4]}
  containers:
    - name: app
      image: /bin/sh
      workingDir: /data
      command: [/bin/sh, -c, 'echo only-in-container > /tmp/marker && exec sleep infinity']
      env:
        - {name: PLAIN, value: 'a $HOME b'}
        - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: pw}}}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
---
kind: Secret
metadata: {name: creds}
data: {pw: ${btoa(SECRET)}}
`;

const text = (stream: ReadableStream<Uint8Array>) => new Response(stream).text();

/** Runs a command to its end; its output and status. */
async function run(ctx: ExecContext, unit: string, options: ExecOptions) {
  const p = await execInContainer(ctx, unit, options);
  const [stdout, stderr, status] = await Promise.all([
    text(p.stdout),
    text(p.stderr),
    p.status,
  ]);
  return { stdout, stderr, ...status };
}

/** Processes in the test system whose command line contains `needle`. */
async function processesWith(sd: TestSystemd, needle: string): Promise<string> {
  const r = await sd.exec(["pgrep", "-a", "-f", needle]);
  return r.stdout.split("\n").filter((l) => l && !l.includes("pgrep")).join("\n");
}

/** Transient exec units systemd still knows. */
async function execUnits(sd: TestSystemd): Promise<string> {
  const r = await sd.exec([
    "systemctl",
    "list-units",
    "--all",
    "--plain",
    "--no-legend",
    "systemk-exec-*",
  ]);
  return r.stdout.trim();
}

Deno.test("systemd-run arguments double `$` and keep the environment literal", () => {
  const settings = containerSettings("a.service", {
    MainPID: 7,
    Environment: ["A=$B"],
    EnvironmentFiles: [["/run/x.env", true]],
    NoNewPrivileges: true,
    CapabilityBoundingSet: 1n << 10n,
  });
  const args = systemdRunArguments(settings, "u.service", {
    command: ["echo", "$A"],
    timeoutMs: 1500,
  });
  assert.ok(args.includes("--setenv=A=$B"), "environment is literal for --setenv");
  assert.ok(args.includes("--property=EnvironmentFile=-/run/x.env"));
  assert.ok(args.includes("--property=RuntimeMaxSec=1500ms"));
  assert.ok(args.includes("--no-new-privs"));
  assert.ok(args.includes("--bounding-set=-all,+cap_10"));
  assert.deepEqual(args.slice(-2), ["echo", "$$A"]);
  assert.ok(args.includes("--mount=/proc/7/ns/mnt"));
});

Deno.test({
  name: "execInContainer runs commands in the container's context",
  ignore: skip,
  async fn(t) {
    const sd = await bootTestSystemd();
    const systemd = await SystemdClient.connect({
      busAddress: sd.busAddress,
      unitDir: `${sd.root}/run/systemd/system`,
    });
    const ctx: ExecContext = {
      systemd,
      systemdRun: ["nsenter", "-t", String(sd.pid), "-m", "-p", "-r", "-w", "--", "systemd-run"],
    };
    try {
      const plan = planPod(inputFromManifest(POD));
      await applyVolumes(sd, plan);
      const [unit] = plan.units;
      await systemd.installUnit(unit.name, unit.text);
      assert.equal(await systemd.start(unit.name), "done");
      await waitFor(
        "the container's marker",
        async () =>
          (await sd.exec([
            "sh",
            "-c",
            `cat /proc/$(systemctl show -P MainPID ${unit.name})/root/tmp/marker`,
          ]))
            .stdout === "only-in-container\n",
        30_000,
      );

      await t.step("user, groups, environment, working directory, mounts, privileges", async () => {
        const r = await run(ctx, unit.name, {
          command: [
            "sh",
            "-c",
            'id -u; id -G; echo "$PLAIN"; echo "$PW"; echo "$HOME $USER"; pwd; cat /tmp/marker; ' +
            "grep -E '^(CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; ls /run/systemk | wc -l",
          ],
        });
        const lines = r.stdout.split("\n");
        console.log(`  exec output:\n${r.stdout}${r.stderr}`);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(lines[0], "65534");
        assert.ok(lines[1].split(" ").includes("4"), `supplementary group 4 in ${lines[1]}`);
        assert.equal(lines[2], "a $HOME b");
        assert.equal(lines[3], SECRET);
        assert.equal(lines[4], "/nonexistent nobody");
        assert.equal(lines[5], "/data");
        assert.equal(lines[6], "only-in-container", "the container's private /tmp");
        assert.equal(lines[7], "CapBnd:\t0000000000000400");
        // capabilities.add gives a non-root user no ambient capabilities (plan/security.ts).
        assert.equal(lines[8], "CapAmb:\t0000000000000000");
        assert.equal(lines[9], "NoNewPrivs:\t1");
        assert.equal(lines[10], "0", "the state directory is hidden, as in the container");
        const host = await sd.exec(["cat", "/tmp/marker"]);
        assert.notEqual(host.code, 0, "the marker is not visible outside the container");
      });

      await t.step("exit codes, stderr, stdin, words with $ and %", async () => {
        const failed = await run(ctx, unit.name, {
          command: ["sh", "-c", "echo oops >&2; exit 3"],
        });
        assert.deepEqual([failed.exitCode, failed.signal, failed.timedOut], [3, null, false]);
        assert.equal(failed.stderr, "oops\n");
        const words = await run(ctx, unit.name, { command: ["echo", "$HOME", "${X}", "%n", "$$"] });
        assert.equal(words.stdout, "$HOME ${X} %n $$\n");
        const input = new Blob(["line one\nline two\n"]).stream();
        const cat = await run(ctx, unit.name, { command: ["cat"], stdin: input });
        assert.equal(cat.stdout, "line one\nline two\n");
        const talkative = await runToCompletion(
          await execInContainer(ctx, unit.name, { command: ["head", "-c", "300000", "/dev/zero"] }),
          1000,
        );
        assert.deepEqual([talkative.exitCode, talkative.output.length], [0, 1000]);
        const missing = await run(ctx, unit.name, { command: ["/nonexistent/binary"] });
        assert.notEqual(missing.exitCode, 0);
        console.log(`  missing binary: exit ${missing.exitCode}: ${missing.stderr.trim()}`);
      });

      await t.step("the timeout kills the command and what it started", async () => {
        const started = performance.now();
        const r = await run(ctx, unit.name, {
          command: ["sh", "-c", "sleep 311 & sleep 312; echo never"],
          timeoutMs: 1500,
        });
        console.log(
          `  timed out after ${(performance.now() - started).toFixed(0)} ms: ${JSON.stringify(r)}`,
        );
        assert.equal(r.timedOut, true);
        assert.equal(r.stdout, "");
        assert.equal(await processesWith(sd, "sleep 31[12]"), "");
        await waitFor("exec units gone", async () => (await execUnits(sd)) === "", 30_000);
      });

      await t.step("kill() ends everything", async () => {
        const p = await execInContainer(ctx, unit.name, {
          command: ["sh", "-c", "sleep 321 & echo started; sleep 322"],
        });
        const reader = p.stdout.getReader();
        const first = await reader.read();
        assert.equal(new TextDecoder().decode(first.value), "started\n");
        await p.kill();
        const status = await p.status;
        assert.equal(status.signal, "SIGKILL");
        assert.equal(await processesWith(sd, "sleep 32[12]"), "");
        await waitFor("exec units gone", async () => (await execUnits(sd)) === "", 30_000);
      });

      await t.step("a terminal of the asked size, resized", async () => {
        const input = new TransformStream<Uint8Array, Uint8Array>();
        const writer = input.writable.getWriter();
        const p = await execInContainer(ctx, unit.name, {
          command: [
            "sh",
            "-c",
            // A trapped signal interrupts `read`: read again.
            'trap "w=1" WINCH; stty size; tput cols; until read go; do :; done; ' +
            'stty size; tput cols; echo "winch=$w"; exit 5',
          ],
          stdin: input.readable,
          tty: { rows: 30, columns: 100 },
        });
        const decoder = new TextDecoder();
        let output = "";
        const reader = p.stdout.getReader();
        const readUntil = async (needle: string) => {
          while (!output.includes(needle)) {
            const { done, value } = await reader.read();
            if (done) throw new Error(`output ended before ${needle}: ${JSON.stringify(output)}`);
            output += decoder.decode(value);
          }
        };
        await readUntil("30 100\r\n100\r\n");
        await p.resize({ rows: 50, columns: 160 });
        await writer.write(new TextEncoder().encode("go\n"));
        await readUntil("50 160\r\n160\r\nwinch=1\r\n");
        await writer.close();
        const status = await p.status;
        assert.equal(status.exitCode, 5);
        assert.equal(await text(p.stderr), "");
      });

      await t.step("a terminal without stdin never reaches end-of-file", async () => {
        // `cat` on a terminal that delivers nothing blocks (it would end at once on /dev/null).
        const p = await execInContainer(ctx, unit.name, {
          command: ["sh", "-c", "echo waiting; cat; echo never"],
          tty: { rows: 24, columns: 80 },
          timeoutMs: 2000,
        });
        const outcome = await runToCompletion(p);
        assert.equal(outcome.timedOut, true);
        assert.equal(outcome.output, "waiting\r\n");
      });

      await t.step("a container that is not running takes no command", async () => {
        await systemd.stop(unit.name);
        await assert.rejects(execInContainer(ctx, unit.name, { command: ["true"] }), ExecError);
      });
    } finally {
      await systemd.close();
      await sd.stop();
    }
  },
});
