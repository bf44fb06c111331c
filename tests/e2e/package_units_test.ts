/**
 * Packages whose unit lives in a dependency, end to end with the real Debian packages (issue
 * #18 item 7): `nginx` ships no unit — `nginx.service` comes with `nginx-common` — and is a
 * forking daemon with a PID file in /run. As a pod it runs from that unit, serves a site from a
 * ConfigMap mounted over /etc/nginx/sites-enabled, and stops with its own `ExecStop=`; a
 * package without a unit named after it (`apt`) and without `command` is refused, naming the
 * units it ships.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { freePorts } from "../harness/cluster.ts";
import { containerState, podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const UNIT = "systemk.default.web.nginx.service";

Deno.test("package units from a dependency: nginx serves a ConfigMap's site", opts, async (t) => {
  const [port] = freePorts("127.0.0.1", 1);
  const env = await startNodeEnv();
  try {
    await t.step("nginx (unit from nginx-common) runs, forking, with its PID file", async () => {
      await env.apply(
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "site", namespace: "default" },
          data: {
            "site.conf": `server {\n  listen 127.0.0.1:${port};\n  location / {\n` +
              `    return 200 "hello from a ConfigMap\\n";\n  }\n}\n`,
          },
        },
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "web", namespace: "default" },
          spec: {
            nodeName: "n1",
            containers: [{
              name: "nginx",
              image: "nginx",
              volumeMounts: [{ name: "site", mountPath: "/etc/nginx/sites-enabled" }],
            }],
            volumes: [{ name: "site", configMap: { name: "site" } }],
          },
        },
      );
      const started = performance.now();
      await waitForPod(
        env,
        "web",
        "Running",
        (p) => containerState(p)?.running !== undefined,
        { timeoutMs: 300_000 },
      );
      console.log(`  nginx installed and running in ${(performance.now() - started) | 0} ms`);
      const body = await waitFor("the site", async () => {
        const res = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
        return res?.ok ? await res.text() : undefined;
      });
      assert.equal(body, "hello from a ConfigMap\n");

      // The template is nginx-common's unit: forking, its ExecStop kept.
      const show = async (p: string) => await env.unitProperty(UNIT, p);
      assert.equal(await show("Type"), "forking");
      assert.match(await show("ExecStop"), /start-stop-daemon/);
      // systemd read the PID from the pod's own file, which nginx wrote as /run/nginx.pid.
      const pidFile = await show("PIDFile");
      assert.match(pidFile, /^\/run\/systemk\/[^/]+\/pidfiles\/nginx\.pid$/);
      const mainPID = await show("MainPID");
      assert.equal((await env.system.exec(["cat", pidFile])).stdout.trim(), mainPID);
      const comm = await env.system.exec(["ps", "-o", "args=", "-p", mainPID]);
      assert.match(comm.stdout, /^nginx: master process/);
      const inside = await env.system.exec(["cat", `/proc/${mainPID}/root/run/nginx.pid`]);
      assert.equal(inside.stdout.trim(), mainPID, "nginx wrote it at /run/nginx.pid");
      // The host's /run/nginx.pid holds no PID, and nginx-common's own unit never runs.
      const hostPid = await env.system.exec(["sh", "-c", "cat /run/nginx.pid 2>/dev/null"]);
      assert.equal(hostPid.stdout.trim(), "");
      const masked = await env.system.exec(["systemctl", "is-enabled", "nginx.service"]);
      assert.equal(masked.stdout.trim(), "masked-runtime");
      const events = (await podEvents(env, "web")).map((e) => `${e.reason}: ${e.message}`);
      console.log(`  ${events.join("\n  ")}`);
    });

    await t.step("deleting the pod stops nginx with its ExecStop", async () => {
      await env.kubectl(["delete", "pod", "web"]);
      assert.deepEqual(await env.units(), []);
      const left = await env.system.exec(["pgrep", "-x", "nginx"]);
      assert.notEqual(left.code, 0, `nginx processes left: ${left.stdout}`);
    });

    await t.step(
      "a package without a unit of its name and without command is refused",
      async () => {
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "no-unit", namespace: "default" },
          spec: { nodeName: "n1", containers: [{ name: "main", image: "apt" }] },
        });
        const pod = await waitForPod(
          env,
          "no-unit",
          "refused",
          (p: V1Pod) => containerState(p)?.waiting?.reason === "CreateContainerConfigError",
        );
        const message = containerState(pod)?.waiting?.message ?? "";
        console.log(`  ${message}`);
        assert.match(
          message,
          /package apt has no unit apt\.service to take ExecStart from \(it ships .*apt-daily\.service.*\), and no command is given/,
        );
      },
    );
  } finally {
    await env.stop();
  }
});
