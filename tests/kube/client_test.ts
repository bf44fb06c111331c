import assert from "node:assert/strict";
import { AuthenticationV1Api, KubeConfig } from "@kubernetes/client-node";
import { startTestCluster } from "../harness/cluster.ts";
import { loadKubeConfig } from "../../src/kube/client.ts";
import { CLUSTER_TEST, openConnections } from "./_helpers.ts";

/** The certificate and key of a node identity the test cluster issued, as PEM. */
function nodeCredentials(kubeconfigPath: string): string {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const user = kc.getCurrentUser()!;
  return atob(user.certData!) + atob(user.keyData!);
}

Deno.test({
  name: "API calls share one kept-alive connection; a renewed certificate gets a new one",
  ...CLUSTER_TEST,
  async fn(t) {
    const cluster = await startTestCluster();
    const dir = await Deno.makeTempDir({ prefix: "systemk-keepalive-" });
    try {
      const port = Number(new URL(cluster.server).port);
      // A kubeconfig that points at a PEM file renewed in place, as TLS bootstrap writes it.
      const pem = `${dir}/client.pem`;
      await Deno.writeTextFile(pem, nodeCredentials(await cluster.nodeKubeconfig("ka-1")));
      const kubeconfig = `${dir}/kubeconfig`;
      await Deno.writeTextFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{
            name: "c",
            cluster: { server: cluster.server, "certificate-authority": cluster.caFile },
          }],
          users: [{ name: "u", user: { "client-certificate": pem, "client-key": pem } }],
          contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
          "current-context": "x",
        }),
      );
      const authn = loadKubeConfig(kubeconfig).makeApiClient(AuthenticationV1Api);
      const whoAmI = async () =>
        (await authn.createSelfSubjectReview({ body: {} })).status?.userInfo?.username;

      let first: number[] = [];
      await t.step("20 calls in a row go over one connection", async () => {
        for (let i = 0; i < 20; i++) {
          assert.equal(await whoAmI(), "system:node:ka-1");
          const open = await openConnections(port);
          if (i === 0) first = open;
          assert.equal(open.length, 1, `after call ${i}: connections ${open}`);
          assert.deepEqual(open, first, `call ${i} opened a new connection`);
        }
      });

      await t.step("renewed certificate: new identity, old connection closed", async () => {
        await Deno.writeTextFile(pem, nodeCredentials(await cluster.nodeKubeconfig("ka-2")));
        assert.equal(await whoAmI(), "system:node:ka-2");
        const open = await openConnections(port);
        assert.equal(open.length, 1, `connections ${open}`);
        assert.notDeepEqual(open, first);
        assert.equal(await whoAmI(), "system:node:ka-2");
        assert.deepEqual(await openConnections(port), open);
      });
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
