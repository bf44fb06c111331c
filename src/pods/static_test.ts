import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { manifestOf, StaticPodSource } from "./static.ts";

/** A pod manifest `name` with one container, optionally with a ConfigMap in the same file. */
function manifest(name: string, command = "infinity", configMap = ""): string {
  const pod = `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  containers: [{name: c, image: /bin/sleep, command: [/bin/sleep, "${command}"]}]
`;
  return configMap
    ? `${pod}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${configMap}}\ndata: {k: v}\n`
    : pod;
}

/** A source over `dir` that records every delivery; stop it. */
function recordingSource(dir: string) {
  const deliveries: { pods: V1Pod[]; removed: string[] }[] = [];
  const logged: string[] = [];
  const source = new StaticPodSource({
    dir,
    nodeName: "n1",
    rescanMs: 200,
    log: (m) => logged.push(m),
    onChange: (pods, removed) => void deliveries.push({ pods, removed }),
  });
  const names = () => deliveries.at(-1)?.pods.map((p) => p.metadata?.name).sort();
  return { source, deliveries, logged, names };
}

async function until<T>(what: string, check: () => T | undefined | false): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("StaticPodSource: reads, follows adds, edits, breakage and removals", async () => {
  const dir = await Deno.makeTempDir();
  const { source, deliveries, logged, names } = recordingSource(dir);
  try {
    await Deno.writeTextFile(`${dir}/a.yaml`, manifest("a", "infinity", "cfg"));
    await source.start();
    assert.deepEqual(names(), ["a-n1"], "the first read is delivered by start()");
    const a = deliveries[0].pods[0];
    assert.equal(manifestOf(a), `${dir}/a.yaml`);
    assert.deepEqual([...source.references(a).configMaps.keys()], ["cfg"]);

    await Deno.writeTextFile(`${dir}/b.yaml`, manifest("b"));
    await until("b added", () => names()?.includes("b-n1"));
    assert.deepEqual(deliveries.at(-1)!.removed, []);

    // A broken file keeps its last good pod; the error names the file.
    await Deno.writeTextFile(`${dir}/b.yaml`, "kind: Pod\nspec: [");
    await until("the error logged", () => logged.some((l) => l.includes(`${dir}/b.yaml`)));
    assert.deepEqual(names(), ["a-n1", "b-n1"]);

    // An edit is another pod: the old UID is removed.
    const oldB = deliveries.at(-1)!.pods.find((p) => p.metadata?.name === "b-n1")!;
    await Deno.writeTextFile(`${dir}/b.yaml`, manifest("b", "3600"));
    const edited = await until("b edited", () => {
      const last = deliveries.at(-1)!;
      return last.removed.includes(oldB.metadata!.uid!) ? last : undefined;
    });
    assert.deepEqual(edited.pods.map((p) => p.metadata?.name).sort(), ["a-n1", "b-n1"]);

    await Deno.remove(`${dir}/a.yaml`);
    const gone = await until("a removed", () => {
      const last = deliveries.at(-1)!;
      return last.removed.includes(a.metadata!.uid!) ? last : undefined;
    });
    assert.deepEqual(gone.pods.map((p) => p.metadata?.name), ["b-n1"]);
  } finally {
    await source.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StaticPodSource: a directory missing at start is read once it appears", async () => {
  const parent = await Deno.makeTempDir();
  const dir = `${parent}/manifests`;
  const { source, logged, names } = recordingSource(dir);
  try {
    await source.start();
    assert.equal(names(), undefined, "nothing delivered while there is no directory");
    assert.ok(logged.some((l) => l.includes(dir)), "the missing directory is reported");
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/a.yaml`, manifest("a"));
    await until("a read", () => names()?.includes("a-n1"));
  } finally {
    await source.stop();
    await Deno.remove(parent, { recursive: true });
  }
});
