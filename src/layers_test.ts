/**
 * The layers of `src/` import only downward, in the order the README's architecture section
 * writes down (the test reads it there, so the two cannot drift apart): a module may import its
 * own layer's modules and lower layers', never a higher layer's. Pure: reads files only.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL(".", import.meta.url));
const ROOT = resolve(SRC, "..");

/** The README's layer line: "Layers, lowest first: `a`, `b` < `c` < ... < `main.ts`." */
async function layerRanks(): Promise<Map<string, number>> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const line = readme.split("\n").find((l) => l.startsWith("Layers, lowest first:"));
  assert.ok(line, 'README.md has no line starting "Layers, lowest first:"');
  const ranks = new Map<string, number>();
  line.slice(line.indexOf(":") + 1).split("<").forEach((group, rank) => {
    for (const [, name] of group.matchAll(/`([^`]+)`/g)) ranks.set(name, rank);
  });
  return ranks;
}

/** Every `.ts` file under `dir`, as absolute paths. */
async function sources(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** The relative module specifiers a file imports or re-exports, statically or dynamically. */
function relativeImports(text: string): string[] {
  const pattern = /(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)"(\.{1,2}\/[^"]+)"/gm;
  return [...text.matchAll(pattern)].map((m) => m[1]);
}

/** The layer a file belongs to: its directory under `src/`, or the file name at the top. */
function layerOf(path: string): string {
  const rel = relative(ROOT, path);
  if (!rel.startsWith("src/")) return rel;
  const [first, ...rest] = rel.slice("src/".length).split("/");
  return rest.length ? first : `src/${first}`;
}

Deno.test("layers: every module imports only its own layer and lower ones", async () => {
  const ranks = await layerRanks();
  // Files at the top of src/ (version.ts) are leaves every layer may read.
  const rankOf = (layer: string) => layer.startsWith("src/") ? -1 : ranks.get(layer);
  const files = [...await sources(SRC), join(ROOT, "main.ts")];
  const upward: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const fromRank = rankOf(from);
    assert.notEqual(fromRank, undefined, `${from} is not in the README's layer line`);
    for (const specifier of relativeImports(await Deno.readTextFile(file))) {
      const target = resolve(dirname(file), specifier);
      // Test harnesses (tests/harness) are not a layer of the program.
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(target);
      const toRank = rankOf(to);
      assert.notEqual(toRank, undefined, `${to} is not in the README's layer line`);
      if (toRank! > fromRank!) upward.push(`${relative(ROOT, file)} imports ${specifier}`);
    }
  }
  assert.deepEqual(upward, [], "imports that go up a layer");
});

Deno.test("layers: the import scanner sees static, type, re-export and dynamic imports", () => {
  const text = [
    'import { a } from "../kube/a.ts";',
    'import type { B } from "./b.ts";',
    'export * from "../http/c.ts";',
    'const { d } = await import("../cli/d.ts");',
    'import "../probes/e.ts";',
    'import { f } from "npm:f";',
  ].join("\n");
  assert.deepEqual(relativeImports(text), [
    "../kube/a.ts",
    "./b.ts",
    "../http/c.ts",
    "../cli/d.ts",
    "../probes/e.ts",
  ]);
});
