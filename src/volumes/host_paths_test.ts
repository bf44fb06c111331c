import assert from "node:assert/strict";
import { checkHostPaths, HostPathError } from "./host_paths.ts";
import type { HostPathCheck } from "../plan/types.ts";

async function withTree(fn: (root: string) => Promise<void>) {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "systemk-hostpaths-" }));
  try {
    await Deno.mkdir(`${root}/allowed/shared`, { recursive: true });
    await Deno.mkdir(`${root}/state/pod/volumes`, { recursive: true });
    await Deno.mkdir(`${root}/etc`);
    await Deno.writeTextFile(`${root}/allowed/file`, "x");
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("checkHostPaths: a symlink planted below an allowed prefix is followed and refused", async () => {
  await withTree(async (root) => {
    const opts = { allowedHostPaths: [`${root}/allowed`], stateDir: `${root}/state` };
    const check = (path: string, type = ""): HostPathCheck[] => [{ volume: "v", path, type }];
    await checkHostPaths(check(`${root}/allowed/shared`), opts);
    // What a pod with /allowed/shared mounted can do: point a name there anywhere.
    await Deno.symlink(`${root}/etc`, `${root}/allowed/shared/escape`);
    await Deno.symlink(`${root}/state/pod`, `${root}/allowed/shared/secrets`);
    await Deno.symlink("../../etc/x", `${root}/allowed/shared/relative`);
    for (
      const [path, message] of [
        [
          "escape",
          `resolves to ${root}/etc, which is not allowed on this node (--allowed-host-paths)`,
        ],
        ["secrets", `resolves to ${root}/state/pod, which overlaps systemk's state directory`],
        ["relative/more", `resolves to ${root}/etc/x/more, which is not allowed`],
      ]
    ) {
      await assert.rejects(
        checkHostPaths(check(`${root}/allowed/shared/${path}`), opts),
        (e) => e instanceof HostPathError && e.message.includes(message),
        path,
      );
    }
    // The administrator's own symlink as a prefix still works.
    await Deno.symlink(`${root}/allowed`, `${root}/alias`);
    await checkHostPaths(check(`${root}/alias/shared`), {
      ...opts,
      allowedHostPaths: [`${root}/alias`],
    });
  });
});

Deno.test("checkHostPaths: types as the kubelet checks them; the *OrCreate ones are created", async () => {
  await withTree(async (root) => {
    const opts = { allowedHostPaths: [`${root}/allowed`], stateDir: `${root}/state` };
    const check = (path: string, type: string) =>
      checkHostPaths([{ volume: "v", path: `${root}/allowed/${path}`, type }], opts);
    await check("shared", "Directory");
    await check("file", "File");
    await check("new/dir", "DirectoryOrCreate");
    assert.equal((await Deno.stat(`${root}/allowed/new/dir`)).mode! & 0o777, 0o755);
    await check("new-file", "FileOrCreate");
    assert.equal(await Deno.readTextFile(`${root}/allowed/new-file`), "");
    await check("new-file", "FileOrCreate"); // present: left as it is
    for (
      const [path, type, message] of [
        ["missing", "Directory", "is not a directory"],
        ["file", "Directory", "is not a directory"],
        ["shared", "File", "is not a file"],
        ["file", "Socket", "is not a socket file"],
        ["file", "CharDevice", "is not a character device"],
        ["file", "BlockDevice", "is not a block device"],
        ["file", "DirectoryOrCreate", "is not a directory"],
      ]
    ) {
      await assert.rejects(
        check(path, type),
        (e) =>
          e instanceof HostPathError &&
          e.message === `volume v: hostPath type check failed: ${root}/allowed/${path} ${message}`,
        `${path} ${type}`,
      );
    }
  });
});
