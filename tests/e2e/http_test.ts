/**
 * The kubelet API end to end: a real control plane whose apiserver verifies the kubelet's
 * serving certificate against the cluster CA (`--kubelet-certificate-authority`), systemk in a
 * booted systemd with `--rotate-server-certificates`, and the real kubectl.
 */
import assert from "node:assert/strict";
import type { V1CertificateSigningRequest, V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor } from "./_node_env.ts";
import { freePorts } from "../harness/cluster.ts";
import { approveServingCertificate, clientCert, kubeletAPIFlags, run } from "./_kubelet_api.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "kubelet API: logs through the apiserver with a CSR-signed serving cert, auth, metrics, TLS bootstrap",
  opts,
  async (t) => {
    const [port] = freePorts("127.0.0.1", 1);
    const env: NodeEnv = await startNodeEnv({
      nodeName: "n1",
      flags: kubeletAPIFlags(port),
    });
    const log = async () => `--- systemk log ---\n${await env.agentLog()}`;
    const base = `https://127.0.0.1:${port}`;
    const certs = `${env.cluster.dir}/kubelet-api-test`;
    await Deno.mkdir(certs, { recursive: true });
    const pki = `${env.cluster.dir}/pki`;
    const clusterCA = `${pki}/ca`;
    const admin = { cert: `${pki}/admin.crt`, key: `${pki}/admin.key` };
    /** curl against the kubelet API, verifying it with the cluster CA: HTTP status and body. */
    const curl = async (
      path: string,
      auth: { cert?: { cert: string; key: string }; token?: string; method?: string } = {},
    ) => {
      const args = ["-sS", "--cacert", env.cluster.caFile, "-w", "\n%{http_code}"];
      if (auth.cert) args.push("--cert", auth.cert.cert, "--key", auth.cert.key);
      if (auth.token) args.push("-H", `Authorization: Bearer ${auth.token}`);
      if (auth.method) args.push("-X", auth.method);
      const r = await run("curl", [...args, `${base}${path}`]);
      const lines = r.out.trimEnd().split("\n");
      const status = Number(lines.pop());
      return { status, body: lines.join("\n").trimEnd(), code: r.code, out: r.out };
    };
    const logs = (args: string[]) => env.kubectl(["logs", "logs", "-c", "c", ...args]);
    try {
      await t.step(
        "the serving certificate is requested, approved by an admin, and served",
        async () => {
          const csr = await approveServingCertificate(env.cluster, env.nodeName, log);
          assert.deepEqual(
            [...csr.spec.usages!].sort(),
            ["digital signature", "key encipherment", "server auth"],
          );
          // curl verifies the served certificate with the cluster CA: it fails until the swap.
          const answer = await waitFor(
            "the CSR-signed certificate served",
            async () => {
              const r = await curl("/healthz");
              return r.code === 0 ? r : undefined;
            },
            60_000,
            log,
          );
          assert.equal(answer.status, 401, "no client certificate, no token: anonymous is refused");
        },
      );

      await t.step("a pod that fails once, then logs numbered lines", async () => {
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "logs", namespace: "default" },
          spec: {
            nodeName: "n1",
            volumes: [{ name: "data", emptyDir: {} }],
            containers: [{
              name: "c",
              image: "/bin/bash",
              env: [{ name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } }],
              volumeMounts: [{ name: "data", mountPath: "/data" }],
              command: [
                "/bin/bash",
                "-c",
                'echo "pod $POD_UID"; if [ ! -e /data/ran ]; then touch /data/ran; echo first run; ' +
                "exit 1; fi; i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done",
              ],
            }],
          },
        });
        await waitFor(
          "pod logs restarted and Running",
          async () => {
            const p = await env.getJSON<V1Pod>(["pod", "logs"]);
            const s = p?.status?.containerStatuses?.[0];
            return p?.status?.phase === "Running" && s?.ready && (s.restartCount ?? 0) >= 1;
          },
          60_000,
          log,
        );
        await waitFor("line 3 in kubectl logs", async () => (await logs([])).includes("line 3\n"));
      });

      await t.step(
        "kubectl logs: current run, --previous, --tail, --limit-bytes, --timestamps",
        async () => {
          const uid = (await env.getJSON<V1Pod>(["pod", "logs"]))!.metadata!.uid!;
          const current = await logs([]);
          assert.match(current, new RegExp(`^pod ${uid}\nline 1\nline 2\nline 3\n`));
          assert.doesNotMatch(current, /first run/);
          assert.equal(await logs(["--previous"]), `pod ${uid}\nfirst run\n`);
          const tail = await logs(["--tail=2"]);
          assert.match(tail, /^line \d+\nline \d+\n$/);
          assert.equal(await logs(["--limit-bytes=5"]), `pod ${uid[0]}`);
          const stamped = await logs(["--timestamps", "--tail=3"]);
          for (const line of stamped.trimEnd().split("\n")) {
            assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line \d+$/);
          }
        },
      );

      await t.step("kubectl logs --since and --since-time keep only later lines", async () => {
        const stampsOf = (text: string) => text.trimEnd().split("\n").map((l) => l.split(" ")[0]);
        // The API's sinceTime has whole seconds (metav1.Time), so the cut is the first line of
        // a later second than the first line's: lines from that second on, none before.
        const seconds = (t: string) => t.slice(0, 19);
        const times = await waitFor("lines over two seconds", async () => {
          const all = stampsOf(await logs(["--timestamps"]));
          return seconds(all.at(-1)!) > seconds(all[0]) ? all : undefined;
        });
        const cut = times.find((x) => seconds(x) > seconds(times[0]))!;
        const sinceTimes = stampsOf(await logs(["--timestamps", `--since-time=${cut}`]));
        const expected = times.filter((x) => x >= cut);
        assert.deepEqual(sinceTimes.slice(0, expected.length), expected);
        await new Promise((r) => setTimeout(r, 1500));
        const recent = (await logs(["--since=1s"])).trimEnd().split("\n");
        assert.ok(recent.length >= 1 && recent.length <= 10, recent.join("|"));
        assert.ok(recent.every((l) => /^line \d+$/.test(l)));
      });

      await t.step(
        "kubectl logs -f streams new lines; journalctl ends when kubectl goes",
        async () => {
          const child = new Deno.Command(env.cluster.kubectlPath, {
            args: [`--kubeconfig=${env.cluster.adminKubeconfig}`, "logs", "-f", "--tail=1", "logs"],
            stdout: "piped",
            stderr: "null",
          }).spawn();
          const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
          let seen = "";
          while (seen.split("\n").length <= 4) seen += (await reader.read()).value ?? "";
          const numbers = seen.trim().split("\n").slice(0, 4).map((l) => Number(l.split(" ")[1]));
          assert.deepEqual(numbers, numbers.map((_, i) => numbers[0] + i), seen);
          const following = async () =>
            (await env.system.exec(["pgrep", "-f", "journalctl.*--follow"])).code === 0;
          assert.equal(await following(), true);
          child.kill("SIGTERM");
          await child.status;
          await reader.cancel().catch(() => {});
          await waitFor("journalctl --follow to end", async () => !await following(), 10_000);
        },
      );

      await t.step(
        "kubectl logs -f of a container that exits ends with its last line",
        async () => {
          await env.apply({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "short", namespace: "default" },
            spec: {
              nodeName: "n1",
              restartPolicy: "Never",
              containers: [{
                name: "c",
                image: "/bin/bash",
                command: ["/bin/bash", "-c", "for i in 1 2 3; do echo step $i; sleep 1; done"],
              }],
            },
          });
          await waitFor(
            "pod short started",
            async () => {
              const p = await env.getJSON<V1Pod>(["pod", "short"]);
              return p?.status?.containerStatuses?.[0]?.state?.running || undefined;
            },
            60_000,
            log,
          );
          const start = Date.now();
          const out = await env.kubectl(["logs", "-f", "short"]);
          console.log(`kubectl logs -f returned ${Date.now() - start} ms after it started`);
          assert.equal(out, "step 1\nstep 2\nstep 3\n");
          await env.kubectl(["delete", "pod", "short", "--wait=true"]);
        },
      );
      await t.step(
        "who may ask: no cert, a foreign CA, no RBAC, the wrong subresource",
        async () => {
          const path = "/containerLogs/default/logs/c?tailLines=1";
          assert.equal((await curl(path)).status, 401);
          const other = `${certs}/other-ca`;
          const ca = await run("openssl", [
            ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            ...["-nodes", "-keyout", `${other}.key`, "-out", `${other}.crt`, "-days", "1"],
            ...["-subj", "/CN=other-ca", "-addext", "basicConstraints=critical,CA:TRUE"],
          ]);
          assert.equal(ca.code, 0, ca.out);
          const foreign = await clientCert(certs, "foreign", "/O=system:masters/CN=admin", other);
          assert.equal((await curl(path, { cert: foreign })).status, 401);
          const nobody = await clientCert(certs, "nobody", "/CN=nobody", clusterCA);
          const denied = await curl(path, { cert: nobody });
          assert.equal(denied.status, 403);
          assert.match(denied.body, /user=nobody, verb=get, resource=nodes, subresource=proxy/);
          await env.kubectl([
            "create",
            "clusterrole",
            "node-stats",
            "--verb=get",
            "--resource=nodes/stats",
          ]);
          await env.kubectl([
            "create",
            "clusterrolebinding",
            "stats-reader",
            "--clusterrole=node-stats",
            "--user=stats-reader",
          ]);
          const stats = await clientCert(certs, "stats", "/CN=stats-reader", clusterCA);
          assert.equal((await curl(path, { cert: stats })).status, 403);
          assert.equal((await curl("/stats/summary", { cert: stats })).status, 200);
          await env.kubectl([
            "create",
            "clusterrole",
            "node-proxy",
            "--verb=get",
            "--resource=nodes/proxy",
          ]);
          await env.kubectl([
            "create",
            "clusterrolebinding",
            "proxy-reader",
            "--clusterrole=node-proxy",
            "--user=proxy-reader",
          ]);
          const proxy = await clientCert(certs, "proxy", "/CN=proxy-reader", clusterCA);
          const allowed = await curl(path, { cert: proxy });
          assert.equal(allowed.status, 200);
          assert.match(allowed.body, /^line \d+$/);
        },
      );

      await t.step("bearer tokens via TokenReview", async () => {
        await env.kubectl(["create", "serviceaccount", "scraper"]);
        await env.kubectl([
          "create",
          "clusterrole",
          "node-metrics",
          "--verb=get",
          "--resource=nodes/metrics",
        ]);
        await env.kubectl([
          "create",
          "clusterrolebinding",
          "scraper",
          "--clusterrole=node-metrics",
          "--serviceaccount=default:scraper",
        ]);
        const token = (await env.kubectl(["create", "token", "scraper"])).trim();
        const metrics = await curl("/metrics", { token });
        assert.equal(metrics.status, 200);
        assert.match(
          metrics.body,
          /^systemk_kubelet_api_requests_total\{code="401",path="\/containerLogs"\} \d+$/m,
        );
        assert.equal((await curl("/metrics", { token: token.slice(0, -2) + "xx" })).status, 401);
        assert.equal((await curl("/pods", { token })).status, 403, "pods need nodes/proxy");
      });

      await t.step(
        "/metrics/resource and /stats/summary as metrics-server reads them",
        async () => {
          // metrics-server connects to the node directly (the apiserver's node proxy refuses
          // loopback addresses), with a client certificate allowed nodes/metrics and nodes/stats.
          const text = (await curl("/metrics/resource", { cert: admin })).body;
          const sample = (name: string) =>
            text.split("\n").find((l) => l.startsWith(name))?.split(" ");
          const nodeCPU = sample("node_cpu_usage_seconds_total ")!;
          assert.ok(Number(nodeCPU[1]) > 0 && Number(nodeCPU[2]) > 1.7e12, nodeCPU.join(" "));
          assert.ok(Number(sample("node_memory_working_set_bytes ")![1]) > 0);
          const labels = '{container="c",namespace="default",pod="logs"}';
          const memory = sample(`container_memory_working_set_bytes${labels}`);
          assert.ok(memory && Number(memory[1]) > 0, text);
          // Container CPU is reported whether systemd accounts it or not (on a cgroup v1/v2
          // hybrid it accounts none: systemk reads the unit's cgroup v2 cpu.stat then).
          const cpu = sample(`container_cpu_usage_seconds_total${labels}`);
          assert.ok(cpu && Number(cpu[1]) >= 0, text);
          const summary = JSON.parse((await curl("/stats/summary", { cert: admin })).body);
          assert.equal(summary.node.nodeName, "n1");
          assert.ok(summary.node.memory.workingSetBytes > 0);
          assert.ok(summary.node.cpu.usageNanoCores > 0, "a rate from the scrape before");
          const pod = summary.pods.find((p: { podRef: { name: string } }) =>
            p.podRef.name === "logs"
          );
          assert.ok(pod.containers[0].memory.workingSetBytes > 0);
          const pods = JSON.parse((await curl("/pods", { cert: admin })).body);
          assert.deepEqual(pods.items.map((p: V1Pod) => p.metadata?.name), ["logs"]);
        },
      );

      await t.step("streaming endpoints want a SPDY upgrade; /run runs a command", async () => {
        for (
          const path of [
            "/exec/default/logs/c?command=true&output=1",
            "/attach/default/logs/c?output=1",
            "/portForward/default/logs",
          ]
        ) {
          const r = await curl(path, { cert: admin, method: "POST" });
          assert.equal(r.status, 400, path);
          assert.match(r.body, /SPDY\/3\.1/);
        }
        // The kubelet's legacy /run: the command's output in one answer.
        const r = await curl("/run/default/logs/c?cmd=echo%20ran%20inside", {
          cert: admin,
          method: "POST",
        });
        assert.equal(r.status, 200, r.out);
        assert.equal(r.body, "ran inside");
      });

      await t.step(
        "a new pod with the same name shows none of the earlier pod's lines",
        async () => {
          const before = (await env.getJSON<V1Pod>(["pod", "logs"]))!.metadata!.uid!;
          const spec = (await env.getJSON<V1Pod>(["pod", "logs"]))!.spec!;
          await env.kubectl(["delete", "pod", "logs", "--wait=true"]);
          await env.apply({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "logs", namespace: "default" },
            spec: { ...spec, nodeName: "n1" },
          });
          await waitFor(
            "the new pod's second run",
            async () => {
              const p = await env.getJSON<V1Pod>(["pod", "logs"]);
              return p?.metadata?.uid !== before &&
                (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 &&
                (await logs([]).catch(() => "")).includes("line 1");
            },
            60_000,
            log,
          );
          const after = (await env.getJSON<V1Pod>(["pod", "logs"]))!.metadata!.uid!;
          const current = await logs([]);
          const previous = await logs(["--previous"]);
          const journal = async () =>
            (await env.system.exec([
              "journalctl",
              "--output=json",
              "--output-fields=MESSAGE,_SYSTEMD_INVOCATION_ID,_STREAM_ID",
              "MESSAGE=first run",
              "+",
              `_SYSTEMD_UNIT=systemk.default.logs.c.service`,
            ])).stdout.split("\n").filter((l) => !/"line/.test(l)).join("\n");
          assert.doesNotMatch(
            current + previous,
            new RegExp(before),
            `current:\n${current}\nprevious:\n${previous}\n${await journal()}\n${await log()}`,
          );
          assert.equal(previous, `pod ${after}\nfirst run\n`);
        },
      );

      await t.step(
        "TLS bootstrap: a restart with only a bootstrap token joins and keeps working",
        async () => {
          const token = await env.cluster.createBootstrapToken();
          const bootstrap = `${env.cluster.dir}/bootstrap.kubeconfig`;
          await Deno.writeTextFile(
            bootstrap,
            JSON.stringify({
              apiVersion: "v1",
              kind: "Config",
              clusters: [{
                name: "c",
                cluster: {
                  server: env.cluster.server,
                  "certificate-authority": env.cluster.caFile,
                },
              }],
              users: [{ name: "u", user: { token } }],
              contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
              "current-context": "c",
            }),
          );
          await env.stopAgent();
          const kubeconfig = "/var/lib/systemk/bootstrapped.kubeconfig";
          await env.startAgent([
            `--kubeconfig=${kubeconfig}`,
            `--bootstrap-kubeconfig=${bootstrap}`,
          ]);
          const written = await waitFor(
            "the bootstrapped kubeconfig",
            async () => {
              return await Deno.readTextFile(`${env.system.root}${kubeconfig}`).catch(() =>
                undefined
              );
            },
            60_000,
            log,
          );
          assert.match(written, /kubelet-client-current\.pem/);
          const csrs = await env.getJSON<{ items: V1CertificateSigningRequest[] }>(["csr"]);
          const client = csrs!.items.find((c) =>
            c.spec.signerName === "kubernetes.io/kube-apiserver-client-kubelet"
          );
          assert.ok(client?.status?.certificate, "the bootstrap CSR was approved and signed");
          assert.match(await env.agentLog(), /TLS bootstrap: wrote/);
          const lease = async () =>
            (await env.getJSON<{ spec: { renewTime: string } }>([
              "lease",
              "-n",
              "kube-node-lease",
              "n1",
            ]))?.spec.renewTime;
          const renewed = await lease();
          await waitFor(
            "the lease renewed by the bootstrapped identity",
            async () => (await lease()) !== renewed,
            30_000,
            log,
          );
          await waitFor(
            "logs through the restarted agent",
            async () => (await logs(["--tail=1"])).startsWith("line "),
            30_000,
            log,
          );
        },
      );
    } finally {
      await env.stop();
    }
  },
);
