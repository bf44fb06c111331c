import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { startNodeEnv, waitFor } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "a pod gets a valid service account token bound to it (kube-api-access volume)",
  opts,
  async () => {
    const env = await startNodeEnv({ nodeName: "tok1" });
    try {
      await env.kubectl(
        ["apply", "-f", "-"],
        JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "reader", namespace: "default" },
          spec: {
            nodeName: "tok1",
            containers: [{
              name: "reader",
              image: "/bin/sh",
              command: [
                "/bin/sh",
                "-c",
                "d=/var/run/secrets/kubernetes.io/serviceaccount; " +
                'echo "token=$(cat $d/token) ns=$(cat $d/namespace)"; sleep 600',
              ],
            }],
          },
        }),
      );
      const pod = await waitFor(
        "pod reader Running",
        async () => {
          const p = await env.getJSON<V1Pod>(["pod", "reader"]);
          return p?.status?.phase === "Running" ? p : undefined;
        },
        60_000,
        env.agentLog,
      );
      assert.ok(
        pod.spec?.volumes?.some((v) => v.name.startsWith("kube-api-access-")),
        "the apiserver added the kube-api-access volume",
      );
      const line = await waitFor("the token in the journal", async () => {
        const out = await env.system.exec([
          "journalctl",
          "--no-pager",
          "-o",
          "cat",
          "-u",
          "systemk.default.reader.reader.service",
        ]);
        return out.stdout.split("\n").find((l) => l.startsWith("token="));
      });
      const match = /^token=(\S+) ns=default$/.exec(line);
      assert.ok(match, `the container read its token and namespace: ${line}`);
      const review = JSON.parse(
        await env.kubectl(
          ["create", "-o", "json", "-f", "-"],
          JSON.stringify({
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenReview",
            spec: { token: match[1] },
          }),
        ),
      );
      assert.equal(review.status.authenticated, true);
      assert.equal(review.status.user.username, "system:serviceaccount:default:default");
      assert.deepEqual(review.status.user.extra["authentication.kubernetes.io/pod-uid"], [
        pod.metadata!.uid,
      ]);
    } finally {
      await env.stop();
    }
  },
);
