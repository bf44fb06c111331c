/**
 * The node log query end to end, the way an admin uses it: `kubectl get --raw
 * /api/v1/nodes/<node>/proxy/logs/...` through a real apiserver to systemk's kubelet API in a
 * booted systemd, whose journald holds a pod's and systemk's own entries. Without
 * `--enable-system-log-query` the kubelet's answer (the `/var/log` listing), with it the query
 * (`query`, `tailLines`, `pattern`, `sinceTime`/`untilTime`, `boot`), files under `/var/log`
 * and nothing outside it, 400 for bad input, 403 for a caller without `nodes/log`, and 405
 * with `--enable-system-log-handler=false`.
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor } from "./_node_env.ts";
import { approveServingCertificate, clientCert, run } from "./_kubelet_api.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const UNIT = "systemk.default.chatty.c.service";

/** The message of a `short-precise` journal line (after `unit[pid]: `). */
const message = (line: string) => line.replace(/^.*?\]: /, "");
/** The numbers of the pod's `msg N` lines in an answer. */
const numbers = (body: string) => [...body.matchAll(/\]: msg (\d+)$/gm)].map((m) => Number(m[1]));

Deno.test(
  "node log query: kubectl get --raw .../proxy/logs/ through the apiserver, journald behind it",
  opts,
  async (t) => {
    // The apiserver proxies nodes/proxy only to a node address that is not loopback: the node
    // gets one of its own (a veth link), where its kubelet API listens on the usual port.
    const env: NodeEnv = await startNodeEnv({
      nodeName: "n1",
      network: "veth",
      flags: ["--rotate-server-certificates"],
    });
    const log = async () => `--- systemk log ---\n${await env.agentLog()}`;
    /** `kubectl get --raw` of the node proxy as the admin: exit code and output. */
    const raw = async (path: string) => {
      const out = await env.cluster.kubectl(["get", "--raw", `/api/v1/nodes/n1/proxy${path}`]);
      return { code: out.code, out: out.stdout, err: out.stderr };
    };
    const ok = async (path: string) => {
      const r = await raw(path);
      assert.equal(r.code, 0, `${path}: ${r.err}`);
      return r.out;
    };
    const restart = async (flags: string[]) => {
      await env.stopAgent();
      await env.startAgent(flags);
      // The agent answers again once the apiserver reaches it (its certificate is kept).
      await waitFor("the restarted kubelet API", async () => (await raw("/healthz")).code === 0);
    };
    const pki = `${env.cluster.dir}/pki`;
    const certs = `${env.cluster.dir}/node-logs-test`;
    await Deno.mkdir(certs, { recursive: true });
    /** curl straight to the kubelet API with a client certificate; `--path-as-is` keeps `..`. */
    const curl = async (path: string, cert: { cert: string; key: string }) => {
      const r = await run("curl", [
        ...["-sS", "--path-as-is", "--cacert", env.cluster.caFile, "-w", "\n%{http_code}"],
        ...["--cert", cert.cert, "--key", cert.key, `https://${env.nodeIP}:10250${path}`],
      ]);
      const lines = r.out.trimEnd().split("\n");
      return { status: Number(lines.pop()), body: lines.join("\n").trimEnd() };
    };
    try {
      await t.step(
        "setup: serving certificate approved, a pod writing numbered lines",
        async () => {
          await approveServingCertificate(env.cluster, env.nodeName, log);
          await waitFor(
            "the kubelet API through the apiserver",
            async () => {
              return (await raw("/healthz")).code === 0;
            },
            60_000,
            log,
          );
          await env.apply({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "chatty", namespace: "default" },
            spec: {
              nodeName: "n1",
              containers: [{
                name: "c",
                image: "/bin/bash",
                command: [
                  "/bin/bash",
                  "-c",
                  "i=0; while true; do i=$((i+1)); echo msg $i; " +
                  "if [ $((i % 5)) = 0 ]; then echo ERROR at $i; fi; sleep 0.2; done",
                ],
              }],
            },
          });
          await waitFor(
            "pod chatty Running",
            async () => {
              const p = await env.getJSON<V1Pod>(["pod", "chatty"]);
              return p?.status?.phase === "Running";
            },
            60_000,
            log,
          );
          await env.system.exec(["sh", "-c", "echo hello from a file > /var/log/systemk-e2e.log"]);
          await env.system.exec(["ln", "-s", "/etc/shadow", "/var/log/leak.log"]);
        },
      );

      await t.step(
        "flag off: the kubelet's answer, the /var/log listing, query ignored",
        async () => {
          const listing = await ok(`/logs/?query=${UNIT}&tailLines=5`);
          assert.match(listing, /^<!doctype html>/);
          assert.match(listing, /<a href="systemk-e2e\.log">systemk-e2e\.log<\/a>/);
          assert.equal(await ok("/logs/systemk-e2e.log"), "hello from a file\n");
        },
      );

      await restart(["--enable-system-log-query"]);

      await t.step("query=<unit>&tailLines=5: that unit's last five journal lines", async () => {
        const body = await waitFor("ten lines in the journal", async () => {
          const out = await ok(`/logs/?query=${UNIT}&tailLines=5`);
          return numbers(out).length >= 3 ? out : undefined;
        });
        const lines = body.trimEnd().split("\n");
        assert.equal(lines.length, 5, body);
        for (const line of lines) {
          assert.match(
            line,
            /^\w{3} \d\d \d\d:\d\d:\d\d\.\d{6} \S+ \S+\[\d+\]: (msg|ERROR at) \d+$/,
          );
        }
        // systemk's own journal, by its unit's name.
        const agent = await ok("/logs/?query=systemk-agent&pattern=registered");
        assert.match(agent, /node n1 registered/);
      });

      await t.step("pattern keeps the matching lines only", async () => {
        const body = await ok(`/logs/?query=${UNIT}&pattern=ERROR`);
        const lines = body.trimEnd().split("\n").map(message);
        assert.ok(lines.length >= 1, body);
        for (const line of lines) assert.match(line, /^ERROR at \d+$/);
      });

      await t.step("sinceTime and untilTime bound the lines", async () => {
        const cut = new Date(Math.ceil(Date.now() / 1000) * 1000);
        await waitFor("lines after the cut", () => Date.now() > cut.getTime() + 1500);
        const before = numbers(await ok(`/logs/?query=${UNIT}&untilTime=${cut.toISOString()}`));
        const after = numbers(await ok(`/logs/?query=${UNIT}&sinceTime=${cut.toISOString()}`));
        assert.ok(before.length > 0 && after.length > 0, `${before} | ${after}`);
        assert.ok(Math.max(...before) <= Math.min(...after), `${before} | ${after}`);
        assert.equal(before[0], 1, "until: from the pod's first line");
        const both = numbers(
          await ok(
            `/logs/?query=${UNIT}&sinceTime=${cut.toISOString()}&untilTime=${
              new Date(cut.getTime() + 1000).toISOString()
            }`,
          ),
        );
        assert.ok(both.length >= 1 && both.length <= 6, `one second of lines: ${both}`);
      });

      await t.step("boot=0 is this boot; boot=1 is refused", async () => {
        assert.ok(numbers(await ok(`/logs/?query=${UNIT}&boot=0&tailLines=3`)).length >= 1);
        const r = await raw(`/logs/?query=${UNIT}&boot=1`);
        assert.notEqual(r.code, 0);
        assert.match(r.err, /BadRequest/);
      });

      await t.step("files under /var/log, and nothing outside it", async () => {
        const listing = await ok("/logs/");
        assert.match(listing, /<a href="systemk-e2e\.log">/);
        assert.match(listing, /<a href="journal\/">journal\/<\/a>/);
        assert.equal(await ok("/logs/systemk-e2e.log"), "hello from a file\n");
        assert.equal(await ok("/logs/?query=/systemk-e2e.log"), "hello from a file\n");
        const leak = await raw("/logs/leak.log");
        assert.notEqual(leak.code, 0);
        assert.match(leak.err, /Forbidden/);
        assert.doesNotMatch(leak.out + leak.err, /root:/);
        const admin = { cert: `${pki}/admin.crt`, key: `${pki}/admin.key` };
        for (const path of ["/logs/..%2f..%2fetc%2fshadow", "/logs/?query=../../etc/shadow"]) {
          const r = await curl(path, admin);
          assert.equal(r.status, 400, `${path}: ${r.body}`);
          assert.match(r.body, /"\.\." segment/);
        }
        const r = await curl("/logs/leak.log", admin);
        assert.equal(r.status, 403);
        assert.match(r.body, /refusing \/var\/log\/leak\.log: it leads outside \/var\/log/);
      });

      await t.step("invalid input: 400 with the parameter named", async () => {
        const admin = { cert: `${pki}/admin.crt`, key: `${pki}/admin.key` };
        const cases: [string, RegExp][] = [
          ["/logs/?query=ssh%3Breboot", /query: Invalid value: "ssh;reboot": a unit name/],
          [`/logs/?query=${UNIT}&tailLines=100001`, /tailLines: .*between 0 and 100000/],
          [`/logs/?query=${UNIT}&sinceTime=yesterday`, /sinceTime: .*RFC 3339/],
          [`/logs/?query=${UNIT}&pattern=(`, /journalctl: Bad pattern/],
          ["/logs/?tailLines=3", /query: Required value/],
        ];
        for (const [path, expected] of cases) {
          const r = await curl(path, admin);
          assert.equal(r.status, 400, path);
          assert.match(r.body, expected, path);
          const viaAPI = await raw(path);
          assert.notEqual(viaAPI.code, 0, path);
          assert.match(viaAPI.err, /BadRequest/, path);
        }
      });

      await t.step("authorized as nodes/log: nodes/proxy alone is refused", async () => {
        for (
          const [role, resource] of [["proxy-only", "nodes/proxy"], ["log-reader", "nodes/log"]]
        ) {
          await env.kubectl([
            "create",
            "clusterrole",
            role,
            "--verb=get",
            `--resource=${resource}`,
          ]);
          await env.kubectl([
            "create",
            "clusterrolebinding",
            role,
            `--clusterrole=${role}`,
            `--user=${role}`,
          ]);
        }
        const proxyOnly = await clientCert(certs, "proxy-only", "/CN=proxy-only", `${pki}/ca`);
        const denied = await curl(`/logs/?query=${UNIT}&tailLines=1`, proxyOnly);
        assert.equal(denied.status, 403);
        assert.match(denied.body, /user=proxy-only, verb=get, resource=nodes, subresource=log/);
        const reader = await clientCert(certs, "log-reader", "/CN=log-reader", `${pki}/ca`);
        const allowed = await curl(`/logs/?query=${UNIT}&tailLines=1`, reader);
        assert.equal(allowed.status, 200, allowed.body);
        assert.match(allowed.body, /\]: (msg|ERROR at) \d+$/);
      });

      await restart(["--enable-system-log-handler=false"]);

      await t.step("--enable-system-log-handler=false: 405, as the kubelet", async () => {
        const admin = { cert: `${pki}/admin.crt`, key: `${pki}/admin.key` };
        const r = await curl("/logs/", admin);
        assert.deepEqual(r, { status: 405, body: "logs endpoint is disabled." });
      });
    } finally {
      await env.stop();
    }
  },
);
