/**
 * execInContainer against a booted systemd 252 (tests/harness/systemd.ts) running a container
 * unit made by the real planner: the command sees the container's user, groups, environment
 * (plain and Secret), working directory, private /tmp and privilege limits (its credentials in
 * /proc/self/status are the container's own, for a non-root, an implied-NoNewPrivileges and a
 * root container); exit codes, stdin,
 * the timeout and kill() leave nothing behind; a terminal has the asked size, and again after a
 * resize. Needs root (namespaces); skipped otherwise.
 */
import assert from "node:assert/strict";
import { planPod } from "../../src/plan/mod.ts";
import { SystemdClient } from "../../src/systemd/mod.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { waitFor } from "../harness/wait.ts";
import { applyVolumes } from "../harness/plan_volumes.ts";
import { inputFromManifest } from "../plan/_fixtures.ts";
import {
  containerSettings,
  type ExecContext,
  ExecError,
  execInContainer,
  type ExecOptions,
  runToCompletion,
  systemdRunArguments,
} from "../../src/exec/container.ts";

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
        - {name: SHELL, value: /usr/bin/no-such-shell}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      volumeMounts: [{name: data, mountPath: /data}]
    - name: plain
      image: /bin/sh
      command: [/bin/sleep, infinity]
    - name: rooted
      image: /bin/sh
      command: [/bin/sleep, infinity]
      securityContext:
        runAsUser: 0
        capabilities: {drop: [ALL], add: [CHOWN]}
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

Deno.test("systemd-run arguments: systemd drops privileges, the environment stays literal", () => {
  const settings = containerSettings("a.service", {
    MainPID: 7,
    User: "nobody",
    SupplementaryGroups: ["4", "27"],
    Environment: ["A=$B"],
    EnvironmentFiles: [["/run/x.env", true]],
    WorkingDirectory: "!/data",
    CapabilityBoundingSet: 1n << 10n,
    AmbientCapabilities: 1n << 10n,
  });
  const args = systemdRunArguments(settings, "u.service", {
    command: ["echo", "$A"],
    timeoutMs: 1500,
  });
  assert.ok(args.includes("--setenv=A=$B"), "environment is literal for --setenv");
  assert.ok(args.includes("--property=EnvironmentFile=-/run/x.env"));
  assert.ok(args.includes("--property=RuntimeMaxSec=1500ms"));
  assert.ok(args.includes("--property=User=nobody"));
  assert.ok(args.includes("--property=SupplementaryGroups=4 27"));
  assert.ok(args.includes("--property=CapabilityBoundingSet=10"));
  assert.ok(args.includes("--property=AmbientCapabilities=10"));
  assert.ok(args.includes("--property=WorkingDirectory=-/data"));
  assert.ok(args.includes("--property=RootDirectory=/proc/7/root"));
  assert.ok(args.includes("--property=MountAPIVFS=no"));
  assert.ok(!args.includes("--property=NoNewPrivileges=yes"), "nothing implies it here");
  // Only the container's /bin/sh, as the container's user, looks the command up.
  assert.deepEqual(args.slice(args.indexOf("--")), [
    "--",
    "/bin/sh",
    "-c",
    'exec "$$@"',
    "systemk-exec",
    "echo",
    "$$A",
  ]);
});

Deno.test("NoNewPrivileges: set, or implied as systemd implies it", () => {
  const nnp = (props: Record<string, unknown>) =>
    containerSettings("a.service", props).noNewPrivileges;
  assert.equal(nnp({ User: "65534", ProtectKernelTunables: true }), true);
  assert.equal(nnp({ User: "65534", SystemCallFilter: [true, ["@system-service"]] }), true);
  assert.equal(nnp({ User: "65534", RestrictNamespaces: 0x7e020000n }), false);
  assert.equal(nnp({ User: "65534", RestrictNamespaces: 0n }), true);
  assert.equal(nnp({ User: "65534" }), false);
  assert.equal(nnp({ User: "", ProtectKernelTunables: true }), false, "root keeps SYS_ADMIN");
  assert.equal(nnp({ User: "root", ProtectKernelTunables: true }), false);
  assert.equal(
    nnp({ User: "65534", ProtectKernelTunables: true, AmbientCapabilities: 1n << 21n }),
    false,
    "an ambient CAP_SYS_ADMIN",
  );
  assert.equal(nnp({ User: "", NoNewPrivileges: true }), true);
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
      for (const u of plan.units) {
        await systemd.installUnit(u.name, u.text);
        assert.equal(await systemd.start(u.name), "done");
      }
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
            'id -u; id -G; echo "$PLAIN"; echo "$PW"; echo "${HOME-unset} ${USER-unset}"; pwd; ' +
            "cat /tmp/marker; " +
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
        // What systemd set for the container's user, as it set it for the container.
        const own = await sd.exec([
          "sh",
          "-c",
          `pid=$(systemctl show -P MainPID ${unit.name}); xargs -0 -n 1 < /proc/$pid/environ`,
        ]);
        const variable = (name: string) =>
          own.stdout.split("\n").find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1) ??
            "unset";
        assert.equal(lines[4], `${variable("HOME")} ${variable("USER")}`);
        assert.equal(variable("USER"), "nobody");
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

      await t.step(
        "identity and privilege limits are the container's own, set or implied",
        async () => {
          const credentials = "grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):'";
          for (const u of plan.units) {
            const own = await sd.exec([
              "sh",
              "-c",
              `${credentials} /proc/$(systemctl show -P MainPID ${u.name})/status`,
            ]);
            const exec = await run(ctx, u.name, {
              command: ["sh", "-c", `${credentials} /proc/self/status`],
            });
            console.log(`  ${u.container}: ${exec.stdout.replaceAll("\n", "; ")}`);
            assert.equal(exec.stdout, own.stdout, u.container);
          }
        },
      );

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

      await t.step("a terminal keeps the environment, SHELL included", async () => {
        const command = ["sh", "-c", 'echo "${SHELL-unset} $PLAIN"'];
        const plain = await run(ctx, unit.name, { command });
        const tty = await runToCompletion(
          await execInContainer(ctx, unit.name, { command, tty: { rows: 24, columns: 80 } }),
        );
        assert.equal(plain.stdout, "/usr/bin/no-such-shell a $HOME b\n");
        assert.equal(tty.output, plain.stdout.replace("\n", "\r\n"));
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
