/**
 * The k3s kit (k3s/) against the real control plane and a real node: every manifest passes the
 * apiserver's server-side dry run, join-token.sh prepares a token whose node CSR is approved and
 * signed automatically, and the main manifests run on systemk with real Debian packages
 * (uptimed, bash, prometheus-node-exporter) installed by apt inside the test systemd, and an
 * upstream Prometheus (built from Go modules by scripts/build-prometheus.sh, as the README tells
 * users to) discovering pods through the Kubernetes API with its service account. Prometheus runs
 * as the absolute-path image the manifest names, `/usr/local/bin/prometheus`, a link to the
 * build cache (outside /tmp, which is private to every container). (metrics-server.yaml runs in
 * tests/http/metrics_server_test.ts.)
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1DaemonSet, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor } from "./_node_env.ts";
import { freePorts } from "../harness/cluster.ts";
import { approveServingCertificate, kubeletAPIFlags } from "./_kubelet_api.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const KIT = `${REPO}/k3s`;
const MANIFESTS = [
  "uptimed.yaml",
  "uptimed-deploy.yaml",
  "while.yaml",
  "openssh-server.yaml",
  "node-exporter.yaml",
  "prometheus.yaml",
  "metrics-server.yaml",
];
const BUILD_PROMETHEUS = `${REPO}/scripts/build-prometheus.sh`;
/** First-time apt installs inside the test systemd take a while. */
const APT_TIMEOUT_MS = 180_000;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Runs a command on the host; returns its output, throws with it on failure. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${decode(out.stdout)}${decode(out.stderr)}`);
  }
  return decode(out.stdout);
}

/** The pod once every container is ready, with the agent's log on timeout. */
function podRunning(env: NodeEnv, namespace: string, name: string): Promise<V1Pod> {
  return waitFor(
    `pod ${namespace}/${name} Running and ready`,
    async () => {
      const p = await env.getJSON<V1Pod>(["pod", "-n", namespace, name]);
      const statuses = p?.status?.containerStatuses ?? [];
      return p?.status?.phase === "Running" && statuses.length > 0 && statuses.every((s) => s.ready)
        ? p
        : undefined;
    },
    APT_TIMEOUT_MS,
    async () => {
      const p = await env.getJSON<V1Pod>(["pod", "-n", namespace, name]);
      return `pod status: ${JSON.stringify(p?.status)}\n--- systemk log ---\n${
        (await env.agentLog()).slice(-6000)
      }`;
    },
  );
}

/** One entry of Prometheus' `/api/v1/targets` `activeTargets`. */
interface PrometheusTarget {
  labels: Record<string, string | undefined>;
  scrapeUrl: string;
  health: string;
}

/** What a unit of the test systemd wrote to the journal. */
async function journal(env: NodeEnv, unit: string): Promise<string> {
  return (await env.system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", unit])).stdout;
}

Deno.test(
  "k3s kit: manifests, join-token.sh, and the main manifests on a node",
  opts,
  async (t) => {
    const env = await startNodeEnv({
      nodeName: "n1",
      flags: kubeletAPIFlags(freePorts("127.0.0.1", 1)[0]),
    });
    const tmp = await Deno.makeTempDir({ prefix: "systemk-kit-" });
    const timed = async (what: string, fn: () => Promise<unknown>) => {
      const started = performance.now();
      await fn();
      console.log(`  ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    };
    try {
      await t.step("every manifest passes the apiserver's server-side dry run", async () => {
        // A server-side dry run creates nothing, so what admission looks up from the same files
        // is made first: the namespace, and the ServiceAccount a Pod names.
        await env.kubectl(["create", "namespace", "monitoring"]);
        await env.kubectl(["create", "serviceaccount", "prometheus", "--namespace=monitoring"]);
        for (const file of MANIFESTS) {
          const out = await env.cluster.kubectl([
            "apply",
            "--dry-run=server",
            "-f",
            `${KIT}/${file}`,
          ]);
          assert.equal(out.code, 0, `${file}: ${out.stderr}`);
          assert.match(out.stdout, /\(server dry run\)/, file);
        }
        const broken = await env.cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], {
          stdin: (await Deno.readTextFile(`${KIT}/while.yaml`)).replace(
            "containers:",
            "kontainers:",
          ),
        });
        assert.notEqual(broken.code, 0, "the dry run must refuse an invalid manifest");
      });

      await t.step(
        "join-token.sh: the token's node client CSR is approved and signed",
        async () => {
          const kubectlEnv = { KUBECTL: env.cluster.kubectlPath, PATH: Deno.env.get("PATH")! };
          const script = `${KIT}/join-token.sh`;
          const args = ["--kubeconfig", env.cluster.adminKubeconfig, "--ca-out", `${tmp}/ca.crt`];
          const token = (await run("sh", [script, ...args, "--print-token"], kubectlEnv)).trim();
          assert.match(token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
          assert.equal(
            await Deno.readTextFile(`${tmp}/ca.crt`),
            await Deno.readTextFile(env.cluster.caFile),
          );
          // Re-running is safe (apply), and prints the install.sh line with a new token.
          const text = await run("sh", [script, ...args], kubectlEnv);
          assert.match(text, new RegExp(`--server ${env.cluster.server} --ca-file cluster-ca.crt`));
          assert.doesNotMatch(text, new RegExp(token.replace(".", "\\.")));

          const asToken = [
            "--server",
            env.cluster.server,
            "--certificate-authority",
            `${tmp}/ca.crt`,
          ];
          const tokenKubectl = (kubectlArgs: string[], stdin?: string) =>
            env.cluster.kubectl([...asToken, "--token", token, ...kubectlArgs], {
              kubeconfig: "/dev/null",
              stdin,
            });
          const whoami = await tokenKubectl(["auth", "whoami", "-o", "json"]);
          assert.equal(whoami.code, 0, whoami.stderr);
          const user = JSON.parse(whoami.stdout).status.userInfo;
          assert.equal(user.username, `system:bootstrap:${token.split(".")[0]}`);
          assert.ok(user.groups.includes("system:bootstrappers:systemk"), user.groups.join());

          // What the kubelet's TLS bootstrap does: a CSR for system:node:<name>, as the token.
          await run("openssl", [
            ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            ...["-nodes", "-keyout", `${tmp}/n2.key`, "-out", `${tmp}/n2.csr`],
            ...["-subj", "/O=system:nodes/CN=system:node:n2"],
          ]);
          const csr = {
            apiVersion: "certificates.k8s.io/v1",
            kind: "CertificateSigningRequest",
            metadata: { name: "kit-n2" },
            spec: {
              request: btoa(await Deno.readTextFile(`${tmp}/n2.csr`)),
              signerName: "kubernetes.io/kube-apiserver-client-kubelet",
              usages: ["digital signature", "client auth"],
            },
          };
          const created = await tokenKubectl(["create", "-f", "-"], JSON.stringify(csr));
          assert.equal(created.code, 0, created.stderr);
          const certificate = await waitFor("CSR kit-n2 approved and signed", async () => {
            const c = await env.getJSON<{ status?: { certificate?: string } }>(["csr", "kit-n2"]);
            return c?.status?.certificate;
          }, 30_000);
          await Deno.writeTextFile(`${tmp}/n2.crt`, atob(certificate));
          const subject = await run("openssl", [
            "x509",
            "-noout",
            "-subject",
            "-in",
            `${tmp}/n2.crt`,
          ]);
          assert.match(subject, /O ?= ?system:nodes, CN ?= ?system:node:n2/);
        },
      );

      await t.step("uptimed.yaml: init container, ConfigMap, emptyDir; Running", async () => {
        await timed("uptimed.yaml to Running (apt-get install uptimed)", async () => {
          await env.kubectl(["apply", "-f", `${KIT}/uptimed.yaml`]);
          const pod = await podRunning(env, "default", "uptimed");
          assert.equal(pod.spec?.nodeName, "n1");
          assert.equal(pod.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 0);
        });
        // As the README's quickstart reads it: kubectl logs through the node's kubelet API.
        await approveServingCertificate(env.cluster, "n1", env.agentLog);
        const report = await waitFor(
          "the report container's first line in kubectl logs",
          async () => {
            const out = await env.cluster.kubectl(["logs", "uptimed", "-c", "report"]);
            return /^prepared by the init container at .*; 2 settings; up [0-9.]+ s$/m.test(
                out.stdout,
              )
              ? out.stdout
              : undefined;
          },
          60_000,
          env.agentLog,
        );
        assert.doesNotMatch(report, /No such file/);
        const show = await env.system.exec([
          "systemctl",
          "show",
          "-p",
          "ActiveState",
          "-p",
          "UID",
          "systemk.default.uptimed.uptimed.service",
        ]);
        const uptimed = Object.fromEntries(
          show.stdout.trim().split("\n").map((line) => line.split("=", 2)),
        );
        assert.deepEqual(uptimed, { ActiveState: "active", UID: "1" });
      });

      await t.step("while.yaml: two containers share an emptyDir", async () => {
        await env.kubectl(["apply", "-f", `${KIT}/while.yaml`]);
        await podRunning(env, "default", "while");
        await waitFor("the reader prints what the writer wrote", async () => {
          const text = await journal(env, "systemk.default.while.reader.service");
          return /writer says: \d{4}-\d\d-\d\dT/.test(text);
        });
      });

      await t.step("uptimed-deploy.yaml: the Deployment's replica runs", async () => {
        // Two uptimed daemons on one host share /var/spool/uptimed and the second one exits
        // (host resources are shared, as the seed warns for ports): the pod goes first.
        await env.kubectl(["delete", "-f", `${KIT}/uptimed.yaml`, "--wait=true"]);
        await env.kubectl(["apply", "-f", `${KIT}/uptimed-deploy.yaml`]);
        await waitFor(
          "deployment uptimed available",
          async () => {
            const d = await env.getJSON<V1Deployment>(["deployment", "uptimed"]);
            return d?.status?.availableReplicas === 1;
          },
          APT_TIMEOUT_MS,
          env.agentLog,
        );
      });

      await t.step(
        "node-exporter.yaml: the DaemonSet runs on the node and serves metrics",
        async () => {
          await timed("node-exporter to Running (apt-get install)", async () => {
            // Runs as prometheus, a user the package's own install creates.
            await env.kubectl(["apply", "-f", `${KIT}/node-exporter.yaml`]);
            await waitFor(
              "daemonset node-exporter ready on n1",
              async () => {
                const ds = await env.getJSON<V1DaemonSet>([
                  "daemonset",
                  "-n",
                  "monitoring",
                  "node-exporter",
                ]);
                return ds?.status?.numberReady === 1;
              },
              APT_TIMEOUT_MS,
              env.agentLog,
            );
          });
          const metrics = await waitFor("node exporter metrics on 127.0.0.1:9100", async () => {
            const r = await fetch("http://127.0.0.1:9100/metrics");
            const text = await r.text();
            return r.ok && text.includes("node_load1") ? text : undefined;
          });
          assert.match(metrics, /^node_uname_info\{.*nodename="/m);
        },
      );

      await t.step(
        "prometheus.yaml: Kubernetes discovery finds the node exporter, which is scraped",
        async () => {
          const binary = (await run("bash", [BUILD_PROMETHEUS])).trim().split("\n").at(-1)!;
          const link = await env.system.exec(["ln", "-sf", binary, "/usr/local/bin/prometheus"]);
          assert.equal(link.code, 0, link.stderr);
          await timed("prometheus to Running", async () => {
            await env.kubectl(["apply", "-f", `${KIT}/prometheus.yaml`]);
            await podRunning(env, "monitoring", "prometheus");
          });
          const prometheusLog = async () =>
            `--- prometheus ---\n${
              (await journal(env, "systemk.monitoring.prometheus.prometheus.service")).slice(-3000)
            }`;
          const targets = await waitFor(
            "Prometheus scraping the node exporter and itself",
            async () => {
              const r = await fetch("http://127.0.0.1:9090/api/v1/targets");
              const active = (await r.json()).data.activeTargets as PrometheusTarget[];
              const up = (prefix: string) =>
                active.find((t) => t.labels.pod?.startsWith(prefix) && t.health === "up");
              const found = [up("node-exporter-"), up("prometheus")];
              return found.every(Boolean) ? found as PrometheusTarget[] : undefined;
            },
            90_000,
            prometheusLog,
          );
          const [exporter] = targets;
          assert.equal(exporter.labels.node, "n1");
          assert.equal(exporter.labels.namespace, "monitoring");
          assert.equal(exporter.labels.job, "systemk-pods");
          assert.equal(exporter.scrapeUrl, "http://127.0.0.1:9100/metrics");
          // Discovery ran on the pod's own service account token (written by systemk into the
          // kube-api-access volume), and the scrape stored the exporter's samples.
          const query = await fetch(
            "http://127.0.0.1:9090/api/v1/query?query=" +
              encodeURIComponent('node_load1{job="systemk-pods",namespace="monitoring"}'),
          );
          const result = (await query.json()).data.result as { metric: { pod: string } }[];
          assert.ok(
            result.some((r) => r.metric.pod.startsWith("node-exporter-")),
            JSON.stringify(result),
          );
        },
      );
    } finally {
      await env.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);
