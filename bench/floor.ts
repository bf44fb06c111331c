/**
 * The memory floor of this design: a Deno process with `@kubernetes/client-node` loaded and one
 * pod watch open (what every node agent built on it holds before doing anything), nothing else.
 * The bench runs it beside systemk and reports systemk's cost above it.
 *
 * Run: `deno run -A bench/floor.ts <kubeconfig> <node name>`; prints "floor: watching" once the
 * watch is open, then idles until killed.
 *
 * @module
 */
import { CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";

const [kubeconfig, nodeName] = Deno.args;
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
// The API client is built too, as any agent would; one LIST then the WATCH from its version.
const core = kc.makeApiClient(CoreV1Api);
const fieldSelector = `spec.nodeName=${nodeName}`;
const list = await core.listPodForAllNamespaces({ fieldSelector });
await new Watch(kc).watch(
  "/api/v1/pods",
  { fieldSelector, resourceVersion: list.metadata?.resourceVersion },
  () => {},
  (err) => console.log(`floor: watch ended ${err ?? ""}`),
);
console.log("floor: watching");
// Keep the process alive with no timer of our own (the open watch keeps the event loop busy).
await new Promise(() => {});
