import assert from "node:assert/strict";
import { applyVolumes, removePodDir, stateDirProblem } from "./apply.ts";
import type { VolumeEntry } from "../plan/types.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function configMapVolume(root: string, files: Record<string, string>): VolumeEntry[] {
  return [
    { kind: "dir", path: root, mode: 0o755, uid: 0, gid: 0 },
    { kind: "dir", path: `${root}/cm`, mode: 0o755, uid: 0, gid: 0, managed: true },
    ...Object.entries(files).map(([name, text]): VolumeEntry => ({
      kind: "file",
      path: `${root}/cm/${name}`,
      content: enc(text),
      mode: 0o640,
      uid: 65534,
      gid: 65534,
    })),
    { kind: "dir", path: `${root}/empty`, mode: 0o777, uid: 65534, gid: 65534 },
  ];
}

Deno.test("volume files are written with mode and owner, updated in place, pruned", async () => {
  const root = await Deno.makeTempDir({ prefix: "systemk-volumes-" });
  try {
    const first = await applyVolumes(configMapVolume(root, { "a.conf": "one", "b.conf": "two" }));
    assert.deepEqual(first.written.sort(), [`${root}/cm/a.conf`, `${root}/cm/b.conf`]);
    const info = await Deno.stat(`${root}/cm/a.conf`);
    assert.equal(info.mode! & 0o7777, 0o640);
    assert.equal(info.uid, 65534);
    assert.equal((await Deno.stat(`${root}/empty`)).mode! & 0o7777, 0o777);

    // Data the pod wrote into its emptyDir survives every update.
    await Deno.writeTextFile(`${root}/empty/state`, "pod data");
    const inode = (await Deno.stat(`${root}/cm/b.conf`)).ino;
    const second = await applyVolumes(configMapVolume(root, { "a.conf": "uno", "b.conf": "two" }));
    assert.deepEqual(second.written, [`${root}/cm/a.conf`]);
    assert.equal(await Deno.readTextFile(`${root}/cm/a.conf`), "uno");
    assert.equal((await Deno.stat(`${root}/cm/b.conf`)).ino, inode, "unchanged file untouched");

    const third = await applyVolumes(configMapVolume(root, { "b.conf": "two" }));
    assert.deepEqual(third.removed, [`${root}/cm/a.conf`]);
    assert.equal(await Deno.readTextFile(`${root}/empty/state`), "pod data");
    const leftovers = [...Deno.readDirSync(`${root}/cm`)].map((e) => e.name);
    assert.deepEqual(leftovers, ["b.conf"], "no temp files left behind");
  } finally {
    await removePodDir(root);
  }
  await assert.rejects(Deno.stat(root), Deno.errors.NotFound);
});

Deno.test("a path that is a file where a directory is planned is an error", async () => {
  const root = await Deno.makeTempDir({ prefix: "systemk-volumes-" });
  try {
    await Deno.writeTextFile(`${root}/cm`, "x");
    await assert.rejects(
      applyVolumes([{ kind: "dir", path: `${root}/cm`, mode: 0o755, uid: 0, gid: 0 }]),
      /exists and is not a directory/,
    );
  } finally {
    await removePodDir(root);
  }
});

Deno.test("the state directory check makes a missing directory and names what is wrong", async () => {
  const root = await Deno.makeTempDir({ prefix: "systemk-state-" });
  try {
    assert.equal(await stateDirProblem(`${root}/run/systemk`), undefined);
    assert.ok((await Deno.stat(`${root}/run/systemk`)).isDirectory);
    assert.deepEqual([...Deno.readDirSync(`${root}/run/systemk`)], [], "the probe is removed");
    // A file where a directory belongs: as unwritable as a read-only mount, even for root.
    await Deno.writeTextFile(`${root}/file`, "");
    const problem = await stateDirProblem(`${root}/file/systemk`);
    assert.match(
      problem ?? "",
      /state directory .*\/file\/systemk is not writable \(Not a directory/,
    );
    assert.match(problem ?? "", /FailedMount/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
